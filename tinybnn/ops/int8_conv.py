"""The int8 hidden convolution: int8 weights, binary or int8 activations in and out.

One home for the op: the training layer `Int8Conv1d`, its lowering to the `Int8Conv` stage
(binary in, binary out, with an optional max-pool on the accumulator and the following
batchnorm_sign) or the `Int8ActConv` stage (int8 activations on either side), the numpy
references, and the C kernels: `tb_i8conv1d_*_b32` (the reference loop, `xs`: int16 pairs,
SMLAD on cores with the DSP extension, `xm`: words, MULS + ADD per MAC, cores without SMLAD)
and `tb_i8aconv1d_*` (the reference loops and `xs`).

The crossings are exact by construction:

- binary -> int8: the inputs are {-1, +1} (packed bits, a declared pad value as in
  `binary_conv1d`), the weights int8 codes q with one scale delta_o per output channel, so
  acc = sum(q * x) is an integer with |acc| <= 127 * k * c_in;
- int8 -> int8: the inputs are int8 codes (zero-padded: code 0 is the real 0), so
  |acc| <= 128 * 127 * k * c_in, refused where that passes int32; with activation="int8"
  the layer ends in BatchNorm, a ReLU (or none) and int8 fake quantisation, which its
  eval mode computes as the integer requantisation `contract.Requant`:
  q = clamp(floor((acc * mult + bias) / 2^shift), lo, hi), per channel, the same integers
  as the reference and the C;
- int8 -> binary: the pre-activation is delta_o * acc, a positive scale of the accumulator,
  so a max-pool and the batchnorm_sign after it fold into one integer threshold per channel
  (`contract.fold_threshold`), exactly as for the binary convolutions.

Non-goals: streaming int8 activations (refused, naming the layer); asymmetric activations
(a zero point other than 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..compiler.contract import INT32_MAX, Requant, fold_threshold, unpack_bits
from ..compiler.variants import Variant
from ..errors import ModelError
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
from .codes import CODES_SCHEMA, CODES_TENSORS, INT8_MAX, CodesOut, requant_fields
from .conv import ConvStage
from .pool import MaxPool1d
from .spec import CONV_SCHEMA, Choice, ints


@register
class Int8Conv1d(CodesOut, Layer):
    """Convolution with int8 weights of binary or int8 activations:
    acc = sum(q * x), preact = delta_o * acc.

    Fake quantisation in training: q = clamp(round(w / delta_o), -127, 127) with a
    straight-through gradient, delta_o = max |w_o| / 127 per output channel (a constant of the
    step). Padding: `pad_value` +1 or -1 for binary inputs (as in `binary_conv1d`), 0 for
    int8 inputs (their real zero).

    activation="none": the pre-activation goes on, to a batchnorm_sign (binary out) or a
    max-pool and then one. activation="int8": BatchNorm, then (relu=True) a ReLU, then int8
    fake quantisation (`codes.CodesOut`): codes clamp(round(y / s), lo, hi) with a
    straight-through gradient inside [lo, hi], [lo, hi] = [0, 127] after a ReLU, else
    [-128, 127]; s = m / 127, m a running average (momentum 0.1) of the batches' largest |y|
    (the calibrated range; 1 / s = 1 before any training step). The layer's output is the
    codes; a max-pool of codes may follow, then an int8_conv1d or a global sum pooling reads
    them. In eval mode the codes are the integer requantisation of acc (`requant`,
    docs/lowering.md), exactly what the C computes.
    """

    kind = "int8_conv1d"
    schema = dict(
        CONV_SCHEMA,
        pad_value=Choice((1, -1, 0)),
        **CODES_SCHEMA,
    )
    tensors = CODES_TENSORS

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
        activation: str = "none",
        relu: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.pad_value = padding, pad_value
        self.activation, self.relu = activation, relu
        self.pad = pad_steps(self.kind, padding, kernel_size, stride)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        nn.init.uniform_(self.weight, -1, 1)
        if activation == "int8":
            self.init_codes_out(out_channels)

    def config(self) -> dict:
        return conv_config(
            self, pad_value=self.pad_value, activation=self.activation, relu=self.relu
        )

    @property
    def note(self) -> str:
        return f"k={self.kernel_size} int8{self.codes_note}"

    def infer(self, v: Value, where: str) -> Value:
        if v.kind not in ("bin", "i8"):
            raise ModelError(
                f"{where}: takes binary or int8 activations, but gets {v}: put a "
                "batchnorm_sign before it, or give the int8_conv1d before it activation='int8'"
            )
        kind = v.kind
        out = conv_infer(self, v, where, kind, "activations")
        if self.pad and (self.pad_value == 0) != (kind == "i8"):
            need = "0 (code 0 is their zero)" if kind == "i8" else "+1 or -1"
            raise ModelError(
                f"{where}: pads {v} with pad_value={self.pad_value}; "
                f"{'int8' if kind == 'i8' else 'binary'} activations pad with {need}"
            )
        return Value("i8", out.shape) if self.activation == "int8" else out

    def integer_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(q, delta): int8 codes [O, C, k] (straight-through) and the scale per output channel."""
        return quantize_int8(self.weight, per_channel=True)

    def to_preact(self, acc: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return acc * channel_view(delta, acc)

    @property
    def acc_bound(self) -> int:
        """|acc| for int8 inputs (the larger bound), on exact integers."""
        return (INT8_MAX + 1) * INT8_MAX * self.kernel_size * self.in_channels

    def preact_scale(self) -> torch.Tensor:
        """delta_o: preact = delta_o * acc."""
        return self.integer_weight()[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        q, delta = self.integer_weight()
        x = F.pad(x.to(dtype), (self.pad, self.pad), value=float(self.pad_value))
        acc = F.conv1d(x, q.to(dtype), stride=self.stride)
        if self.activation == "none":
            return self.to_preact(acc, delta)
        return self.codes_out(acc)

    def twin(self) -> nn.Module:
        if self.activation == "none":
            return float_conv(self)
        return self.codes_twin(float_conv(self))

    def lower(self, lw) -> None:
        i = lw.i
        where = lw.where(i)
        reads = lw.values[i - 1].kind
        q, delta = self.integer_weight()
        weight = ints(q, f"{where}: weights", -INT8_MAX, INT8_MAX).transpose(0, 2, 1)  # [O][k][C]
        bound = (
            (1 if reads == "bin" else INT8_MAX + 1) * INT8_MAX * self.kernel_size * self.in_channels
        )
        if bound > INT32_MAX:
            raise ModelError(
                f"{where}: its accumulators could reach +-{bound}, beyond int32; use fewer "
                "input channels or a shorter kernel"
            )
        shape = dict(
            in_shape=lw.in_shape(i),
            kernel_size=self.kernel_size,
            stride=self.stride,
            pad=self.pad,
            pad_value=self.pad_value,
            weight=weight,
        )
        if self.activation == "int8":
            pool_k = pool_s = 1
            last = i
            if isinstance(lw.layer(i + 1), MaxPool1d):
                last = i + 1
                pool_k, pool_s = lw.layers[last].kernel_size, lw.layers[last].stride
            stage = Int8ActConv(
                layers=list(range(i, last + 1)),
                out_shape=lw.values[last].shape,
                out_kind="i8",
                reads=reads,
                pool_k=pool_k,
                pool_s=pool_s,
                requant=self.requant(where),
                **shape,
            )
            lw.emit(stage, last)
            return
        pool_k, pool_s, last, f = lw.take_pool_and_sign(i, lambda acc: self.to_preact(acc, delta))
        kind = Int8Conv if reads == "bin" else Int8ActConv
        more = {} if reads == "bin" else dict(reads=reads)
        lw.emit(
            kind(
                layers=list(range(i, last + 1)),
                out_shape=lw.values[last].shape,
                out_kind="bin",
                pool_k=pool_k,
                pool_s=pool_s,
                threshold=fold_threshold(f, self.out_channels, -bound, bound, where),
                **shape,
                **more,
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


def _pairs(weight: np.ndarray, s: np.ndarray) -> np.ndarray:
    """int16 pairs (s * w, s * w) of weights [O][k][C] in blocks of 4 output channels over a
    window's k * cp / 2 pairs (cp = C rounded up to even; zeros past C and past O), as the
    xs kernels read them: [ceil(O/4)][k * cp / 2][4] words."""
    o, k, c = weight.shape
    cp = c + c % 2
    blocks = (o + 3) // 4
    w = np.zeros((blocks * 4, k, cp), np.int64)
    w[:o, :, :c] = weight.astype(np.int64) * s[:, None, None]
    halves = w.reshape(blocks * 4, -1, 2) & 0xFFFF
    pairs = (halves[..., 0] | halves[..., 1] << 16).astype(np.uint32)  # [4 blocks][pairs]
    return pairs.reshape(blocks, 4, -1).transpose(0, 2, 1)


def _xs_fields(cs, st: Int8Conv) -> int:
    """int16 pairs (s * w, s * w) in blocks of 4 output channels over the window's k * cp / 2
    pairs, and where each sum starts, -s * th (see tb_i8conv1d_xs_b32)."""
    cs.fields = st.binary_input_fields(cs)
    cs.fields["th"] = cs.threshold(st.threshold, with_values=False)
    o, k, c = st.weight.shape
    cp = c + c % 2
    t = st.threshold
    s = np.where(t.neg.astype(bool), -1, 1).astype(np.int64)  # [O]
    wp = _pairs(st.weight, s)
    bias = np.zeros(wp.shape[0] * 4, np.int64)
    bias[:o] = -s * t.th.astype(np.int64) % 2**32
    cs.fields["wp"] = cs.array("wp", wp, f"[{wp.shape[0]}][{wp.shape[1]}][4]: int16 pairs of s * w")
    cs.fields["bias"] = cs.array("bias", bias.astype(np.uint32), "-s * th")
    return 4 * (st.in_shape[1] + 2 * st.pad) * (cp // 2)


def _xm_fields(cs, st: Int8Conv) -> int:
    """s * w as words in blocks of 4 output channels over the window's k * c_in inputs, and
    where each sum starts, -s * th (see tb_i8conv1d_xm_b32)."""
    cs.fields = st.binary_input_fields(cs)
    cs.fields["th"] = cs.threshold(st.threshold, with_values=False)
    st.mac4_word_fields(cs)
    o, k, c = st.weight.shape
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


# ---------------------------------------------------------------------------------------
# int8 activations on either side: the Int8ActConv stage and its C (tb_i8aconv1d_t).


@dataclass
class Int8ActConv(ConvStage):
    """An int8 convolution with int8 activations in or out (or both):
    packed [T][CW] (+-1, declared pad value) or int8 [T][C] (zero-padded) -> conv ->
    int8 codes [T][O] (requantised, then max-pooled) or [pool] -> sign -> packed."""

    kernel = "i8aconv1d"
    ctype = "tb_i8aconv1d_t"

    reads: str = "i8"  # "bin" (packed +-1) or "i8" (int8 codes)
    pad_value: int = 0
    weight: np.ndarray = field(default=None)  # int8 codes [O][k][C]
    requant: Requant | None = None  # out_kind "i8"; the threshold for "bin"

    @property
    def in_kind(self) -> str:
        return self.reads

    @property
    def acc_bound(self) -> int:
        o, k, c = self.weight.shape
        return (1 if self.reads == "bin" else INT8_MAX + 1) * INT8_MAX * k * c

    def stream_refusal(self) -> str | None:
        return (
            "carries int8 activations between layers, which compile --streaming does not "
            "keep in its state (use binary activations: activation='none' and a batchnorm_sign)"
        )

    def arrays(self):
        out = self.requant.arrays() if self.out_kind == "i8" else self.threshold.arrays()
        return {"w": self.weight.astype(np.int8), **out}

    def macs(self):
        o, k, c = self.weight.shape
        return 0, o * k * c * self.conv_length()

    def accumulators(self, x: np.ndarray) -> np.ndarray:
        """x: packed [T][CW] or int8 [T][C] -> acc int64 [T_conv][O]."""
        c = self.in_shape[0]
        if self.reads == "bin":
            xv, edge = unpack_bits(x, c).astype(np.int64), self.pad_value
        else:
            xv, edge = np.asarray(x, np.int64).reshape(-1, c), 0
        pad = np.full((self.pad, c), edge, np.int64)
        xp = np.concatenate([pad, xv, pad])
        o, k, _ = self.weight.shape
        w = self.weight.astype(np.int64).reshape(o, k * c)
        t = self.conv_length()
        win = np.stack([xp[j * self.stride : j * self.stride + k].reshape(-1) for j in range(t)])
        return win @ w.T

    def run(self, x: np.ndarray) -> np.ndarray:
        """-> int8 codes [T_out][O] (requantised, then pooled), or packed [T_out][OW]."""
        acc = self.accumulators(x)
        if self.out_kind == "i8":
            return self.pool(self.requant.codes(acc)).astype(np.int8)
        return self.sign(acc)

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        o = self.weight.shape[0]
        if self.reads == "bin":
            src = f"{t}x{c}b"
            pad = f"pad={self.pad}x({self.pad_value:+d})"
        else:
            src, pad = f"{t}x{c} int8", f"pad={self.pad}x(0)"
        if self.out_kind == "i8":
            lo, hi = self.requant.lo, self.requant.hi
            dst, how = f"{self.out_shape[1]}x{o} int8", f", requantised to [{lo}, {hi}]"
        else:
            dst, how = f"{self.out_shape[1]}x{o}b", ""
        return (
            f"L{index} i8aconv1d: {src} -> {dst}, k={self.kernel_size} s={self.stride} "
            f"{pad}{how}{self.pool_note()}, int8 weights"
        )

    def input_fields(self, cs) -> dict:
        if self.reads == "bin":
            return self.binary_input_fields(cs)
        return dict(**self.conv_fields(), pad_word="NULL")

    def output_fields(self, cs, with_values: bool = True, blocks: bool = False) -> None:
        """The requantisation record (codes out) or the thresholds (bits out); with
        `blocks`, the requantisation's arrays padded to whole blocks of 4 channels (xs)."""
        if self.out_kind == "i8":
            cs.fields["rq"] = requant_fields(cs, self.requant, blocks)
        else:
            cs.fields["th"] = cs.threshold(self.threshold, with_values=with_values)


def _a_ref_fields(cs, st: Int8ActConv) -> int:
    cs.fields = st.input_fields(cs)
    o, k, c = st.weight.shape
    cs.fields["w"] = cs.array("w", st.weight.astype(np.int8), f"int8 [{o}][{k}][{c}]")
    st.output_fields(cs)
    return 0


def _a_xs_fields(cs, st: Int8ActConv) -> int:
    """int16 pairs of s * w as `_pairs`, and where each sum starts: -s * th for bits out
    (s = -1 where the output is -1 above th), 0 for codes out (s = 1)."""
    cs.fields = st.input_fields(cs)
    st.output_fields(cs, with_values=False, blocks=True)
    o, k, c = st.weight.shape
    s = np.ones(o, np.int64)
    bias = np.zeros((o + 3) // 4 * 4, np.int64)
    if st.out_kind == "bin":
        s = np.where(st.threshold.neg.astype(bool), -1, 1).astype(np.int64)
        bias[:o] = -s * st.threshold.th.astype(np.int64) % 2**32
    wp = _pairs(st.weight, s)
    cs.fields["wp"] = cs.array("wp", wp, f"[{wp.shape[0]}][{wp.shape[1]}][4]: int16 pairs of s * w")
    cs.fields["bias"] = cs.array("bias", bias.astype(np.uint32), "where each sum starts")
    return 4 * (st.in_shape[1] + 2 * st.pad) * ((c + 1) // 2)


def _a_xs_serves(st: Int8ActConv, core, optimize: str) -> bool:
    """optimize="speed" on every fast core: SMLAD where the core has it, else the portable
    pair product, still faster than the reference loops (k3, 32-64 channels: M0 4.8-5.1
    against 7.3-14.3 instructions per MAC, M3 3.5-3.8 against 5.3-13.0;
    benchmarks/results/int8_act.md)."""
    if optimize != "speed":
        return False
    if st.out_kind == "bin":  # the sign of s * (acc - th) modulo 2^32
        th = int(np.abs(st.threshold.th.astype(np.int64)).max())
        return st.acc_bound + th < 2**31
    return True


def _a_variants(name: str, fields, serves) -> tuple[Variant, ...]:
    """One variant per (input, output) kind: the C functions are typed by both."""
    variant = "" if name == "ref" else f"_{name}"
    out = []
    for reads, out_kind, suffix in (
        ("i8", "i8", "q8_s8"),
        ("bin", "i8", "q8_b32"),
        ("i8", "bin", "s8"),
    ):
        out.append(
            Variant(
                name,
                f"tb_i8aconv1d{variant}_{suffix}",
                fields,
                lambda st, core, o, r=reads, k=out_kind: (
                    st.reads == r and st.out_kind == k and serves(st, core, o)
                ),
            )
        )
    return tuple(out)


Int8ActConv.variants = (
    # int16 pairs, SMLAD on cores with the DSP extension: twice the int8 weights' flash
    *_a_variants("xs", _a_xs_fields, _a_xs_serves),
    *_a_variants("ref", _a_ref_fields, lambda st, core, o: True),
)
