"""The first layer: raw int16 samples in, a convolution with binary or int8 weights.

One home for the op: the training layer `InputConv1d`, its lowering to the `InputConv`
stage (with an optional max-pool on the accumulator and the following batchnorm_sign), the
numpy reference, and the C kernels `tb_iconv1d_*_s16`: the reference loop and the fast
variants `sso` (subset-sum tables read at precomputed offsets, binary or ternary weights),
`sst` (subset-sum tables, binary weights), `xn` (x' cached once per step), `xm`
(int8 weights as words, four sums in registers: cores without SMLAD), `xs` (int8 weights
folded with the input multipliers into int16 pairs, SMLAD) and `xq` (int8 weights in blocks
of four).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..compiler.contract import fold_threshold, pack_bits
from ..compiler.kernels import LIMITS
from ..compiler.variants import CONSTANTS, Variant
from ..errors import ModelError
from .base import (
    Layer,
    RoundSte,
    Value,
    binarize_weight,
    channel_view,
    conv_config,
    conv_infer,
    conv_weight_bits,
    float_conv,
    pad_steps,
    quantize_int8,
    register,
    scaling_factor,
)
from .conv import ConvStage
from .spec import (
    CONV_SCHEMA,
    INT16_MAX,
    INT16_MIN,
    INT32_MAX,
    Bool,
    Choice,
    Int,
    IntRange,
    ints,
)

# The largest shift of the input scale 2^-shift: `fit_normalization` gives at most 23 (8-bit
# multipliers over a standard deviation of at most 2^15).
MAX_SHIFT = 31
WEIGHT_BITS = {"binary": 1, "ternary": 2, "int8": 8}  # bits per weight on the device
# Ternary weights: |w| below this fraction of the channel's mean |w| quantise to 0 (TWN).
TERNARY_ZERO = 0.7


def quantize_ternary(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ternary weights per output channel (Li & Liu, Ternary Weight Networks):
    q = clamp(round(w / delta), -1, 1) with delta = 2 * 0.7 * mean|w| (so q = 0 where
    |w| <= 0.7 * mean|w|, else sign(w); round(0.5) = 0), forward; gradient
    dq/dw = 1 / delta where |w / delta| < 1.5 (the clamp's edge), else 0 (straight through
    the rounding). Returns (q, delta); delta is a constant of the step."""
    delta = 2 * TERNARY_ZERO * w.detach().abs().flatten(1).mean(1).clamp_min(1e-8)
    d = delta.view((-1,) + (1,) * (w.dim() - 1))
    return torch.clamp(RoundSte.apply(w / d), -1, 1), delta


@register
class InputConv1d(Layer):
    """First layer: raw integer samples in, a convolution with binary, ternary or int8 weights.

    The input is normalised as integer arithmetic: x' = (clamp(x, lo, hi) - offset_c) *
    multiplier_c, a per-channel integer offset and integer multiplier, and the network sees
    x' * 2^-shift. Padding, if any, holds x' = 0 (the channel's offset in raw units).

    The accumulator is sum(w_q * x') with w_q = sign(w) (weights="binary"), codes in
    {-1, 0, +1} (weights="ternary", `quantize_ternary`) or int8 codes (weights="int8"), the
    last two with one scale per output channel; the pre-activation is acc * scale_o *
    2^-shift with scale_o = alpha_o (binary, scaling=True), delta_o (ternary, int8) or 1.
    A ternary weight can leave an input channel out, which a binary one cannot, and its
    table kernel (`sso`) costs two lookups per tap where a binary one costs one.
    `fit_normalization` sets offset, multiplier and shift from data.
    """

    kind = "input_conv1d"
    schema = dict(
        CONV_SCHEMA,
        weights=Choice(("binary", "ternary", "int8")),
        scaling=Bool(),
        input_range=IntRange(INT16_MIN, INT16_MAX),
    )
    # x' = (x - offset) * multiplier stays within int32 for every int16 x (|x'| < 2^31).
    tensors = dict(
        offset=Int(INT16_MIN, INT16_MAX), multiplier=Int(1, INT16_MAX), shift=Int(0, MAX_SHIFT)
    )

    @staticmethod
    def weight_bits(config: dict) -> int:
        return conv_weight_bits(config, WEIGHT_BITS[config["weights"]])

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | str = 0,
        weights: str = "binary",
        scaling: bool = False,
        input_range: tuple[int, int] = (INT16_MIN, INT16_MAX),
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = padding
        self.pad = pad_steps(self.kind, padding, kernel_size, stride)
        self.weights, self.scaling = weights, scaling
        self.input_range = input_range
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        nn.init.uniform_(self.weight, -1, 1)
        self.register_buffer("offset", torch.zeros(in_channels, dtype=torch.int64))
        self.register_buffer("multiplier", torch.ones(in_channels, dtype=torch.int64))
        self.register_buffer("shift", torch.zeros((), dtype=torch.int64))

    def config(self) -> dict:
        return conv_config(
            self, weights=self.weights, scaling=self.scaling, input_range=list(self.input_range)
        )

    @property
    def binary_weights(self) -> bool:
        return self.weights == "binary"

    @property
    def note(self) -> str:
        return f"k={self.kernel_size} {self.weights}"

    def infer(self, v: Value, where: str) -> Value:
        return conv_infer(self, v, where, "int", "raw integer samples")

    @torch.no_grad()
    def fit_normalization(self, x: torch.Tensor, multiplier_bits: int | None = None) -> None:
        """Offsets = rounded channel means; multiplier_c / 2^shift ~ 1 / std_c.

        Multipliers are integers in [1, 2^bits - 1]: 8 bits with binary or ternary weights, 3 with int8
        (whose per-channel weight scales already absorb most of the normalisation), which
        keeps the int32 accumulator bound (checked by the compiler) well clear of overflow.
        """
        bits = multiplier_bits or (3 if self.weights == "int8" else 8)
        x = x.double().clamp(*self.input_range).transpose(0, 1).reshape(self.in_channels, -1)
        off = torch.round(x.mean(1))
        std = x.std(1).clamp_min(1.0)
        # Largest shift such that every multiplier stays within the bit budget.
        shift = math.floor(math.log2((2**bits - 1) * std.min().item()))
        shift = max(shift, 0)
        mult = torch.round(2.0**shift / std).clamp(1, 2**bits - 1)
        self.offset.copy_(off.to(torch.int64))
        self.multiplier.copy_(mult.to(torch.int64))
        self.shift.fill_(shift)

    def integer_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(w_q, scale_o): integer-valued weights and the per-output-channel real scale."""
        if self.weights == "binary":
            wq = binarize_weight(self.weight)
            scale = (
                scaling_factor(self.weight)
                if self.scaling
                else torch.ones_like(self.weight[:, 0, 0])
            )
        elif self.weights == "ternary":
            wq, scale = quantize_ternary(self.weight)
        else:
            wq, scale = quantize_int8(self.weight, per_channel=True)
        return wq, scale

    def normalize(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """x' = (clamp(x) - offset) * multiplier: integer-valued, exact in float64."""
        x = x.to(dtype).clamp(*self.input_range)
        return (x - self.offset.to(dtype)[:, None]) * self.multiplier.to(dtype)[:, None]

    def to_preact(self, acc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """acc * scale_o * 2^-shift (channel dim 1), the real value the next layer sees."""
        factor = scale.to(acc.dtype) * 2.0 ** -int(self.shift)
        return acc * channel_view(factor, acc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        wq, scale = self.integer_weight()
        xn = F.pad(self.normalize(x, dtype), (self.pad, self.pad))
        acc = F.conv1d(xn, wq.to(dtype), stride=self.stride)
        return self.to_preact(acc, scale)

    def twin(self) -> nn.Module:
        return nn.Sequential(Standardize(self.in_channels), float_conv(self))

    def lower(self, lw) -> None:
        i = lw.i
        if i != 0:
            raise ModelError(f"{lw.where(i)}: input_conv1d must be the first layer")
        where = lw.where(i)
        wq, scale = self.integer_weight()
        weight = ints(wq, f"{where}: weights", -127, 127).transpose(0, 2, 1)  # [O][k][C]
        offset, mult = (
            ints(
                getattr(self, name),
                f"{where}: {name}",
                self.tensors[name].lo,
                self.tensors[name].hi,
            )
            for name in ("offset", "multiplier")
        )
        lo, hi = self.input_range
        xmax = np.maximum(np.abs(lo - offset), np.abs(hi - offset)) * mult  # |x'| < 2^31
        bound = self.accumulator_bound(weight, xmax)
        if bound > INT32_MAX:
            raise ModelError(
                f"{where}: the int32 accumulator could overflow (bound {bound} > 2^31-1 for "
                f"input_range {self.input_range}); narrow input_range or lower the multipliers"
            )
        pool_k, pool_s, last, f = lw.take_pool_and_sign(i, lambda acc: self.to_preact(acc, scale))
        lw.emit(
            InputConv(
                layers=list(range(i, last + 1)),
                in_shape=lw.in_shape(i),
                out_shape=lw.values[last].shape,
                out_kind="bin",
                kernel_size=self.kernel_size,
                stride=self.stride,
                pad=self.pad,
                binary=self.weights == "binary",
                weight=weight,
                offset=offset,
                multiplier=mult,
                lo=lo,
                hi=hi,
                pool_k=pool_k,
                pool_s=pool_s,
                acc_bound=bound,
                threshold=fold_threshold(f, self.out_channels, -bound, bound, where),
            ),
            last,
        )

    @staticmethod
    def accumulator_bound(weight: np.ndarray, xmax: np.ndarray) -> int:
        """max over output channels of sum |w| * max |x'_c|, exactly: in float64 first, and
        in int64 only when that estimate (relative error far below 2^-20) is below 2^62, so
        the integer sum cannot wrap; a larger one is returned as is (it is refused anyway)."""
        w = np.abs(weight).sum(axis=1)  # [O][C]
        estimate = float((w.astype(np.float64) @ xmax.astype(np.float64)).max())
        if estimate >= 2.0**62:
            return int(estimate)
        return int((w @ xmax).max())


class Standardize(nn.Module):
    """The twin's input normalisation: (x - mean_c) / sd_c, fitted on the training data."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("sd", torch.ones(channels))

    @torch.no_grad()
    def fit_normalization(self, x: torch.Tensor) -> None:
        x = x.double().transpose(0, 1).reshape(x.shape[1], -1)
        self.mean.copy_(x.mean(1).float())
        self.sd.copy_(x.std(1).clamp_min(1.0).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean[:, None]) / self.sd[:, None]


@dataclass
class InputConv(ConvStage):
    """int16 samples [T][C] -> clamp, (x - offset) * multiplier -> conv -> [pool] -> sign."""

    kernel = "iconv1d"
    ctype = "tb_iconv1d_t"

    binary: bool = True
    weight: np.ndarray = field(default=None)  # int8 [O][k][C]: +-1 or int8 codes
    offset: np.ndarray = field(default=None)  # int16 [C]
    multiplier: np.ndarray = field(default=None)  # int16 [C]
    lo: int = -(2**15)
    hi: int = 2**15 - 1
    acc_bound: int = 0

    @property
    def in_kind(self) -> str:
        return "samples"

    def arrays(self):
        o = self.weight.shape[0]
        w = (
            pack_bits(self.weight.reshape(o, -1))  # [O][ceil(k*C/32)], tap-major
            if self.binary
            else self.weight.astype(np.int8)
        )
        return {
            "w": w,
            "offset": self.offset.astype(np.int16),
            "mult": self.multiplier.astype(np.int16),
            **self.threshold.arrays(),
        }

    def macs(self):
        o, k, c = self.weight.shape
        return 0, o * k * c * self.conv_length()

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: int16 [T][C] -> packed [T_out][OW]."""
        xn = (np.clip(x.astype(np.int64), self.lo, self.hi) - self.offset) * self.multiplier
        xn = np.pad(xn, ((self.pad, self.pad), (0, 0)))  # padding is x' = 0
        o, k, c = self.weight.shape
        acc = np.zeros((self.conv_length(), o), dtype=np.int64)
        for t in range(len(acc)):
            win = xn[t * self.stride : t * self.stride + k]  # [k][C]
            acc[t] = (self.weight * win[None]).sum(axis=(1, 2))
        assert np.abs(acc).max(initial=0) <= self.acc_bound
        return self.sign(acc)

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        return (
            f"L{index} input_conv1d: {t}x{c} int16 -> {self.out_shape[1]}x{self.weight.shape[0]}b, "
            f"k={self.kernel_size} s={self.stride} pad={self.pad}{self.pool_note()}, "
            f"{'binary' if self.binary else 'int8'} weights, |acc| <= {self.acc_bound}"
        )

    @property
    def ring(self) -> int:
        """Steps the fast kernels cache: the span, rounded up to a power of two (a mask, not
        a division: Cortex-M0 has no divide instruction)."""
        return 1 << (self.span - 1).bit_length()

    def folded_weights(self) -> np.ndarray:
        """int8 weights times the input multipliers, w' = w * mult_c, int64 [O][k][C]."""
        return self.weight.astype(np.int64) * self.multiplier.astype(np.int64)

    def signed_sums_fit(self) -> bool:
        """`xs` and `xm` take the sign of acc - th modulo 2^32: |acc - th| must be < 2^31."""
        th = int(np.abs(self.threshold.th.astype(np.int64)).max())
        return not self.binary and self.acc_bound + th < 2**31

    def table_planes(self) -> int:
        """Table lookups per tap of `sso`: 1 for weights in {-1, +1}, 2 for weights in
        {-1, 0, +1} (as the sum of two rows of +-1, halved), 0 where neither."""
        if self.binary:
            return 1
        return 2 if int(np.abs(self.weight.astype(np.int64)).max(initial=0)) <= 1 else 0

    def table_sums_fit(self) -> bool:
        """`sso` takes the sign of planes * (acc - th - neg) modulo 2^32: it must be < 2^31
        in magnitude, on exact integers."""
        th = int(np.abs(self.threshold.th.astype(np.int64)).max())
        planes = self.table_planes()
        return planes > 0 and planes * (self.acc_bound + th + 1) < 2**31

    def pairs_fit(self) -> bool:
        """`xs` needs every folded weight in int16 as well."""
        return self.signed_sums_fit() and int(np.abs(self.folded_weights()).max()) <= 2**15 - 1


# ---------------------------------------------------------------------------------------
# The C: descriptor fields per variant (tb_iconv1d_t).


def _base_fields(cs, st: InputConv, weights: bool = True, threshold: bool = True) -> None:
    """The fields every variant fills: the walk, the clamp, the normalisation; the weights
    as the reference loop reads them (unless the variant reads its own layout) and the
    thresholds (unless the variant folds them)."""
    arrays = st.arrays()
    w = None
    if weights:
        w = cs.array("w", arrays["w"], "binary, tap-major" if st.binary else "int8 [O][k][C]")
    cs.fields = dict(
        **st.conv_fields(),
        lo=st.lo,
        hi=st.hi,
        offset=cs.array("offset", arrays["offset"]),
        mult=cs.array("mult", arrays["mult"]),
    )
    if w is not None:
        cs.fields["wb" if st.binary else "wq"] = w
    if threshold:
        cs.fields["th"] = cs.threshold(st.threshold)


def _ref_fields(cs, st: InputConv) -> int:
    _base_fields(cs, st)
    return 0


def _xn_fields(cs, st: InputConv) -> int:
    """x' of every step once, in a ring (tb_iconv1d_x_steps)."""
    _base_fields(cs, st)
    cs.fields["ring"] = st.ring
    return 4 * 2 * st.ring * st.in_shape[0]


def _sst_fields(cs, st: InputConv) -> int:
    """The taps' table indices instead of the weight bits."""
    _base_fields(cs, st, weights=False)
    c = st.in_shape[0]
    o, k, _ = st.weight.shape
    cs.require("TB_SST_MAX_IN", c)
    cs.require("TB_SST_MAX_SPAN", st.span)
    cs.fields["ring"] = st.ring
    bits = (st.weight < 0).astype(np.int64) << np.arange(c)  # [O][k][C]
    index = bits.sum(axis=2).astype(np.uint8)  # [O][k]: the table entry of each tap
    cs.fields["tap_index"] = cs.array("tap", index, f"[{o}][{k}] weight bits per tap")
    return 4 * (st.ring + st.ring * (1 << c) + (1 << c))


def _sso_fields(cs, st: InputConv) -> int:
    """Per output channel a record: where its sums start, -P * (th + neg), then the byte
    offsets of its table entries from the window's first table, tap by tap (P = 1 plane of
    weight bits, or 2 for ternary weights, w = (u + v) / 2), as halfwords, the last alone in
    its word where their number is odd; per group of 32 channels, the last channel first
    (see tb_sso_bits, tb_iconv1d_sso_s16)."""
    _base_fields(cs, st, weights=False, threshold=False)
    c = st.in_shape[0]
    o, k, _ = st.weight.shape
    width = 1 << c
    cs.require("TB_SST_MAX_IN", c)
    cs.require("TB_SST_MAX_SPAN", st.span)
    t = st.threshold
    w = st.weight.astype(np.int64)
    planes = [w < 0] if st.binary else [w < 0, w <= 0]  # bit 1 = -1: u, then v
    masks = np.stack([(pl << np.arange(c)).sum(axis=2) for pl in planes], axis=2)  # [O][k][P]
    off = (4 * (np.arange(k)[None, :, None] * width + masks)).reshape(o, -1)  # [O][n]
    n = off.shape[1]
    assert off.max() < 2**16  # k * 2^c_in <= TB_SST_MAX_SPAN * 2^TB_SST_MAX_IN words
    if n % 2:
        off = np.concatenate([off, np.zeros((o, 1), np.int64)], axis=1)
    pairs = off[:, 0::2] | off[:, 1::2] << 16
    bias = -len(planes) * (t.th.astype(np.int64) + t.neg.astype(np.int64)) % 2**32
    rec = np.concatenate([bias[:, None], pairs], axis=1)  # [O][1 + ceil(n / 2)]
    order = np.concatenate([np.arange(g, min(g + 32, o))[::-1] for g in range(0, o, 32)])
    cs.fields["ring"] = st.ring
    cs.fields["lookups"] = n
    cs.fields["table_rec"] = cs.array(
        "table_rec",
        rec[order].astype(np.uint32),
        f"[{o}][{rec.shape[1]}]: -{len(planes)} * (th + neg), then {n} byte offsets; "
        "per 32 channels, the last first",
    )
    cs.fields["th"] = cs.threshold(t, with_values=False)
    return 4 * 2 * st.ring * width  # the tables, each step twice


def _xq_fields(cs, st: InputConv) -> int:
    """int8 weights in blocks of 4 output channels."""
    _base_fields(cs, st, weights=False)
    c = st.in_shape[0]
    o, k, _ = st.weight.shape
    cs.fields["ring"] = st.ring
    blocks = np.zeros(((o + 3) // 4 * 4, k, c), np.int8)
    blocks[:o] = st.weight
    wq4 = blocks.reshape(-1, 4, k, c).transpose(0, 2, 3, 1)
    cs.fields["wq4"] = cs.array("wq4", wq4, f"int8 [{(o + 3) // 4}][{k}][{c}][4]")
    return 4 * 2 * st.ring * c


def _xs_fields(cs, st: InputConv) -> int:
    """The folded weights s * w' as int16 pairs of samples in blocks of 4 output channels,
    and where each sum starts, -s * (sum of w' * offset_c + th), s = -1 where the output is
    -1 above th (see tb_iconv1d_xs_s16). Pairs run over the window's k * c_in samples where
    the target loads words at any address (flat), else over each row's channels, an odd c_in
    padded by a zero weight."""
    _base_fields(cs, st, weights=False, threshold=False)
    o, k, c = st.weight.shape
    cs.fields["ring"] = st.ring
    t = st.threshold
    s = np.where(t.neg.astype(bool), -1, 1).astype(np.int64)  # [O]
    folded = st.folded_weights()
    offsets = (folded * st.offset.astype(np.int64)).sum(axis=(1, 2))
    folded *= s[:, None, None]
    blocks = (o + 3) // 4
    bias = np.zeros(blocks * 4, np.int64)
    bias[:o] = -s * (offsets + t.th.astype(np.int64)) % 2**32  # where the sums start
    flat = cs.core.unaligned
    if flat:  # [O][k * c] samples, padded to even
        n = k * c + (k * c) % 2
        w = np.zeros((blocks * 4, n), np.int64)
        w[:o, : k * c] = folded.reshape(o, k * c)
    else:  # [O][k][cp] samples, cp = c rounded up to even
        cp = c + c % 2
        w = np.zeros((blocks * 4, k, cp), np.int64)
        w[:o, :, :c] = folded
        w = w.reshape(blocks * 4, k * cp)
    halves = w.reshape(blocks * 4, -1, 2) & 0xFFFF
    pairs = (halves[..., 0] | halves[..., 1] << 16).astype(np.uint32)  # [4 blocks][pairs]
    wp = pairs.reshape(blocks, 4, -1).transpose(0, 2, 1)
    cs.fields["wp"] = cs.array(
        "wp", wp, f"[{blocks}][{wp.shape[1]}][4]: int16 pairs of s * w'{', flat' if flat else ''}"
    )
    cs.fields["bias"] = cs.array("bias", bias.astype(np.uint32), "-s * (sum of w' * offset + th)")
    cs.fields["flat"] = int(flat)
    cs.fields["th"] = cs.threshold(t, with_values=False)
    return 4 * st.ring * (c + c % 2)  # the ring of samples, each step twice


def _xm_fields(cs, st: InputConv) -> int:
    """s * w as words in blocks of 4 output channels, over the window's k * c_in values of
    x', and where each sum starts, -s * th, s = -1 where the output is -1 above th (see
    tb_iconv1d_xm_s16)."""
    _base_fields(cs, st, weights=False, threshold=False)
    o, k, c = st.weight.shape
    cs.fields["ring"] = st.ring
    st.mac4_word_fields(cs)
    cs.fields["th"] = cs.threshold(st.threshold, with_values=False)
    return 4 * 2 * st.ring * c  # the ring of x', as xn


def _sso_serves(st: InputConv, core, optimize: str) -> bool:
    return (
        st.in_shape[0] <= min(core.sst_max_in, LIMITS["TB_SST_MAX_IN"])
        and st.span <= LIMITS["TB_SST_MAX_SPAN"]
        and st.table_sums_fit()
    )


def _sst_serves(st: InputConv, core, optimize: str) -> bool:
    return (
        st.binary
        and st.in_shape[0] <= min(core.sst_max_in, LIMITS["TB_SST_MAX_IN"])
        and st.span <= LIMITS["TB_SST_MAX_SPAN"]
    )


InputConv.variants = (
    # subset-sum tables read at byte offsets, the threshold folded in: binary or ternary
    # weights, one or two lookups per tap
    Variant("sso", "tb_iconv1d_sso_s16", _sso_fields, _sso_serves),
    # subset-sum tables: one lookup per tap for all channels
    Variant("sst", "tb_iconv1d_sst_s16", _sst_fields, _sst_serves),
    Variant("xn", "tb_iconv1d_xn_s16", _xn_fields, lambda st, core, o: st.binary),
    # int8 without SMLAD: words of s * w, four sums in registers, one multiply per MAC; its
    # weights take 4 bytes each, so --optimize size takes xs (and a tight flash budget xq)
    Variant(
        "xm",
        "tb_iconv1d_xm_s16",
        _xm_fields,
        lambda st, core, o: o == "speed" and not core.smlad and st.signed_sums_fit(),
    ),
    # int8: weights folded with the multipliers, channel pairs (SMLAD) where they fit int16;
    # those take 2 bytes a weight, so a flash budget that needs the bytes takes xq
    Variant(
        "xs",
        "tb_iconv1d_xs_s16",
        _xs_fields,
        lambda st, core, o: o != CONSTANTS and st.pairs_fit(),
    ),
    # int8 weights as bytes in blocks of four output channels: the fewest constants
    Variant("xq", "tb_iconv1d_xq_s16", _xq_fields, lambda st, core, o: not st.binary),
    Variant("ref", "tb_iconv1d_s16", _ref_fields),
)
