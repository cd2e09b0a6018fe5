"""Shared fixtures: a small, separable synthetic sensor dataset generated from a seed."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

from tinybnn.training.data import save_dataset

CLASS_NAMES = ["sine", "square", "sawtooth"]
WAVES = [
    lambda u: np.sin(2 * np.pi * u),
    lambda u: np.where(u < 0.5, 1.0, -1.0),
    lambda u: 2 * u - 1,
]


def make_signals(
    seed: int, per_class: int = 60, channels: int = 6, length: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Three waveform shapes (sine, square, sawtooth) at random period and phase, with
    per-channel gains, per-channel offsets like gravity on an accelerometer, and noise.

    Returns X int16 [3 * per_class, channels, length] and y int64, shuffled.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    offsets = np.linspace(-4000, 4000, channels)[:, None]
    X, y = [], []
    for label, wave in enumerate(WAVES):
        for _ in range(per_class):
            u = (t / rng.uniform(12, 24) + rng.uniform()) % 1.0
            gains = rng.uniform(1000, 3000, (channels, 1))
            noise = rng.normal(0, 300, (channels, length))
            X.append(gains * wave(u) + offsets + noise)
            y.append(label)
    order = rng.permutation(len(y))
    return np.round(np.array(X)[order]).astype(np.int16), np.array(y)[order]


@pytest.fixture
def signals_npz(tmp_path):
    """Path of a dataset .npz with 180 separable samples of 6 channels x 64 steps."""
    path = tmp_path / "signals.npz"
    save_dataset(path, *make_signals(seed=0), class_names=CLASS_NAMES)
    return path


def _savez(path, **arrays):
    """np.savez to exactly `path` (np.savez would append .npz to a bare name)."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _write_signals(path, **changes):
    """A valid dataset with some arrays replaced (a function of X) or dropped (None)."""
    X, y = make_signals(seed=0, per_class=4)
    arrays = dict(X=X, y=y, class_names=np.array(CLASS_NAMES))
    arrays.update({k: f(X.astype(np.float64)) if callable(f) else f for k, f in changes.items()})
    _savez(path, **{k: v for k, v in arrays.items() if v is not None})


def _with(index, value):
    def change(X):
        X[index] = value
        return X

    return change


def _npy(path):
    with open(path, "wb") as f:
        np.save(f, make_signals(seed=0, per_class=4)[0])


# id -> (write a bad dataset to the path, or None for no file; a fragment of the error)
BAD_DATASETS = {
    "missing_file": (None, "no such file"),
    "text_file": (lambda p: p.write_text("X,y\n1,2\n"), "not an .npz archive"),
    "npy_file": (_npy, "not an .npz archive"),
    "no_X": (lambda p: _write_signals(p, X=None), "missing array X"),
    "no_y": (lambda p: _write_signals(p, y=None), "missing array y"),
    "X_2d": (lambda p: _write_signals(p, X=lambda X: X[:, 0]), "X must have shape [N, C, T]"),
    "X_4d": (lambda p: _write_signals(p, X=lambda X: X[..., None]), "X must have shape"),
    "y_2d": (lambda p: _write_signals(p, y=np.zeros((12, 1), int)), "y must have shape [12]"),
    "N_mismatch": (lambda p: _write_signals(p, y=np.zeros(11, int)), "y must have shape [12]"),
    "empty": (lambda p: _write_signals(p, X=lambda X: X[:, :, :0]), "X is empty"),
    "label_negative": (lambda p: _write_signals(p, y=np.full(12, -1)), "negative label"),
    "label_out_of_range": (lambda p: _write_signals(p, y=np.full(12, 3)), "out of range for 3"),
    "label_float": (lambda p: _write_signals(p, y=np.full(12, 0.5)), "integer class labels"),
    "label_million": (
        lambda p: _write_signals(p, y=np.full(12, 1_000_000), class_names=None),
        "at most 1024 classes",
    ),
    "nan": (lambda p: _write_signals(p, X=_with((5, 2, 7), np.nan)), "NaN or infinite"),
    "inf": (lambda p: _write_signals(p, X=_with((5, 2, 7), np.inf)), "NaN or infinite"),
    "scaled_floats": (lambda p: _write_signals(p, X=lambda X: X / 4096), "non-integer values"),
    "beyond_int16": (lambda p: _write_signals(p, X=_with(0, 40000.0)), "outside int16"),
    "strings": (lambda p: _write_signals(p, X=lambda X: X.astype(str)), "integer sensor samples"),
    "objects": (
        lambda p: _write_signals(p, X=lambda X: X.astype(object)),
        "Python object arrays",
    ),
    "duplicate_names": (
        lambda p: _write_signals(p, class_names=np.array(["a", "b", "a"])),
        "duplicates",
    ),
}


@pytest.fixture(params=list(BAD_DATASETS), ids=list(BAD_DATASETS))
def bad_dataset(request, tmp_path):
    """(path, expected error fragment) for each kind of broken dataset file."""
    write, fragment = BAD_DATASETS[request.param]
    path = tmp_path / "bad.npz"
    if write is not None:
        write(path)
    return path, fragment


# Hypothesis profiles (tests/test_properties.py, test_fuzz.py, test_outputs.py): "ci", the
# default, runs a bounded, derandomised number of examples in `make test`;
# TINYBNN_HYPOTHESIS=long runs many more, by hand.
settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, print_blob=True, database=None
)
settings.register_profile("long", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("TINYBNN_HYPOTHESIS", "ci"))
