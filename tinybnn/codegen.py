"""Render a lowered `Program` as C: `<name>.h`, `<name>.c` and `tinybnn_kernels.h`.

Python prepares data (arrays, descriptor fields, arena offsets, one call per stage); the
jinja2 templates in `templates/c/` hold the C text, and the kernels live in the tested
header `templates/c/tinybnn_kernels.h`. Each stage kind has one `_emit_*` function here.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from . import __version__
from .errors import TinyBNNError
from .lowering import (
    WORD_BITS,
    BinConv,
    BinDense,
    Classifier,
    GlobalSum,
    InputConv,
    MaxPoolBits,
    Program,
    Stage,
    pack_bits,
    unpack_bits,
    words,
)

KERNELS_HEADER = "tinybnn_kernels.h"
CTYPES = {
    np.dtype(np.uint32): "uint32_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.int16): "int16_t",
    np.dtype(np.int8): "int8_t",
    np.dtype(np.uint8): "uint8_t",
}


def template_dir() -> Path:
    """templates/c: inside the installed package, or beside it in a source checkout."""
    installed = Path(__file__).parent / "templates" / "c"
    return installed if installed.is_dir() else Path(__file__).parent.parent / "templates" / "c"


def c_array(values: np.ndarray, per_line: int = 12) -> str:
    """A C initialiser body for a flat array: hex for uint32, decimal otherwise."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype == np.uint32:
        items = [f"0x{int(v):08x}u" for v in flat]
        per_line = 6
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)


@dataclass
class CArray:
    name: str
    ctype: str
    values: np.ndarray
    comment: str = ""

    @property
    def count(self) -> int:
        return int(np.asarray(self.values).size)

    @property
    def nbytes(self) -> int:
        return int(np.asarray(self.values).nbytes)

    @property
    def body(self) -> str:
        return c_array(self.values)


@dataclass
class CStage:
    """What a stage template needs, plus the report figures."""

    index: int
    stage: Stage
    prefix: str  # symbol prefix of this stage, e.g. gesture_l2
    kernel: str  # short kernel family name, for the report
    ctype: str  # C type of the stage's descriptor
    comment: str = ""
    call: str = ""
    arrays: list[CArray] = field(default_factory=list)
    fields: dict = field(default_factory=dict)
    in_offset: int | None = None
    out_offset: int | None = None
    variant: str = "ref"  # the kernel variant chosen for the target (KERNELS)
    unaligned: bool = False  # the target loads words at any address (Target.unaligned)
    scratch_bytes: int = 0  # arena bytes the variant needs besides its input and output
    scratch_offset: int | None = None

    @property
    def flash_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)

    def array(self, key: str, values: np.ndarray, comment: str = "") -> str:
        values = np.asarray(values)
        a = CArray(f"{self.prefix}_{key}", CTYPES[values.dtype], values, comment)
        self.arrays.append(a)
        return a.name


def _shape(shape: tuple[int, ...], kind: str) -> str:
    suffix = "b" if kind == "bin" else ""
    return "x".join(str(s) for s in shape[::-1]) + suffix  # [T][C] as the C holds it


def _threshold_fields(cs: CStage, st) -> str:
    t = st.threshold
    arrays = t.arrays()
    th = cs.array("th", arrays["th"], "thresholds")
    neg = cs.array("neg", arrays["neg"], "1 = output is -1 above th")
    if t.ctype == "int16":
        return f"{{ {th}, NULL, {neg} }}"
    return f"{{ NULL, {th}, {neg} }}"


def _conv_fields(st: InputConv | BinConv) -> dict:
    """The descriptor fields both convolution kinds share: shapes, window walk, pooling."""
    return dict(
        c_in=st.in_shape[0],
        t_in=st.in_shape[1],
        c_out=st.weight.shape[0],
        t_out=st.out_shape[1],
        kernel_size=st.kernel_size,
        stride=st.stride,
        pad=st.pad,
        pool_k=st.pool_k,
        pool_s=st.pool_s,
    )


def _emit_input_conv(cs: CStage, st: InputConv) -> None:
    c, t = st.in_shape
    o = st.weight.shape[0]
    arrays = st.arrays()
    # sst reads the taps' table indices instead of the weight bits; xq and xs their own
    # layouts of the weights (_input_conv_fast_fields).
    w = (
        "NULL"
        if cs.variant in ("sst", "xq", "xs")
        else cs.array("w", arrays["w"], "binary, tap-major" if st.binary else "int8 [O][k][C]")
    )
    cs.fields = dict(
        **_conv_fields(st),
        lo=st.lo,
        hi=st.hi,
        offset=cs.array("offset", arrays["offset"]),
        mult=cs.array("mult", arrays["mult"]),
        wb=w if st.binary else "NULL",
        wq="NULL" if st.binary else w,
    )
    if cs.variant != "xs":  # xs folds the thresholds into its bias
        cs.fields["th"] = _threshold_fields(cs, st)
    if cs.variant != "ref":
        _input_conv_fast_fields(cs, st)
    cs.comment = (
        f"L{cs.index} input_conv1d: {t}x{c} int16 -> {st.out_shape[1]}x{o}b, k={st.kernel_size} "
        f"s={st.stride} pad={st.pad}{_pool_note(st)}, {'binary' if st.binary else 'int8'} weights, "
        f"|acc| <= {st.acc_bound}"
    )
    cs.call = (
        f"tb_iconv1d_s16(&{cs.prefix}, samples, {{out}});"
        if cs.variant == "ref"
        else f"tb_iconv1d_{cs.variant}_s16(&{cs.prefix}, samples, {{out}}, {{scratch}});"
    )


def _input_conv_fast_fields(cs: CStage, st: InputConv) -> None:
    """The step cache of the fast first-layer kernels, and the tap indices of `sst`.

    The cache holds every step one output reads, (pool_k - 1) * stride + k of them, in a
    power-of-two ring (a mask, not a division: Cortex-M0 has no divide instruction).
    """
    c = st.in_shape[0]
    o, k, _ = st.weight.shape
    span = (st.pool_k - 1) * st.stride + st.kernel_size
    ring = 1 << (span - 1).bit_length()
    cs.fields["ring"] = ring
    if cs.variant == "xq":  # int8 weights in blocks of 4 output channels
        blocks = np.zeros(((o + 3) // 4 * 4, k, c), np.int8)
        blocks[:o] = st.weight
        wq4 = blocks.reshape(-1, 4, k, c).transpose(0, 2, 3, 1)
        cs.fields["wq4"] = cs.array("wq4", wq4, f"int8 [{(o + 3) // 4}][{k}][{c}][4]")
    if cs.variant == "xs":
        _input_conv_pair_fields(cs, st)
        cs.scratch_bytes = 4 * ring * (c + c % 2)  # the ring of samples, each step twice
        return
    if cs.variant == "sst":
        bits = (st.weight < 0).astype(np.int64) << np.arange(c)  # [O][k][C]
        index = bits.sum(axis=2).astype(np.uint8)  # [O][k]: the table entry of each tap
        cs.fields["tap_index"] = cs.array("tap", index, f"[{o}][{k}] weight bits per tap")
        cs.scratch_bytes = 4 * (ring + ring * (1 << c) + (1 << c))
    else:  # every x' row twice (tb_iconv1d_x_steps)
        cs.scratch_bytes = 4 * 2 * ring * c


def _folded_weights(st: InputConv) -> np.ndarray:
    """int8 weights times the input multipliers, w' = w * mult_c, int64 [O][k][C]."""
    return st.weight.astype(np.int64) * st.multiplier.astype(np.int64)


def _pairs_ok(st: InputConv) -> bool:
    """`xs` needs every folded weight in int16 and acc - th in int32."""
    th = int(np.abs(st.threshold.th.astype(np.int64)).max())
    return (
        not st.binary
        and int(np.abs(_folded_weights(st)).max()) <= 2**15 - 1
        and st.acc_bound + th < 2**31
    )


def _input_conv_pair_fields(cs: CStage, st: InputConv) -> None:
    """`xs`: the folded weights s * w' as int16 pairs of samples in blocks of 4 output
    channels, and where each sum starts, -s * (sum of w' * offset_c + th), s = -1 where the
    output is -1 above th (see tb_iconv1d_xs_s16). Pairs run over the window's k * c_in
    samples where the target loads words at any address (flat), else over each row's
    channels, an odd c_in padded by a zero weight."""
    o, k, c = st.weight.shape
    t = st.threshold
    s = np.where(t.neg.astype(bool), -1, 1).astype(np.int64)  # [O]
    folded = _folded_weights(st)
    offsets = (folded * st.offset.astype(np.int64)).sum(axis=(1, 2))
    folded *= s[:, None, None]
    blocks = (o + 3) // 4
    bias = np.zeros(blocks * 4, np.int64)
    bias[:o] = -s * (offsets + t.th.astype(np.int64)) % 2**32  # where the sums start
    flat = cs.unaligned
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
    neg = cs.array("neg", t.arrays()["neg"], "1 = output is -1 above th")
    cs.fields["th"] = f"{{ NULL, NULL, {neg} }}"


def _kernel_name(op: str, variant: str, suffix: str) -> str:
    """tb_<op>_<suffix> for the reference loop, tb_<op>_<variant>_<suffix> for a fast one."""
    return f"{op}_{suffix}" if variant == "ref" else f"{op}_{variant}_{suffix}"


def _pool_note(st) -> str:
    return f", max-pool {st.pool_k}/{st.pool_s}" if st.pool_k > 1 or st.pool_s > 1 else ""


def _emit_bin_conv(cs: CStage, st: BinConv) -> None:
    c, t = st.in_shape
    o = st.weight.shape[0]
    cs.fields = dict(
        **_conv_fields(st),
        pad_word=cs.array(
            "pad", pack_bits(np.full(c, st.pad_value)), f"pad value {st.pad_value:+d}"
        ),
    )
    if cs.variant in ("vsl", "vst"):
        _bin_conv_sliced_fields(cs, st, tables=cs.variant == "vst")
    else:
        cs.fields["w"] = cs.array("w", st.arrays()["w"], f"[{o}][{st.kernel_size}][{words(c)}]")
        cs.fields["th"] = _threshold_fields(cs, st)
    cs.comment = (
        f"L{cs.index} bconv1d: {t}x{c}b -> {st.out_shape[1]}x{o}b, k={st.kernel_size} s={st.stride} "
        f"pad={st.pad}x({st.pad_value:+d}){_pool_note(st)}"
    )
    cs.call = f"{_kernel_name('tb_bconv1d', cs.variant, 'b32')}(&{cs.prefix}, {{in}}, {{out}});"


VSL_MAX_SLICES = 16  # TB_VSL_MAX_SLICES in tinybnn_kernels.h


def _slices_ok(k_bits: int) -> bool:
    """The bit-sliced kernels' limit: a count of k_bits mismatches fits their slices."""
    return (k_bits + 1).bit_length() <= VSL_MAX_SLICES


def _sliced_threshold_fields(cs: CStage, threshold, k_bits: int, o: int) -> None:
    """The bit-sliced variants' comparison: the bound U of each channel, bit-sliced.

    With ones = popcount(x ^ w) and acc = K - 2 * ones (K = k_bits real input bits):
    direction 0: bit = acc < th  <=> ones >= floor((K - th) / 2) + 1 = U;
    direction 1: bit = acc > th  <=> not (ones >= ceil((K - th) / 2) = U).
    U is clamped to [0, K + 1]; channels past o get U = K + 1, direction 0: bit 0.
    """
    ow = words(o)
    th = threshold.th.astype(np.int64)
    u = np.where(threshold.neg, -((th - k_bits) // 2), (k_bits - th) // 2 + 1)
    bound = np.full(ow * 32, k_bits + 1, np.int64)
    bound[:o] = np.clip(u, 0, k_bits + 1)
    slices = max((k_bits + 1).bit_length(), 5)  # the kernels keep 4 carry-save slices
    bits = ((bound[:, None] >> np.arange(slices)) & 1).astype(np.int8)  # [ow*32][slices]
    ge = pack_bits(1 - 2 * bits.reshape(ow, 32, slices).transpose(0, 2, 1))  # [ow][slices]
    neg = cs.array("neg", threshold.arrays()["neg"], "1 = output is -1 above th")
    cs.fields.update(
        w="NULL",
        th=f"{{ NULL, NULL, {neg} }}",
        ge=cs.array("ge", ge, f"[{ow}][{slices}]: count bound U per channel, bit-sliced"),
        slices=slices,
    )


def _lanes(weight: np.ndarray) -> np.ndarray:
    """+-1 weights [O][...] -> [ow][32 lanes][...], lanes past O +1 (weight bit 0)."""
    o = weight.shape[0]
    lanes = np.ones((words(o) * 32, *weight.shape[1:]), np.int8)
    lanes[:o] = weight
    return lanes.reshape(words(o), 32, *weight.shape[1:])


def _bin_conv_sliced_fields(cs: CStage, st: BinConv, tables: bool) -> None:
    """Weights with output channels along the words (`vsl`) or their subset-sum tables
    (`vst`, `subset_tables`), and the bound U of each channel."""
    o, k, c = st.weight.shape
    _sliced_threshold_fields(cs, st.threshold, k * c, o)
    lanes = _lanes(st.weight)  # [ow][32][k][c]
    if tables:
        tab = subset_tables(lanes)
        cs.fields["tab"] = cs.array(
            "tab", tab, f"[{words(o)}][{k}][{tab.shape[2]}][8][2]: subset sums (l, h) of 3 inputs"
        )
    else:  # [ow][k][c] words, bit b = output channel 32 g + b
        wt = pack_bits(lanes.transpose(0, 2, 3, 1))
        cs.fields["wt"] = cs.array(
            "wt", wt, f"[{words(o)}][{k}][{c}], bit b = output channel 32g+b"
        )


def vst_groups(c_in: int) -> list[tuple[int, int]]:
    """(word, first bit) of each 3-bit group of a row of c_in bits (TB_VST_GROUPS)."""
    return [
        (i, b)
        for i in range(words(c_in))
        for b in range(0, min(WORD_BITS, c_in - WORD_BITS * i), 3)
    ]


def subset_tables(weights: np.ndarray) -> np.ndarray:
    """The `vst` kernel's tables from +-1 weights [ow][32 lanes][k][c_in].

    For each output word, tap, group of 3 input channels and input pattern p (bit j = the
    group's input j is -1): the number of mismatches of the pattern with each lane's weights,
    in [0, 3], as two words (l, h) of bit-sliced lanes. Channels past c_in count nothing.
    Returns uint32 [ow][k][groups][8][2].
    """
    ow, _, k, c = weights.shape
    wbit = (weights < 0).astype(np.int64)  # [ow][32][k][c]
    pattern = (np.arange(8)[:, None] >> np.arange(3)) & 1  # [8][3]
    counts = []
    for i, b in vst_groups(c):
        chans = [WORD_BITS * i + b + j for j in range(3)]
        n = np.zeros((ow, 32, k, 8), np.int64)
        for j, ch in enumerate(chans):
            if ch < c and b + j < WORD_BITS:
                n += wbit[..., ch, None] ^ pattern[:, j]
        counts.append(n)
    cnt = np.stack(counts, axis=3)  # [ow][32][k][groups][8]
    sliced = np.stack([cnt & 1, cnt >> 1], axis=-1)  # [ow][32][k][groups][8][2]
    return pack_bits(1 - 2 * sliced.transpose(0, 2, 3, 4, 5, 1))[..., 0]


def _emit_bin_dense(cs: CStage, st: BinDense) -> None:
    o, n_words = st.weight.shape
    cs.fields = dict(in_words=n_words, in_features=st.in_features, c_out=o)
    if cs.variant == "vst":  # every bit of the buffer, as a row of n_words * 32 channels
        _sliced_threshold_fields(cs, st.threshold, st.in_features, o)
        weight = unpack_bits(st.weight, n_words * WORD_BITS)[:, None, :]  # [O][1][bits]
        tab = subset_tables(_lanes(weight))
        cs.fields["tab"] = cs.array(
            "tab", tab, f"[{words(o)}][{n_words}][11][8][2]: subset sums (l, h) of 3 inputs"
        )
    else:
        cs.fields["w"] = cs.array("w", st.weight, f"[{o}][{n_words}]")
        cs.fields["th"] = _threshold_fields(cs, st)
    cs.comment = f"L{cs.index} bdense: {st.in_features}b -> {o}b"
    cs.call = f"{_kernel_name('tb_bdense', cs.variant, 'b32')}(&{cs.prefix}, {{in}}, {{out}});"


def _emit_maxpool(cs: CStage, st: MaxPoolBits) -> None:
    c, t = st.in_shape
    t_out = st.out_shape[1] if len(st.out_shape) == 2 else 1
    cs.fields = dict(c=c, t_in=t, t_out=t_out, kernel_size=st.kernel_size, stride=st.stride)
    cs.comment = (
        f"L{cs.index} maxpool1d on bits: {t}x{c}b -> {t_out}x{c}b, k={st.kernel_size} s={st.stride}"
    )
    cs.call = f"tb_maxpool1d_b32(&{cs.prefix}, {{in}}, {{out}});"


def _emit_global_sum(cs: CStage, st: GlobalSum) -> None:
    c, t = st.in_shape
    cs.fields = dict(c=c, t=t)
    cs.comment = f"L{cs.index} global sum pooling: {t}x{c}b -> {c} int32 counts"
    cs.call = f"tb_globalsum_b32(&{cs.prefix}, {{in}}, (int32_t *){{out}});"


def _emit_classifier(cs: CStage, st: Classifier) -> None:
    k = st.bias.shape[0]
    w = cs.array("w", st.arrays()["w"], "binary" if st.binary_weights else "int8")
    cs.fields = dict(
        num_classes=k,
        in_features=st.in_features,
        in_c=st.in_c,
        in_t=st.in_t,
        wb=w if st.binary_weights else "NULL",
        wq="NULL" if st.binary_weights else w,
        bias=cs.array("bias", st.bias.astype(np.int32)),
    )
    kernel = {
        (True, True): "tb_classifier_b32",
        (False, True): "tb_classifier_q8_b32",
        (False, False): "tb_classifier_q8_s32",
        (True, False): "tb_classifier_b_s32",
    }[(st.binary_weights, st.binary_input)]
    if cs.variant != "ref":
        kernel = _kernel_name("tb_classifier", cs.variant, "b32")
    src = "{in}" if st.binary_input else "(const int32_t *){in}"
    cs.comment = (
        f"L{cs.index} classifier: {st.in_features} {'bits' if st.binary_input else 'counts'} -> {k} "
        f"scores, {'binary' if st.binary_weights else 'int8'} weights"
    )
    cs.call = f"{kernel}(&{cs.prefix}, {src}, scores);"


EMIT = {
    InputConv: ("iconv1d", "tb_iconv1d_t", _emit_input_conv),
    BinConv: ("bconv1d", "tb_bconv1d_t", _emit_bin_conv),
    BinDense: ("bdense", "tb_bdense_t", _emit_bin_dense),
    MaxPoolBits: ("maxpool1d", "tb_maxpool1d_t", _emit_maxpool),
    GlobalSum: ("globalsum", "tb_globalsum_t", _emit_global_sum),
    Classifier: ("classifier", "tb_classifier_t", _emit_classifier),
}


# ---------------------------------------------------------------------------------------
# Kernel selection. "portable" (the default) emits the reference loops only, the
# specification; every other target gets the fastest variant measured for it
# (benchmarks/kernels.py). A variant computes exactly what the reference does.


@dataclass(frozen=True)
class Target:
    """What the kernel choice depends on."""

    name: str
    fast: bool  # use the fast variants at all
    sst_max_in: int = 0  # largest c_in for the subset-sum first layer (RAM: 4 * 2^c per step)
    unaligned: bool = False  # loads words at any address (xs reads sample pairs unpadded)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("portable", fast=False),
        Target("host", fast=True, sst_max_in=8, unaligned=True),
        # Small RAM on M0-class parts: tables up to 64 entries (6 channels: an IMU).
        Target("cortex-m0", fast=True, sst_max_in=6),
        Target("cortex-m0plus", fast=True, sst_max_in=6),
        Target("cortex-m3", fast=True, sst_max_in=8, unaligned=True),
        Target("cortex-m4", fast=True, sst_max_in=8, unaligned=True),
        Target("cortex-m7", fast=True, sst_max_in=8, unaligned=True),
        Target("cortex-m33", fast=True, sst_max_in=8, unaligned=True),
    )
}
DEFAULT_TARGET = "portable"
# What a fast target's kernels favour: "speed", or "size" (no subset tables for the binary
# layers, which hold 5.3 times their weights in flash). The first layer's variants are the
# same either way: their tables are in RAM, and xs's int16 weights are about twice the int8.
OPTIMIZE = ("speed", "size")


SST_MAX_SPAN = 16  # TB_SST_MAX_SPAN in tinybnn_kernels.h


def _variant_input_conv(st: InputConv, t: Target, optimize: str) -> str:
    span = (st.pool_k - 1) * st.stride + st.kernel_size
    if st.binary and st.in_shape[0] <= t.sst_max_in and span <= SST_MAX_SPAN:
        return "sst"  # subset-sum tables: one lookup per tap for all channels
    if st.binary:
        return "xn"  # x' once per step
    # int8: weights folded with the multipliers, channel pairs (SMLAD) where they fit int16
    return "xs" if _pairs_ok(st) else "xq"


def _variant_bin_conv(st: BinConv, t: Target, optimize: str) -> str:
    # Bit-sliced, best measured on every core; the subset tables are faster still but hold
    # 5.3 times the packed weights in flash.
    k_bits = st.kernel_size * st.in_shape[0]
    if optimize == "speed" and _slices_ok(k_bits):
        return "vst"
    return "vsl" if _slices_ok(k_bits) and st.in_shape[0] % 8 == 0 else "lanes"


def _variant_binary(st: Stage, t: Target, optimize: str) -> str:
    if isinstance(st, Classifier) and not (st.binary_weights and st.binary_input):
        return "ref"
    if isinstance(st, BinDense) and optimize == "speed" and _slices_ok(st.in_features):
        return "vst"  # subset tables, as the convolution
    return "lanes"  # byte-lane popcount, output words built in a register


# Stage type -> the variant for a fast target; the rest keep the reference loop.
KERNELS = {
    InputConv: _variant_input_conv,
    BinConv: _variant_bin_conv,
    BinDense: _variant_binary,
    Classifier: _variant_binary,
}


def select_variant(st: Stage, target: str, optimize: str = "speed") -> str:
    """The kernel variant of stage `st` on `target` ("ref" is the reference loop): the
    fastest, or with optimize="size" the fastest that costs no more flash than the packed
    weights (OPTIMIZE)."""
    t = check_target(target)
    check_optimize(optimize)
    choose = KERNELS.get(type(st))
    return choose(st, t, optimize) if t.fast and choose is not None else "ref"


def check_optimize(optimize: str) -> None:
    if optimize not in OPTIMIZE:
        raise TinyBNNError(f"unknown optimize {optimize!r}; choose one of {', '.join(OPTIMIZE)}")


def check_target(target: str) -> Target:
    if target not in TARGETS:
        raise TinyBNNError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[target]


@dataclass
class CModel:
    """Everything the templates render, and the figures of the compile report."""

    name: str
    program: Program
    stages: list[CStage]
    arena_bytes: int
    header: dict
    target: str = DEFAULT_TARGET
    optimize: str = "speed"
    flash_budget: int | None = None

    @property
    def flash_bytes(self) -> int:
        return sum(s.flash_bytes for s in self.stages)

    @property
    def kernels(self) -> str:
        """Whose kernels the C holds, as the compile options say it."""
        if self.target == "portable":
            return "portable"
        budget = f" --flash-budget {self.flash_budget}" if self.flash_budget is not None else ""
        return f"{self.target} --optimize {self.optimize}{budget}"


def plan_arena(stages: list[CStage]) -> int:
    """Place each stage's output at alternate ends of one arena; return its size in bytes.

    Stage i reads what stage i-1 wrote at the other end, so one arena of
    max(in + out + scratch) bytes holds every stage; a stage's scratch (fast kernels only)
    sits right after whichever of its input and output starts at 0. The first stage reads
    the caller's samples and the classifier writes the caller's scores. All sizes are
    multiples of 4, so every buffer is word-aligned.
    """
    sizes = [0 if s.stage.out_kind == "scores" else s.stage.out_bytes() for s in stages]
    ins = [0] + sizes[:-1]
    arena = max(a + b + s.scratch_bytes for a, b, s in zip(ins, sizes, stages, strict=True))
    for i, s in enumerate(stages):
        if sizes[i]:
            s.out_offset = 0 if i % 2 == 0 else arena - sizes[i]
        if i > 0:
            s.in_offset = stages[i - 1].out_offset
        if s.scratch_bytes:
            s.scratch_offset = sizes[i] if i % 2 == 0 else ins[i]
    return arena


def _emit_stage(i: int, st: Stage, name: str, target: str, optimize: str) -> CStage:
    kernel, ctype, emit = EMIT[type(st)]
    cs = CStage(index=i, stage=st, prefix=f"{name}_l{i}", kernel=kernel, ctype=ctype)
    cs.variant = select_variant(st, target, optimize)
    cs.unaligned = TARGETS[target].unaligned
    emit(cs, st)
    return cs


def fit_flash_budget(stages: list[CStage], name: str, target: str, budget: int) -> list[CStage]:
    """Trade subset tables for flash until the constants fit `budget` bytes.

    While they do not, the stage whose tables save the fewest binary MACs per byte goes back
    to its optimize="size" variant. Raises TinyBNNError if even that leaves too many.
    """
    stages = list(stages)
    total = sum(s.flash_bytes for s in stages)
    if total <= budget:
        return stages
    swaps = []  # (binary MACs per byte the tables cost, the stage without them)
    for i, cs in enumerate(stages):
        if cs.variant == "vst":
            small = _emit_stage(i, cs.stage, name, target, "size")
            swaps.append((cs.stage.macs()[0] / (cs.flash_bytes - small.flash_bytes), i, small))
    for _, i, small in sorted(swaps):
        total -= stages[i].flash_bytes - small.flash_bytes
        stages[i] = small
        if total <= budget:
            return stages
    raise TinyBNNError(
        f"the model's constants take {total} B of flash, over the budget of {budget} B "
        "even without subset tables"
    )


def build(
    program: Program,
    name: str,
    header: dict,
    target: str = DEFAULT_TARGET,
    optimize: str = "speed",
    flash_budget: int | None = None,
) -> CModel:
    """Prepare the C of `program`: one kernel variant per stage for `target` (TARGETS),
    favouring `optimize` (OPTIMIZE), with constants of at most `flash_budget` bytes when
    given (`fit_flash_budget`)."""
    check_target(target)
    check_optimize(optimize)
    stages = [_emit_stage(i, st, name, target, optimize) for i, st in enumerate(program.stages)]
    if flash_budget is not None:
        stages = fit_flash_budget(stages, name, target, flash_budget)
    arena = plan_arena(stages)
    for cs in stages:
        buf = "(uint32_t *)(void *)(a + {})"
        cs.call = cs.call.format(
            **{
                "in": f"(const uint32_t *)(const void *)(a + {cs.in_offset})"
                if cs.in_offset is not None
                else "",
                "out": buf.format(cs.out_offset) if cs.out_offset is not None else "",
                "scratch": f"(int32_t *)(void *)(a + {cs.scratch_offset})",
            }
        )
    return CModel(
        name=name,
        program=program,
        stages=stages,
        arena_bytes=arena,
        header=header,
        target=target,
        optimize=optimize,
        flash_budget=flash_budget,
    )


def c_identifier(text: str) -> str:
    """A class name as the tail of a C macro name: GESTURE_CLASS_DOUBLE_TAP."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper() or "X"


def c_string(text: str) -> str:
    """Escape a string for a C string literal (printable ASCII kept, the rest as octal)."""
    out = []
    for ch in text.encode():
        c = chr(ch)
        out.append(
            "\\" + c if c in '"\\?' else c if 32 <= ch < 127 else f"\\{ch:03o}"
        )  # ? : trigraphs
    return "".join(out)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(cstring=c_string)
    return env


def class_macros(names: list[str]) -> list[str]:
    """Macro suffixes for the class names, made unique: a clash gets the class index."""
    tails = [c_identifier(n) for n in names]
    return [t if tails.count(t) == 1 else f"{t}_{i}" for i, t in enumerate(tails)]


def render(cm: CModel) -> dict[str, str]:
    """File name -> text of the generated C."""
    env = _env()
    ctx = dict(
        m=cm,
        NAME=cm.name.upper(),
        name=cm.name,
        p=cm.program,
        class_macros=class_macros(cm.program.class_names),
        version=__version__,
        **cm.header,
    )
    return {
        f"{cm.name}.h": env.get_template("model.h.j2").render(ctx),
        f"{cm.name}.c": env.get_template("model.c.j2").render(ctx),
        KERNELS_HEADER: (template_dir() / KERNELS_HEADER).read_text(),
    }


C_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_name(name: str) -> None:
    if not C_NAME.match(name) or name.lower().startswith("tb_"):
        raise TinyBNNError(
            f"--name {name!r} must be a C identifier (letters, digits, _) not starting with tb_"
        )


def write(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write all files or none: render into a temporary directory, then move them in."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tinybnn-", dir=out_dir))
    try:
        for fname, text in files.items():
            (tmp / fname).write_text(text)
        paths = []
        for fname in files:
            os.replace(tmp / fname, out_dir / fname)
            paths.append(out_dir / fname)
        return paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def header_info(source: Path | None, command: str | None) -> dict:
    """What the generated files record about where they came from."""
    return {
        "command": command if command is not None else "tinybnn.compile() from Python",
        "model_file": source.name if source is not None else "(a model object, not a file)",
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest() if source is not None else "-",
    }
