"""Binary convolution: {-1, +1} inputs and weights, XNOR and popcount, a declared pad value.

One home for the op: the training layer `BinaryConv1d`, its lowering to the `BinConv` stage
(with an optional max-pool on the accumulator and the following batchnorm_sign), the numpy
reference, and the C kernels `tb_bconv1d_*_b32`: the reference loop and the fast variants
`vst` (subset tables, three input bits per lookup), `vsl` (bit-sliced counters) and
`lanes` (byte-lane popcount).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..compiler.contract import fold_threshold, pack_bits, popcount, words
from ..compiler.variants import Variant
from ..quantizers import sign
from . import sliced
from .base import (
    Layer,
    Value,
    binarize_weight,
    channel_view,
    check_sum_bound,
    conv_config,
    conv_infer,
    conv_weight_bits,
    float_conv,
    pad_steps,
    register,
    scaling_factor,
)
from .conv import ConvStage
from .spec import CONV_SCHEMA, Bool, Choice, ints


@register
class BinaryConv1d(Layer):
    """Convolution of {-1, +1} inputs with {-1, +1} weights: acc = sum(x * sign(w)).

    Padding is a declared binary value: `pad_value` +1 or -1 fills `padding` steps each side
    ('valid' for none, 'same' for odd kernels at stride 1); zeros are never used. With
    `scaling=True` the output is alpha_o * acc (XNOR-Net), folded into the next threshold.
    """

    kind = "binary_conv1d"
    schema = dict(CONV_SCHEMA, pad_value=Choice((1, -1)), scaling=Bool())
    weight_bits = staticmethod(conv_weight_bits)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | str = 0,
        pad_value: int = 1,
        scaling: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.pad_value = padding, pad_value
        self.pad = pad_steps(self.kind, padding, kernel_size, stride)
        self.scaling = scaling
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        nn.init.uniform_(self.weight, -1, 1)

    def config(self) -> dict:
        return conv_config(self, pad_value=self.pad_value, scaling=self.scaling)

    @property
    def binary_weights(self) -> bool:
        return True

    @property
    def note(self) -> str:
        return f"k={self.kernel_size}"

    def infer(self, v: Value, where: str) -> Value:
        out = conv_infer(self, v, where, "bin", "binary activations")
        return out if self.scaling else Value("sum", out.shape)  # unscaled: +-1 dot products

    def scale(self) -> torch.Tensor:
        return (
            scaling_factor(self.weight) if self.scaling else torch.ones_like(self.weight[:, 0, 0])
        )

    def to_preact(self, acc: torch.Tensor) -> torch.Tensor:
        if not self.scaling:
            return acc
        return acc * channel_view(self.scale(), acc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        x = F.pad(x.to(dtype), (self.pad, self.pad), value=float(self.pad_value))
        acc = F.conv1d(x, binarize_weight(self.weight).to(dtype), stride=self.stride)
        return self.to_preact(acc)

    def twin(self) -> nn.Module:
        return float_conv(self)

    def lowered_weight(self, where: str) -> np.ndarray:
        """The binary weights as the stage holds them: int8 +-1 [O][k][C]."""
        return ints(sign(self.weight), f"{where}: weights", -1, 1).transpose(0, 2, 1)

    def lower(self, lw) -> None:
        i = lw.i
        weight = self.lowered_weight(lw.where(i))
        k_bits = self.in_channels * self.kernel_size
        pool_k, pool_s, last, f = lw.take_pool_and_sign(i, self.to_preact, sign_optional=True)
        shape = dict(
            layers=list(range(i, last + 1)),
            in_shape=lw.in_shape(i),
            out_shape=lw.values[last].shape,
            kernel_size=self.kernel_size,
            stride=self.stride,
            pad=self.pad,
            pad_value=self.pad_value,
            weight=weight,
            pool_k=pool_k,
            pool_s=pool_s,
        )
        if f is None:  # the sums go on, to a shortcut (binary_residual1d)
            bound = check_sum_bound(k_bits, lw.where(i))
            lw.emit(BinConvSum(out_kind="sum", bound=bound, **shape), last)
            return
        threshold = fold_threshold(f, self.out_channels, -k_bits, k_bits, lw.where(i))
        lw.emit(BinConv(out_kind="bin", threshold=threshold, **shape), last)


@dataclass
class BinConvWindow(ConvStage):
    """What the stages of a binary convolution share (`BinConv`, `BinConvSum` and the
    shortcut's `residual.Residual`): the weights, the declared pad value, the dot products."""

    ctype = "tb_bconv1d_t"

    pad_value: int = 1
    weight: np.ndarray = field(default=None)  # int8 +-1 [O][k][C]

    @property
    def k_bits(self) -> int:
        return self.kernel_size * self.in_shape[0]

    def macs(self):
        o, k, c = self.weight.shape
        return o * k * c * self.conv_length(), 0

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        """x: packed [T][CW] -> the dot products int64 [T_conv][O], before pooling."""
        pad_word = pack_bits(np.full(self.in_shape[0], self.pad_value))
        edge = np.tile(pad_word, (self.pad, 1))
        xp = np.concatenate([edge, x, edge])
        w = pack_bits(self.weight)  # [O][k][CW]
        acc = np.zeros((self.conv_length(), self.weight.shape[0]), dtype=np.int64)
        for t in range(len(acc)):
            win = xp[t * self.stride : t * self.stride + self.kernel_size]  # [k][CW]
            acc[t] = self.k_bits - 2 * popcount(win[None] ^ w).sum(axis=(1, 2))
        return acc


@dataclass
class BinConv(BinConvWindow):
    """packed [T][CW] -> binary conv (declared pad value) -> [pool] -> sign -> packed."""

    kernel = "bconv1d"

    def arrays(self):
        return {"w": pack_bits(self.weight), **self.threshold.arrays()}

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: packed [T][CW] -> packed [T_out][OW]."""
        return self.sign(self.accumulate(x))

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        return (
            f"L{index} bconv1d: {t}x{c}b -> {self.out_shape[1]}x{self.weight.shape[0]}b, "
            f"k={self.kernel_size} s={self.stride} pad={self.pad}x({self.pad_value:+d})"
            f"{self.pool_note()}"
        )


# ---------------------------------------------------------------------------------------
# The C: descriptor fields per variant (tb_bconv1d_t).


def _ref_fields(cs, st: BinConv) -> int:
    """Weights [O][k][CW] and thresholds, read by the reference loop and `lanes`."""
    cs.fields = st.binary_input_fields(cs)
    o, k, c = st.weight.shape
    cs.fields["w"] = cs.array("w", st.arrays()["w"], f"[{o}][{k}][{words(c)}]")
    cs.fields["th"] = cs.threshold(st.threshold)
    return 0


def _vsl_fields(cs, st: BinConv) -> int:
    """Weights with output channels along the words, and the bound U of each channel."""
    cs.fields = st.binary_input_fields(cs)
    o, k, c = st.weight.shape
    sliced.threshold_fields(cs, st.threshold, st.k_bits, o)
    wt = pack_bits(sliced.lanes(st.weight).transpose(0, 2, 3, 1))  # bit b = channel 32g+b
    cs.fields["wt"] = cs.array("wt", wt, f"[{words(o)}][{k}][{c}], bit b = output channel 32g+b")
    return 0


def _vst_fields(cs, st: BinConv) -> int:
    """The subset tables of the weights (`sliced.subset_tables`), and the bound U."""
    cs.fields = st.binary_input_fields(cs)
    o, k, _ = st.weight.shape
    sliced.threshold_fields(cs, st.threshold, st.k_bits, o)
    tab = sliced.subset_tables(sliced.lanes(st.weight))
    cs.fields["tab"] = cs.array(
        "tab", tab, f"[{words(o)}][{k}][{tab.shape[2]}][8][2]: subset sums (l, h) of 3 inputs"
    )
    return 0


BinConv.variants = (
    # Subset tables: fastest on every core, but they hold 5.3 times the packed weights.
    Variant(
        "vst",
        "tb_bconv1d_vst_b32",
        _vst_fields,
        lambda st, core, optimize: optimize == "speed" and sliced.slices_fit(st.k_bits),
    ),
    # Bit-sliced, best measured without tables; whole bytes of input channels.
    Variant(
        "vsl",
        "tb_bconv1d_vsl_b32",
        _vsl_fields,
        lambda st, core, optimize: sliced.slices_fit(st.k_bits) and st.in_shape[0] % 8 == 0,
    ),
    Variant("lanes", "tb_bconv1d_lanes_b32", _ref_fields),
    Variant("ref", "tb_bconv1d_b32", _ref_fields),
)


@dataclass
class BinConvSum(BinConvWindow):
    """packed [T][CW] -> binary conv -> [pool] -> int16 sums [T_out][O], for a shortcut.

    No sign: the next layer (`binary_residual1d`) adds to these sums, so they leave the
    stage as integers in [-bound, bound], bound = k * c_in."""

    kernel = "bconv1d_sum"

    bound: int = 0  # |sum| <= bound, exact

    stream_role = None  # its sums are not streamed

    def stream_refusal(self) -> str | None:
        return "a shortcut's integer sums do not stream (train without --shortcuts)"

    def arrays(self):
        return {"w": pack_bits(self.weight)}

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: packed [T][CW] -> int [T_out][O]."""
        return self.pool(self.accumulate(x))

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        return (
            f"L{index} bconv1d to sums: {t}x{c}b -> {self.out_shape[1]}x{self.weight.shape[0]} "
            f"int16 (|sum| <= {self.bound}), k={self.kernel_size} s={self.stride} "
            f"pad={self.pad}x({self.pad_value:+d}){self.pool_note()}"
        )


def _sum_fields(cs, st: BinConvSum) -> int:
    """Weights [O][k][CW]; no thresholds. The int16 output needs TB_SUM_MAX >= bound."""
    cs.fields = st.binary_input_fields(cs)
    o, k, c = st.weight.shape
    cs.fields["w"] = cs.array("w", st.arrays()["w"], f"[{o}][{k}][{words(c)}]")
    cs.require("TB_SUM_MAX", st.bound)
    return 0


BinConvSum.variants = (
    Variant("lanes", "tb_bconv1d_sum_lanes_b32", _sum_fields),
    Variant("ref", "tb_bconv1d_sum_b32", _sum_fields),
)
