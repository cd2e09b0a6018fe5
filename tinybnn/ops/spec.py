"""One home for checking what a model is made of, wherever it comes from.

Each layer kind declares, beside its class in its op module, the `schema` of its config
(field -> `Int`, `Real`, `Bool`, `Choice`, ...), the `tensors` whose values have a range
(e.g. `InputConv1d.tensors["multiplier"] = Int(1, 32767)`), and `weight_bits`, the bits its
weights take on the device. `register` (in `base`) makes every constructor check its
arguments with `check_config`; `Sequential.from_spec` reads model files through the same
schema, and `check_tensors` checks every tensor of a state_dict (its type, shape, finite
values, and integers against their range) for the loader and the compiler.

A refusal is one line, "<where>: <field> must be <what>, not <value>", where `where` is the
layer kind from a constructor, or "layer 3 (maxpool1d)" from a model spec (`SpecError.at`).

Integers are checked as exact Python integers (`numbers.Integral`, or the exact minimum and
maximum of a tensor), never after a cast that could wrap: 1e19 cast to int64 is INT64_MIN.

Sizes are bounded up front, from what a microcontroller holds, so that an absurd width is
refused in a second rather than by the kernel's out-of-memory killer:

- a layer's weights at most `MAX_FLASH_BYTES` (4 MiB, twice the largest on-chip flash of
  Cortex-M parts, 2 MB); with a float32 latent weight, its gradient and Adam's two moments
  per binary weight, training such a layer takes 512 MiB;
- any one value between layers at most `MAX_RAM_BYTES` (2 MiB, more than the largest
  Cortex-M SRAM): an int16 input window, int32 accumulators or counts, packed bits;
- hence at most `MAX_CHANNELS` channels (one int32 count each) and `MAX_LENGTH` steps (one
  int16 sample each); at most `MAX_CLASSES` classes with names of at most `MAX_NAME_LENGTH`
  characters, and `MAX_LAYERS` layers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ModelError

MIB = 2**20
MAX_FLASH_BYTES = 4 * MIB
MAX_RAM_BYTES = 2 * MIB
MAX_CHANNELS = MAX_RAM_BYTES // 4
MAX_LENGTH = MAX_RAM_BYTES // 2
MAX_CLASSES = 1024
MAX_NAME_LENGTH = 64
MAX_LAYERS = 256
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class SpecError(ModelError):
    """A layer config refused: `detail` says what, without the layer, so that a caller that
    knows the layer's place can say where (`at`)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail

    def at(self, where: str) -> ModelError:
        return ModelError(f"{where}: {self.detail}")


class Refused(ValueError):
    """A value that does not fit its field (caught by `check_config`)."""


def shown(v: object) -> str:
    """A value as a message quotes it: short, one line."""
    text = " ".join(repr(v).split())
    return text if len(text) <= 40 else text[:37] + "..."


def size_text(n: float) -> str:
    return f"{n / MIB:,.1f} MiB" if n >= MIB else f"{n / 1024:,.1f} KiB"


# ---------------------------------------------------------------------------------------
# Field types: `str(field)` says what it takes; `convert` returns the value as the layer
# stores it (a Python int, float, bool, str or tuple) or raises `Refused`.


def _integer(v: object) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise Refused
    return int(v)


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int

    def __str__(self) -> str:
        return f"an integer in [{self.lo}, {self.hi}]"

    def convert(self, v: object) -> int:
        v = _integer(v)
        if not self.lo <= v <= self.hi:
            raise Refused
        return v


@dataclass(frozen=True)
class Real:
    """A finite number in [lo, hi], or (lo, hi] with `lo_open`."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False

    def __str__(self) -> str:
        return "a finite number" if self.lo == -math.inf else f"a number {self.bounds()}"

    def bounds(self) -> str:
        low = f"> {self.lo:g}" if self.lo_open else f">= {self.lo:g}"
        if self.hi == math.inf:
            return low
        return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"

    def accepts(self, v: float) -> bool:
        above = v > self.lo if self.lo_open else v >= self.lo
        return math.isfinite(v) and above and v <= self.hi

    def convert(self, v: object) -> float:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise Refused
        try:
            v = float(v)
        except OverflowError:  # an int beyond float64
            raise Refused from None
        if not self.accepts(v):
            raise Refused
        return v


class Bool:
    def __str__(self) -> str:
        return "True or False"

    def convert(self, v: object) -> bool:
        if not isinstance(v, (bool, np.bool_)):
            raise Refused
        return bool(v)


@dataclass(frozen=True)
class Choice:
    """One of `values` (strings, or integers: a bool is not an integer here)."""

    values: tuple

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.values)

    def convert(self, v: object):
        for c in self.values:
            if isinstance(c, str) and isinstance(v, str) and v == c:
                return c
            if isinstance(c, int) and not isinstance(v, str):
                try:
                    if _integer(v) == c:
                        return c
                except Refused:
                    pass
        raise Refused


class Null:
    def __str__(self) -> str:
        return "None"

    def convert(self, v: object) -> None:
        if v is not None:
            raise Refused


@dataclass(frozen=True)
class Either:
    options: tuple

    def __str__(self) -> str:
        return " or ".join(str(o) for o in self.options)

    def convert(self, v: object):
        for option in self.options:
            try:
                return option.convert(v)
            except Refused:
                pass
        raise Refused


@dataclass(frozen=True)
class IntRange:
    """Two integers [lo, hi] with lo < hi, both within [min, max]; stored as a tuple."""

    min: int
    max: int

    def __str__(self) -> str:
        return f"two integers lo < hi within [{self.min}, {self.max}]"

    def convert(self, v: object) -> tuple[int, int]:
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise Refused
        lo, hi = (Int(self.min, self.max).convert(x) for x in v)
        if not lo < hi:
            raise Refused
        return lo, hi


# The fields that several kinds share.
CHANNELS = Int(1, MAX_CHANNELS)
STEPS = Int(1, MAX_LENGTH)
PADDING = Either((Int(0, MAX_LENGTH), Choice(("valid", "same"))))
CONV_SCHEMA = dict(
    in_channels=CHANNELS, out_channels=CHANNELS, kernel_size=STEPS, stride=STEPS, padding=PADDING
)


def check_config(kind: str, schema: Mapping, config: Mapping) -> dict:
    """`config` checked against `schema` (the same fields), each value as the layer stores it.

    Raises `SpecError` naming the first field that does not fit."""
    out = {}
    for name, field in schema.items():
        try:
            out[name] = field.convert(config[name])
        except Refused:
            raise SpecError(kind, f"{name} must be {field}, not {shown(config[name])}") from None
    return out


def check_fields(kind: str, schema: Mapping, defaults: Mapping, entry: Mapping) -> None:
    """A config read from a file names only fields of `schema`, and every field that has no
    default."""
    for name in entry:
        if name not in schema:
            raise SpecError(kind, f"unknown field {shown(name)}")
    for name in schema:
        if name not in entry and name not in defaults:
            raise SpecError(kind, f"field {name} is missing")


def check_weight_size(kind: str, bits: int) -> None:
    if bits > 8 * MAX_FLASH_BYTES:
        raise SpecError(
            kind,
            f"its weights would take {size_text(bits / 8)} on the device, more than the "
            f"{size_text(MAX_FLASH_BYTES)} tinybnn allows one layer of a microcontroller model",
        )


def check_input_shape(shape: object) -> tuple[int, int]:
    """The model input [channels, length]: int16 samples of one window, within the RAM bound."""
    try:
        if not isinstance(shape, (list, tuple)) or len(shape) != 2:
            raise Refused
        c, t = CHANNELS.convert(shape[0]), STEPS.convert(shape[1])
    except Refused:
        raise ModelError(
            f"input_shape must be [channels, length], integers in [1, {MAX_CHANNELS}] and "
            f"[1, {MAX_LENGTH}], not {shown(shape)}"
        ) from None
    if 2 * c * t > MAX_RAM_BYTES:
        raise ModelError(
            f"input_shape {[c, t]}: one window of int16 samples would take "
            f"{size_text(2 * c * t)}, more than {size_text(MAX_RAM_BYTES)}"
        )
    return c, t


def check_class_names(names: object) -> list[str]:
    """1 to MAX_CLASSES strings of 1 to MAX_NAME_LENGTH characters."""
    if isinstance(names, (str, bytes)) or not hasattr(names, "__len__"):
        raise ModelError(f"class_names must be a list of strings, not {shown(names)}")
    if not 1 <= len(names) <= MAX_CLASSES:
        raise ModelError(f"{len(names)} class names: tinybnn takes 1 to {MAX_CLASSES} classes")
    out = []
    for i, name in enumerate(names):
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise ModelError(
                f"class name {i} must be a string of 1 to {MAX_NAME_LENGTH} characters, "
                f"not {shown(name)}"
            )
        out.append(str(name))
    return out


# ---------------------------------------------------------------------------------------
# Tensors.

FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INTS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def ints(t: torch.Tensor, what: str, lo: int, hi: int) -> np.ndarray:
    """The values of `t` (integers, or floats holding whole numbers) as int64, each checked
    in [lo, hi] exactly before any cast; a `ModelError` that starts with `what` otherwise."""
    t = t.detach().cpu()
    if t.dtype in FLOATS:
        a = t.to(torch.float64).numpy()  # exact: every float16/32 value is a float64
        if not np.isfinite(a).all():
            raise ModelError(f"{what} holds NaN or infinity")
        whole = a == np.round(a)
        if not whole.all():
            raise ModelError(f"{what} must hold whole numbers, not {a[~whole][0].item()!r}")
    elif t.dtype in INTS:
        a = t.numpy()
    else:
        raise ModelError(f"{what} must hold integers, not {t.dtype}")
    if a.size:
        mn, mx = a.min().item(), a.max().item()  # Python numbers: compared exactly below
        if mn < lo or mx > hi:
            bad = mn if mn < lo else mx
            raise ModelError(f"{what} must hold integers in [{lo}, {hi}], not {shown(bad)}")
    return a.astype(np.int64)


def check_tensors(
    where: str, expected: Mapping[str, torch.Tensor], given: Mapping, rules: Mapping
) -> dict[str, torch.Tensor]:
    """The tensors `given` for a module whose own are `expected`, checked and converted to
    its dtypes: the same names and shapes; floating-point values that stay finite in the
    module's dtype; integer buffers holding whole numbers; values within `rules` (name ->
    `Int` or `Real`). Raises a `ModelError` that starts with `where` and names the tensor."""
    for name in given:
        if name not in expected:
            raise ModelError(f"{where}: holds an unknown tensor {shown(name)}")
    out = {}
    for name, want in expected.items():
        what = f"{where}: {name}"
        if name not in given:
            raise ModelError(f"{what} is missing")
        t = given[name]
        if not isinstance(t, torch.Tensor) or t.layout != torch.strided:
            raise ModelError(f"{what} must be a dense tensor, not {type(t).__name__}")
        if tuple(t.shape) != tuple(want.shape):
            raise ModelError(f"{what} has shape {list(t.shape)}, not {list(want.shape)}")
        rule = rules.get(name)
        if want.is_floating_point():
            if t.dtype not in FLOATS:
                raise ModelError(f"{what} must hold floating-point numbers, not {t.dtype}")
            v = t.detach().to(want.dtype)
            if not torch.isfinite(v).all():
                raise ModelError(f"{what} holds NaN or infinity (in {want.dtype})")
            if rule is not None and v.numel():
                for x in (v.min().item(), v.max().item()):
                    if not rule.accepts(x):
                        raise ModelError(f"{what} must hold numbers {rule.bounds()}, not {x!r}")
            out[name] = v
        else:
            lo, hi = (rule.lo, rule.hi) if rule is not None else (INT64_MIN, INT64_MAX)
            out[name] = torch.from_numpy(ints(t, what, lo, hi)).to(want.dtype)
    return out
