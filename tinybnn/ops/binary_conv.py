"""Binary convolution: {-1, +1} inputs and weights, XNOR and popcount, a declared pad value.

One home for the op: the training layer `BinaryConv1d`, its lowering to the `BinConv` stage
(with an optional max-pool on the accumulator and the following batchnorm_sign), to the
`BinConvSum` stage (the sums, for a shortcut) or to the `BinConvCodes` stage (int8 codes
out, "1a8": the dot products requantised as `codes.CodesOut` says, then max-pooled), the
numpy references, and the C kernels `tb_bconv1d_*_b32`: the reference loop and the fast
variants `vst` (subset tables, three input bits per lookup), `vsl` (bit-sliced counters)
and `lanes` (byte-lane popcount), `tb_bconv1d_sum_*` (reference and `lanes`) and
`tb_bconv1d_q8_*` (reference, `vst` and `lanes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..compiler.contract import Requant, fold_threshold, pack_bits, popcount, words
from ..compiler.kernels import LIMITS
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
from .codes import CODES_SCHEMA, CODES_TENSORS, CodesOut, requant_fields
from .conv import ConvStage
from .pool import MaxPool1d
from .spec import CONV_SCHEMA, Bool, Choice, ints


@register
class BinaryConv1d(CodesOut, Layer):
    """Convolution of {-1, +1} inputs with {-1, +1} weights: acc = sum(x * sign(w)).

    Padding is a declared binary value: `pad_value` +1 or -1 fills `padding` steps each side
    ('valid' for none, 'same' for odd kernels at stride 1); zeros are never used. With
    `scaling=True` the output is alpha_o * acc (XNOR-Net), folded into the next threshold.

    activation="int8" ("1a8"): the layer ends in BatchNorm, a ReLU (relu=True) and int8 fake
    quantisation, as an int8_conv1d with activation="int8" (`codes.CodesOut`), and gives
    int8 codes to the next layer (a max-pool of codes, an int8_conv1d with pad_value 0, or a
    global sum pooling); in eval mode, the integer requantisation of acc.
    """

    kind = "binary_conv1d"
    schema = dict(CONV_SCHEMA, pad_value=Choice((1, -1)), scaling=Bool(), **CODES_SCHEMA)
    tensors = CODES_TENSORS
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
        activation: str = "none",
        relu: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.pad_value = padding, pad_value
        self.pad = pad_steps(self.kind, padding, kernel_size, stride)
        self.scaling = scaling
        self.activation, self.relu = activation, relu
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        nn.init.uniform_(self.weight, -1, 1)
        if activation == "int8":
            self.init_codes_out(out_channels)

    def config(self) -> dict:
        """activation and relu are written only for int8 codes out: a binary convolution's
        config (and model file) stays as it was, and a missing field reads as its default."""
        codes = dict(activation=self.activation, relu=self.relu)
        more = codes if self.activation == "int8" else {}
        return conv_config(self, pad_value=self.pad_value, scaling=self.scaling, **more)

    @property
    def binary_weights(self) -> bool:
        return True

    @property
    def note(self) -> str:
        return f"k={self.kernel_size}{self.codes_note}"

    def infer(self, v: Value, where: str) -> Value:
        out = conv_infer(self, v, where, "bin", "binary activations")
        if self.activation == "int8":
            return Value("i8", out.shape)
        return out if self.scaling else Value("sum", out.shape)  # unscaled: +-1 dot products

    @property
    def acc_bound(self) -> int:
        """|acc| <= k * c_in, on exact integers."""
        return self.kernel_size * self.in_channels

    def preact_scale(self) -> torch.Tensor:
        """alpha_o with scaling, else 1: preact = scale_o * acc."""
        return self.scale()

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
        if self.activation == "int8":
            return self.codes_out(acc)
        return self.to_preact(acc)

    def twin(self) -> nn.Module:
        if self.activation == "int8":
            return self.codes_twin(float_conv(self))
        return float_conv(self)

    def lowered_weight(self, where: str) -> np.ndarray:
        """The binary weights as the stage holds them: int8 +-1 [O][k][C]."""
        return ints(sign(self.weight), f"{where}: weights", -1, 1).transpose(0, 2, 1)

    def lower(self, lw) -> None:
        i = lw.i
        weight = self.lowered_weight(lw.where(i))
        k_bits = self.in_channels * self.kernel_size
        if self.activation == "int8":  # codes out, then an optional max-pool of the codes
            last = i + 1 if isinstance(lw.layer(i + 1), MaxPool1d) else i
            pool = lw.layers[last] if last > i else None
            lw.emit(
                BinConvCodes(
                    layers=list(range(i, last + 1)),
                    in_shape=lw.in_shape(i),
                    out_shape=lw.values[last].shape,
                    out_kind="i8",
                    kernel_size=self.kernel_size,
                    stride=self.stride,
                    pad=self.pad,
                    pad_value=self.pad_value,
                    weight=weight,
                    pool_k=pool.kernel_size if pool else 1,
                    pool_s=pool.stride if pool else 1,
                    requant=self.requant(lw.where(i)),
                ),
                last,
            )
            return
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


def _packed_weight_fields(cs, st) -> None:
    """The input's fields and the packed weights [O][k][CW], as the reference loops read them
    (thresholds, sums and codes alike)."""
    cs.fields = st.binary_input_fields(cs)
    o, k, c = st.weight.shape
    cs.fields["w"] = cs.array("w", st.arrays()["w"], f"[{o}][{k}][{words(c)}]")


def _ref_fields(cs, st: BinConv) -> int:
    """Weights [O][k][CW] and thresholds, read by the reference loop and `lanes`."""
    _packed_weight_fields(cs, st)
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
    _packed_weight_fields(cs, st)
    cs.require("TB_SUM_MAX", st.bound)
    return 0


BinConvSum.variants = (
    Variant("lanes", "tb_bconv1d_sum_lanes_b32", _sum_fields),
    Variant("ref", "tb_bconv1d_sum_b32", _sum_fields),
)


@dataclass
class BinConvCodes(BinConvWindow):
    """packed [T][CW] -> binary conv (declared pad value) -> requantised to int8 codes ->
    [max-pool of the codes] -> int8 [T_out][O] ("1a8").

    The codes are `requant.codes(acc)` of the dot products acc in [-k * c_in, k * c_in], as
    `int8_conv.Int8ActConv` with codes out; pooling the codes is exact for either sign of a
    channel's multiplier (a negative BatchNorm gamma)."""

    kernel = "bconv1d_q8"

    requant: Requant = field(default=None)

    def stream_refusal(self) -> str | None:
        return (
            "carries int8 activations between layers, which compile --streaming does not "
            "keep in its state (use binary activations: activation='none' and a batchnorm_sign)"
        )

    def arrays(self):
        return {"w": pack_bits(self.weight), **self.requant.arrays()}

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: packed [T][CW] -> int8 codes [T_out][O]."""
        return self.pool(self.requant.codes(self.accumulate(x))).astype(np.int8)

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        lo, hi = self.requant.lo, self.requant.hi
        return (
            f"L{index} bconv1d to int8 codes: {t}x{c}b -> {self.out_shape[1]}x"
            f"{self.weight.shape[0]} int8, k={self.kernel_size} s={self.stride} "
            f"pad={self.pad}x({self.pad_value:+d}), requantised to [{lo}, {hi}]{self.pool_note()}"
        )


def _codes_fields(cs, st: BinConvCodes) -> int:
    """Weights [O][k][CW] and the requantisation record; no thresholds."""
    _packed_weight_fields(cs, st)
    cs.fields["rq"] = requant_fields(cs, st.requant)
    return 0


def _codes_vst_fields(cs, st: BinConvCodes) -> int:
    """The subset tables of the weights (`sliced.subset_tables`), the count's slices and the
    requantisation record; the counts are transposed into bytes (TB_VSTQ_MAX_SLICES)."""
    cs.fields = st.binary_input_fields(cs)
    o, k, _ = st.weight.shape
    n = sliced.slices(st.k_bits)
    cs.require("TB_VSL_MAX_SLICES", n)
    cs.require("TB_VSTQ_MAX_SLICES", n)
    cs.fields["slices"] = n
    tab = sliced.subset_tables(sliced.lanes(st.weight))
    cs.fields["tab"] = cs.array(
        "tab", tab, f"[{words(o)}][{k}][{tab.shape[2]}][8][2]: subset sums (l, h) of 3 inputs"
    )
    cs.fields["rq"] = requant_fields(cs, st.requant)
    return 0


BinConvCodes.variants = (
    # Subset tables (5.3 times the packed weights), counts of up to 8 bits: speed only.
    Variant(
        "vst",
        "tb_bconv1d_q8_vst_b32",
        _codes_vst_fields,
        lambda st, core, optimize: (
            optimize == "speed" and sliced.slices(st.k_bits) <= LIMITS["TB_VSTQ_MAX_SLICES"]
        ),
    ),
    Variant("lanes", "tb_bconv1d_q8_lanes_b32", _codes_fields),
    Variant("ref", "tb_bconv1d_q8_b32", _codes_fields),
)
