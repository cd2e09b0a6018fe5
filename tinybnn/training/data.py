"""Datasets: the `.npz` file that `tinybnn train` reads, checked once on the way in.

The format (one `numpy.savez` archive, no pickled objects):

    X            [N, C, T] raw sensor samples: N windows, C channels, T time steps.
                 int16, or any integer dtype, or floats holding whole numbers, all within
                 int16 [-32768, 32767]. These are the values the device will see (ADC counts),
                 not normalised ones: the model's first layer learns the normalisation.
                 Floats with fractions are refused, since scaled data would not match the
                 device; convert back to counts (e.g. `np.round(x * scale).astype(np.int16)`).
    y            [N] integer class labels in [0, K), K at most 1024.
    class_names  optional [K] strings (1 to 64 characters each); without it K = max(y) + 1
                 and the names are "class0", "class1", ...

Other arrays in the archive are ignored. Every problem is a one-line `TinyBNNError` that names
the file. Non-goals: windowing raw recordings, augmentation, data formats other than `.npz`.
"""

from __future__ import annotations

import os
import pickle
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TinyBNNError, one_line
from ..modelfile import atomic_write
from ..ops.spec import MAX_CLASSES, check_class_names

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


def default_class_names(num_classes: int) -> list[str]:
    """The names a dataset or model gets when none are given (as `tinybnn.nn.Sequential`)."""
    return [f"class{i}" for i in range(num_classes)]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Checked training data: X int16 [N, C, T], y int64 [N] in [0, K), K class names.

    Constructing one checks and converts the arrays (a `TinyBNNError` for anything that
    breaks the format above), so every `Dataset` is valid.
    """

    X: np.ndarray
    y: np.ndarray
    class_names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        X = _check_samples(self.X)
        y = _check_labels(self.y, len(X))
        names = _check_names(self.class_names, y)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "class_names", names)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(C, T), as `tinybnn.nn.Sequential(input_shape=...)` takes it."""
        return self.X.shape[1], self.X.shape[2]

    def subset(self, index: np.ndarray) -> Dataset:
        return Dataset(self.X[index], self.y[index], self.class_names)


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Read and check a dataset `.npz` (see the module docstring for the format)."""
    path = Path(path)
    if not path.is_file():
        why = "is a directory, not a dataset file" if path.is_dir() else "no such file"
        raise TinyBNNError(f"{path}: {why}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError):
        archive = None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise TinyBNNError(f"{path}: not an .npz archive (write one with numpy.savez)")
    with archive:
        missing = [k for k in ("X", "y") if k not in archive.files]
        if missing:
            has = ", ".join(sorted(archive.files)) or "none"
            raise TinyBNNError(
                f"{path}: missing array {' and '.join(missing)} (arrays in the file: {has})"
            )
        try:
            arrays = {k: archive[k] for k in ("X", "y", "class_names") if k in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            if "allow_pickle" in str(e):
                raise TinyBNNError(
                    f"{path}: holds Python object arrays; store numbers and strings only"
                ) from None
            raise TinyBNNError(f"{path}: damaged .npz archive ({one_line(e)})") from None
    try:
        return Dataset(arrays["X"], arrays["y"], arrays.get("class_names"))
    except TinyBNNError as e:
        raise TinyBNNError(f"{path}: {e}") from None


def save_dataset(
    path: str | os.PathLike,
    X: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str] | None = None,
) -> Dataset:
    """Check the arrays, then write them to `path` atomically; returns the checked `Dataset`."""
    path = Path(path)
    try:
        data = Dataset(X, y, class_names)
    except TinyBNNError as e:
        raise TinyBNNError(f"{path}: {e}") from None
    atomic_write(
        path,
        lambda f: np.savez(
            f, X=data.X, y=data.y, class_names=np.array(data.class_names, dtype=str)
        ),
    )
    return data


def split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Deterministic stratified split into (train, validation).

    Each class sends round(fraction * n_c) of its n_c samples to validation, at least one and
    at most n_c - 1 when it has two or more; a class with a single sample stays in training.
    Both parts keep the original order. The same data, fraction and seed give the same split.
    """
    if not 0 < fraction < 1:
        raise TinyBNNError(f"the validation fraction must be between 0 and 1, not {fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in range(data.num_classes):
        members = np.flatnonzero(data.y == c)
        if len(members) < 2:
            continue
        n_val = min(max(round(fraction * len(members)), 1), len(members) - 1)
        val.append(rng.permutation(members)[:n_val])
    is_val = np.zeros(len(data), dtype=bool)
    if val:
        is_val[np.concatenate(val)] = True
    if not is_val.any():
        raise TinyBNNError(
            f"{len(data)} samples are too few to hold out a validation split; "
            "add data or pass a separate validation set"
        )
    return data.subset(~is_val), data.subset(is_val)


def folds(data: Dataset, k: int, seed: int) -> list[tuple[Dataset, Dataset]]:
    """k deterministic stratified folds: [(training part, held-out fold)], every window held
    out exactly once. Each class's windows, shuffled by `seed`, are dealt to the folds in
    turn (continuing from where the last class stopped, so the folds differ in size by at
    most one window); both parts keep the original order."""
    if not 2 <= k <= len(data):
        raise TinyBNNError(f"cross-validation needs 2 to {len(data)} folds, not {k}")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(data), dtype=np.int64)
    start = 0
    for c in range(data.num_classes):
        members = rng.permutation(np.flatnonzero(data.y == c))
        fold[members] = (start + np.arange(len(members))) % k
        start += len(members)
    return [(data.subset(fold != f), data.subset(fold == f)) for f in range(k)]


def _check_samples(X) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "iuf":
        raise TinyBNNError(f"X must hold integer sensor samples, not {X.dtype} values")
    if X.ndim != 3:
        hint = " (for one channel use X[:, None, :])" if X.ndim == 2 else ""
        raise TinyBNNError(
            f"X must have shape [N, C, T] (samples, channels, time), not {list(X.shape)}{hint}"
        )
    if 0 in X.shape:
        raise TinyBNNError(f"X is empty (shape {list(X.shape)})")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            n = int(np.argwhere(bad)[0][0])
            raise TinyBNNError(f"X holds NaN or infinite values (first in sample {n})")
        frac = X != np.round(X)
        if frac.any():
            n = int(np.argwhere(frac)[0][0])
            raise TinyBNNError(
                f"X holds non-integer values (first in sample {n}); tinybnn trains on raw "
                "int16 sensor samples as the device reads them, not scaled or normalised data"
            )
    lo, hi = X.min(), X.max()
    if lo < INT16_MIN or hi > INT16_MAX:
        raise TinyBNNError(
            f"X values span [{lo:g}, {hi:g}], outside int16 [{INT16_MIN}, {INT16_MAX}]"
        )
    return X.astype(np.int16, copy=False)


def _check_labels(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise TinyBNNError(
            f"y must have shape [{n}] (one label per sample of X), not {list(y.shape)}"
        )
    whole = y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all()
    if y.dtype.kind not in "iu" and not whole:
        raise TinyBNNError(f"y must hold integer class labels, not {y.dtype} values")
    lo, hi = y.min().item(), y.max().item()  # Python numbers, compared exactly before any cast
    if lo < 0:
        raise TinyBNNError(f"y holds a negative label ({int(lo)}); labels are 0 .. K-1")
    if hi >= MAX_CLASSES:
        raise TinyBNNError(
            f"y holds label {int(hi)}; tinybnn classifies into at most {MAX_CLASSES} classes "
            f"(labels 0 .. {MAX_CLASSES - 1})"
        )
    return y.astype(np.int64)


def _check_names(class_names, y: np.ndarray) -> list[str]:
    if class_names is None:
        return default_class_names(int(y.max()) + 1)
    names = np.asarray(class_names)
    if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
        raise TinyBNNError("class_names must be a non-empty 1-D array of strings")
    try:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
    except UnicodeDecodeError:
        raise TinyBNNError("class_names holds bytes that are not UTF-8 text") from None
    names = check_class_names(names)
    if len(set(names)) != len(names):
        raise TinyBNNError(f"class_names has duplicates: {names}")
    if y.max() >= len(names):
        raise TinyBNNError(
            f"y holds label {y.max()}, out of range for {len(names)} class names (0 .. {len(names) - 1})"
        )
    return names
