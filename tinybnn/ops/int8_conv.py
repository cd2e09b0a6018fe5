"""An int8 hidden convolution: binary activations in, int8 weights, binary activations out.

One home for the op: the training layer `Int8Conv1d`, its lowering to the `Int8Conv` stage
(with an optional max-pool on the accumulator and the following batchnorm_sign), the numpy
reference, and the C kernels `tb_i8conv1d_*_b32`: the reference loop and `xs` (int16 pairs,
SMLAD on cores with the DSP extension) and `xm` (words, MULS + ADD per MAC, cores without
SMLAD), both for optimize="speed".

The two crossings are exact by construction:

- binary -> int8: the inputs are {-1, +1} (packed bits, a declared pad value as in
  `binary_conv1d`), the weights int8 codes q with one scale delta_o per output channel, so
  acc = sum(q * x) is an integer with |acc| <= 127 * k * c_in;
- int8 -> binary: the pre-activation is delta_o * acc, a positive scale of the accumulator,
  so a max-pool and the batchnorm_sign after it fold into one integer threshold per channel
  (`contract.fold_threshold`), exactly as for the binary convolutions.

Non-goal (refused by type inference): int8 activations between layers. The layer reads
binary activations only, so two int8 layers always have a batchnorm_sign between them and
no requantisation (integer multiplier and shift) is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..compiler.contract import fold_threshold, unpack_bits
from ..compiler.variants import Variant
from .base import (
    Layer,
    Value,
    channel_view,
    conv_config,
    conv_infer,
    conv_weight_bits,
    float_conv,
    pad_steps,
    quantize_int8,
    register,
)
from .conv import ConvStage
from .spec import CONV_SCHEMA, Choice, ints

INT8_MAX = 127


@register
class Int8Conv1d(Layer):
    """Convolution of {-1, +1} inputs with int8 weights: acc = sum(q * x), preact = delta_o * acc.

    Fake quantisation in training: q = clamp(round(w / delta_o), -127, 127) with a
    straight-through gradient, delta_o = max |w_o| / 127 per output channel (a constant of the
    step). Padding is a declared binary value, `pad_value` +1 or -1, as in `binary_conv1d`.
    """

    kind = "int8_conv1d"
    schema = dict(CONV_SCHEMA, pad_value=Choice((1, -1)))

    @staticmethod
    def weight_bits(config: dict) -> int:
        return conv_weight_bits(config, 8)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | str = 0,
        pad_value: int = 1,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.pad_value = padding, pad_value
        self.pad = pad_steps(self.kind, padding, kernel_size, stride)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        nn.init.uniform_(self.weight, -1, 1)

    def config(self) -> dict:
        return conv_config(self, pad_value=self.pad_value)

    @property
    def note(self) -> str:
        return f"k={self.kernel_size} int8"

    def infer(self, v: Value, where: str) -> Value:
        return conv_infer(
            self,
            v,
            where,
            "bin",
            "binary activations (int8 activations between layers are "
            "not supported: put a batchnorm_sign before it)",
        )

    def integer_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(q, delta): int8 codes [O, C, k] (straight-through) and the scale per output channel."""
        return quantize_int8(self.weight, per_channel=True)

    def to_preact(self, acc: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return acc * channel_view(delta, acc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        q, delta = self.integer_weight()
        x = F.pad(x.to(dtype), (self.pad, self.pad), value=float(self.pad_value))
        acc = F.conv1d(x, q.to(dtype), stride=self.stride)
        return self.to_preact(acc, delta)

    def twin(self) -> nn.Module:
        return float_conv(self)

    def lower(self, lw) -> None:
        i = lw.i
        where = lw.where(i)
        q, delta = self.integer_weight()
        weight = ints(q, f"{where}: weights", -INT8_MAX, INT8_MAX).transpose(0, 2, 1)  # [O][k][C]
        bound = INT8_MAX * self.kernel_size * self.in_channels
        pool_k, pool_s, last, f = lw.take_pool_and_sign(i, lambda acc: self.to_preact(acc, delta))
        lw.emit(
            Int8Conv(
                layers=list(range(i, last + 1)),
                in_shape=lw.in_shape(i),
                out_shape=lw.values[last].shape,
                out_kind="bin",
                kernel_size=self.kernel_size,
                stride=self.stride,
                pad=self.pad,
                pad_value=self.pad_value,
                weight=weight,
                pool_k=pool_k,
                pool_s=pool_s,
                threshold=fold_threshold(f, self.out_channels, -bound, bound, where),
            ),
            last,
        )


@dataclass
class Int8Conv(ConvStage):
    """packed [T][CW] -> int8 conv of +-1 inputs (declared pad value) -> [pool] -> sign -> packed."""

    kernel = "i8conv1d"
    ctype = "tb_i8conv1d_t"

    pad_value: int = 1
    weight: np.ndarray = field(default=None)  # int8 codes [O][k][C]

    @property
    def acc_bound(self) -> int:
        o, k, c = self.weight.shape
        return INT8_MAX * k * c

    def arrays(self):
        return {"w": self.weight.astype(np.int8), **self.threshold.arrays()}

    def macs(self):
        o, k, c = self.weight.shape
        return 0, o * k * c * self.conv_length()

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: packed [T][CW] -> packed [T_out][OW]."""
        c = self.in_shape[0]
        xv = unpack_bits(x, c).astype(np.int64)  # [T][C] of +-1
        edge = np.full((self.pad, c), self.pad_value, np.int64)
        xp = np.concatenate([edge, xv, edge])
        o, k, _ = self.weight.shape
        w = self.weight.astype(np.int64)
        acc = np.zeros((self.conv_length(), o), dtype=np.int64)
        for t in range(len(acc)):
            win = xp[t * self.stride : t * self.stride + k]  # [k][C]
            acc[t] = (w * win[None]).sum(axis=(1, 2))
        return self.sign(acc)

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        return (
            f"L{index} i8conv1d: {t}x{c}b -> {self.out_shape[1]}x{self.weight.shape[0]}b, "
            f"k={self.kernel_size} s={self.stride} pad={self.pad}x({self.pad_value:+d})"
            f"{self.pool_note()}, int8 weights"
        )


# ---------------------------------------------------------------------------------------
# The C: descriptor fields per variant (tb_i8conv1d_t).


def _ref_fields(cs, st: Int8Conv) -> int:
    cs.fields = st.binary_input_fields(cs)
    o, k, c = st.weight.shape
    cs.fields["w"] = cs.array("w", st.arrays()["w"], f"int8 [{o}][{k}][{c}]")
    cs.fields["th"] = cs.threshold(st.threshold)
    return 0


def _xs_fields(cs, st: Int8Conv) -> int:
    """int16 pairs (s * w, s * w) in blocks of 4 output channels over the window's k * cp / 2
    pairs, and where each sum starts, -s * th (see tb_i8conv1d_xs_b32)."""
    cs.fields = st.binary_input_fields(cs)
    cs.fields["th"] = cs.threshold(st.threshold, with_values=False)
    o, k, c = st.weight.shape
    cp = c + c % 2
    t = st.threshold
    s = np.where(t.neg.astype(bool), -1, 1).astype(np.int64)  # [O]
    blocks = (o + 3) // 4
    w = np.zeros((blocks * 4, k, cp), np.int64)
    w[:o, :, :c] = st.weight.astype(np.int64) * s[:, None, None]
    halves = w.reshape(blocks * 4, -1, 2) & 0xFFFF
    pairs = (halves[..., 0] | halves[..., 1] << 16).astype(np.uint32)  # [4 blocks][pairs]
    wp = pairs.reshape(blocks, 4, -1).transpose(0, 2, 1)
    bias = np.zeros(blocks * 4, np.int64)
    bias[:o] = -s * t.th.astype(np.int64) % 2**32
    cs.fields["wp"] = cs.array("wp", wp, f"[{blocks}][{wp.shape[1]}][4]: int16 pairs of s * w")
    cs.fields["bias"] = cs.array("bias", bias.astype(np.uint32), "-s * th")
    return 4 * (st.in_shape[1] + 2 * st.pad) * (cp // 2)


def _xm_fields(cs, st: Int8Conv) -> int:
    """s * w as words in blocks of 4 output channels over the window's k * c_in inputs, and
    where each sum starts, -s * th (see tb_i8conv1d_xm_b32)."""
    cs.fields = st.binary_input_fields(cs)
    cs.fields["th"] = cs.threshold(st.threshold, with_values=False)
    o, k, c = st.weight.shape
    t = st.threshold
    s = np.where(t.neg.astype(bool), -1, 1).astype(np.int64)  # [O]
    blocks = (o + 3) // 4
    w = np.zeros((blocks * 4, k * c), np.int64)
    w[:o] = st.weight.reshape(o, k * c).astype(np.int64) * s[:, None]
    wm = (w.reshape(blocks, 4, k * c).transpose(0, 2, 1) % 2**32).astype(np.uint32)
    bias = np.zeros(blocks * 4, np.int64)
    bias[:o] = -s * t.th.astype(np.int64) % 2**32
    cs.fields["wm"] = cs.array("wm", wm, f"[{blocks}][{k * c}][4]: s * w as words")
    cs.fields["bias"] = cs.array("bias", bias.astype(np.uint32), "-s * th")
    return 4 * k * c


def _signed_sums_fit(st: Int8Conv) -> bool:
    """xs and xm take the sign of s * (acc - th) modulo 2^32: |acc - th| must be < 2^31."""
    th = int(np.abs(st.threshold.th.astype(np.int64)).max())
    return st.acc_bound + th < 2**31


Int8Conv.variants = (
    # int16 pairs, SMLAD: twice the int8 weights' flash, so optimize="speed" only
    Variant(
        "xs",
        "tb_i8conv1d_xs_b32",
        _xs_fields,
        lambda st, core, o: core.smlad and o == "speed" and _signed_sums_fit(st),
    ),
    # words of s * w (4x the int8 weights), one MULS + ADD per MAC: cores without SMLAD
    Variant(
        "xm",
        "tb_i8conv1d_xm_b32",
        _xm_fields,
        lambda st, core, o: not core.smlad and o == "speed" and _signed_sums_fit(st),
    ),
    Variant("ref", "tb_i8conv1d_b32", _ref_fields),
)
