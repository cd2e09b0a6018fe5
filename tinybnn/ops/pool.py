"""Pooling over time: `MaxPool1d` (on pre-activations, where the convolution before it
fuses it, or on binary activations) and `GlobalPool1d` (sum to counts, or max).

One home for both ops: the training layers, their lowering to the `MaxPoolBits`,
`GlobalSum` and `GlobalSumCodes` stages, the numpy reference, and the C kernels
`tb_maxpool1d_b32`, `tb_globalsum_b32` (and its bit-sliced variant `vsl`) and
`tb_globalsum_s8` (int8 codes).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..compiler.contract import INT32_MAX, unpack_bits
from ..compiler.kernels import LIMITS
from ..compiler.program import Stage
from ..compiler.variants import Variant
from ..errors import ModelError
from .base import PREACT_KINDS, Layer, Value, conv_length, expect, register
from .spec import STEPS, Choice, Either, Null


@register
class MaxPool1d(Layer):
    """Max pooling over time, of binary activations, of pre-activations (before the sign)
    or of int8 codes (after an int8_conv1d with activation="int8", which fuses it).

    No padding; stride defaults to kernel_size. A trailing partial window is dropped, as in
    `torch.nn.MaxPool1d`.
    """

    kind = "maxpool1d"
    schema = dict(kernel_size=STEPS, stride=Either((STEPS, Null())))

    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def config(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride)

    @property
    def note(self) -> str:
        return f"k={self.kernel_size}"

    def infer(self, v: Value, where: str) -> Value:
        expect(v, (*PREACT_KINDS, "bin", "i8"), 2, where, "activations or pre-activations")
        t = conv_length(where, v.shape[1], self.kernel_size, self.stride, 0)
        return Value(v.kind, (v.shape[0], t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool1d(x, self.kernel_size, self.stride)

    def twin(self) -> nn.Module:
        return nn.MaxPool1d(self.kernel_size, self.stride)

    def lower(self, lw) -> None:
        i = lw.i
        v_in = lw.values[i - 1] if i > 0 else None
        if v_in is None or v_in.kind != "bin":
            raise ModelError(
                f"{lw.where(i)}: maxpool1d on pre-activations must follow a conv or a "
                "binary_residual1d"
            )
        stage = MaxPoolBits(
            layers=[i],
            in_shape=v_in.shape,
            out_shape=lw.values[i].shape,
            out_kind="bin",
            kernel_size=self.kernel_size,
            stride=self.stride,
        )
        lw.emit(stage, i)


class GlobalMean(nn.Module):
    """The twin of global pooling: the mean (for sum) or the max over time."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(-1) if self.mode == "sum" else x.amax(-1)


@register
class GlobalPool1d(Layer):
    """Pooling over all of time: mode='sum' gives counts (sum of +-1, in [-T, T]) for an int8
    or binary classifier; mode='max' gives binary activations (+1 if any step is +1).

    Of int8 codes (a convolution with activation="int8" before it), mode='sum' gives the
    integer sums of the codes, each within T * 128 (T * 127 after a ReLU), read by the
    classifier as counts are.

    Sum rather than mean keeps the value an integer; the classifier's temperature absorbs 1/T.
    """

    kind = "global_pool1d"
    schema = dict(mode=Choice(("sum", "max")))

    def __init__(self, mode: str = "sum"):
        super().__init__()
        self.mode = mode

    def config(self) -> dict:
        return dict(mode=self.mode)

    @property
    def note(self) -> str:
        return self.mode

    def infer(self, v: Value, where: str) -> Value:
        if self.mode == "sum":
            expect(v, ("bin", "i8"), 2, where, "binary activations or int8 codes")
        else:
            expect(v, ("bin",), 2, where, "binary activations (mode='sum' takes int8 codes)")
        return Value("count" if self.mode == "sum" else "bin", (v.shape[0],))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(-1) if self.mode == "sum" else x.amax(-1)

    def twin(self) -> nn.Module:
        return GlobalMean(self.mode)

    def lower(self, lw) -> None:
        i = lw.i
        v_in = lw.values[i - 1]
        c, t = v_in.shape
        if self.mode == "max":
            stage = MaxPoolBits(
                layers=[i],
                in_shape=v_in.shape,
                out_shape=(c,),
                out_kind="bin",
                kernel_size=t,
                stride=t,
            )
        elif v_in.kind == "i8":
            lo, hi = lw.stages[-1].requant.lo, lw.stages[-1].requant.hi
            stage = GlobalSumCodes(
                layers=[i],
                in_shape=v_in.shape,
                out_shape=(c,),
                out_kind="count",
                bound=t * max(-lo, hi),  # Python integers: nothing wraps
            )
            if stage.bound > INT32_MAX:
                raise ModelError(
                    f"{lw.where(i)}: the sums of {t} int8 codes could reach +-{stage.bound}, "
                    "beyond int32; pool the codes over time first (a maxpool1d)"
                )
        else:
            stage = GlobalSum(layers=[i], in_shape=v_in.shape, out_shape=(c,), out_kind="count")
        lw.emit(stage, i)


@dataclass
class MaxPoolBits(Stage):
    """Max of +-1 over time windows = AND of bits, per word. Global max pooling is k = T."""

    kernel = "maxpool1d"
    ctype = "tb_maxpool1d_t"

    kernel_size: int = 1
    stride: int = 1

    @property
    def t_out(self) -> int:
        return self.out_shape[1] if len(self.out_shape) == 2 else 1

    # Streaming: a window pooling is a column stage (the last k columns -> one, every
    # `stride` inputs); global max pooling reduces the last W columns (`WindowAnd`).
    @property
    def stream_role(self) -> str:
        return "column" if len(self.out_shape) == 2 else "window"

    @property
    def stream_history(self) -> int:
        return self.kernel_size

    @property
    def stream_every(self) -> int:
        return self.stride

    def receptive(self) -> MaxPoolBits:
        return replace(
            self,
            in_shape=(self.in_shape[0], self.kernel_size),
            out_shape=(self.in_shape[0], 1),
        )

    def stream_column(self, history: np.ndarray) -> np.ndarray:
        return self.receptive().run(history)[0]

    def stream_start(self) -> WindowAnd:
        return WindowAnd(self)

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: packed [T][CW] -> AND over windows (+1 wins) -> [T_out][CW] (flat if global)."""
        k, s = self.kernel_size, self.stride
        out = np.stack(
            [np.bitwise_and.reduce(x[j * s : j * s + k], axis=0) for j in range(self.t_out)]
        )
        return out.reshape(-1) if len(self.out_shape) == 1 else out

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        return (
            f"L{index} maxpool1d on bits: {t}x{c}b -> {self.t_out}x{c}b, "
            f"k={self.kernel_size} s={self.stride}"
        )


class WindowAnd:
    """Reference of streamed global max pooling: the last W columns, ANDed when read."""

    def __init__(self, stage: MaxPoolBits):
        self.stage = stage
        self.ring: deque = deque(maxlen=stage.in_shape[1])

    def push(self, column: np.ndarray) -> None:
        self.ring.append(column)

    def read(self) -> np.ndarray:
        return self.stage.run(np.stack(self.ring))


def _maxpool_fields(cs, st: MaxPoolBits) -> int:
    c, t = st.in_shape
    cs.fields = dict(c=c, t_in=t, t_out=st.t_out, kernel_size=st.kernel_size, stride=st.stride)
    return 0


MaxPoolBits.variants = (Variant("ref", "tb_maxpool1d_b32", _maxpool_fields),)


@dataclass
class GlobalSum(Stage):
    """packed [T][CW] -> int32 [C]: sum over t of +-1 = T - 2 * (number of set bits)."""

    kernel = "globalsum"
    ctype = "tb_globalsum_t"

    def run(self, x: np.ndarray) -> np.ndarray:
        c, t = self.in_shape
        bits = 1 - unpack_bits(x, c).astype(np.int64)  # 2 where -1, 0 where +1
        return (t - bits.sum(0)).astype(np.int64)

    @property
    def bound(self) -> int:
        """|count| <= T."""
        return self.in_shape[1]

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        return f"L{index} global sum pooling: {t}x{c}b -> {c} int32 counts"

    # Streaming: a running sum over the last W columns (`RunningSum`).
    stream_role = "window"

    def stream_start(self) -> RunningSum:
        return RunningSum(self)


class RunningSum:
    """Reference of streamed global sum pooling: the set bits of each channel over the last W
    columns, counted as they come and go (the new column added, the one leaving subtracted);
    read as counts W - 2 * ones, the windowed `GlobalSum.run` of those W columns."""

    def __init__(self, stage: GlobalSum):
        self.c, self.w = stage.in_shape
        self.ring: deque = deque()
        self.ones = np.zeros(self.c, np.int64)

    def push(self, column: np.ndarray) -> None:
        if len(self.ring) == self.w:
            self.ones -= self.bits(self.ring.popleft())
        self.ring.append(column)
        self.ones += self.bits(column)

    def bits(self, column: np.ndarray) -> np.ndarray:
        """1 where the channel's bit is set (-1), int64 [C]."""
        return (1 - unpack_bits(column, self.c).astype(np.int64)) // 2

    def read(self) -> np.ndarray:
        return self.w - 2 * self.ones


def _global_sum_fields(cs, st: GlobalSum) -> int:
    c, t = st.in_shape
    cs.fields = dict(c=c, t=t)
    return 0


def _global_sum_vsl_fields(cs, st: GlobalSum) -> int:
    cs.require("TB_GSUM_VSL_MAX_T", st.in_shape[1])
    return _global_sum_fields(cs, st)


GlobalSum.variants = (
    # Bit-sliced: 32 channels' set bits counted at once, then one byte per channel.
    Variant(
        "vsl",
        "tb_globalsum_vsl_b32",
        _global_sum_vsl_fields,
        lambda st, core, optimize: st.in_shape[1] <= LIMITS["TB_GSUM_VSL_MAX_T"],
    ),
    Variant("ref", "tb_globalsum_b32", _global_sum_fields),
)


@dataclass
class GlobalSumCodes(Stage):
    """int8 codes [T][C] -> int32 [C]: the sum over t of each channel's codes, within
    +-bound (T times the largest |code|, checked within int32 on exact integers)."""

    kernel = "globalsum"
    ctype = "tb_globalsum_t"

    bound: int = 0

    @property
    def in_kind(self) -> str:
        return "i8"

    def stream_refusal(self) -> str | None:
        return "sums int8 codes, which compile --streaming does not keep in its state"

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.int64).sum(0)

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        return f"L{index} global sum pooling of int8 codes: {t}x{c} int8 -> {c} int32 sums"


GlobalSumCodes.variants = (Variant("ref", "tb_globalsum_s8", _global_sum_fields),)
