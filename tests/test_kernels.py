"""The fast kernel variants: each stage's chosen variant on the same case tables as
tests/test_compile.py, compiled for the host with strict flags and sanitizers and run
against the integer reference with exact equality; then whole models under QEMU on
Cortex-M0 and Cortex-M4 with the variants those targets get.

tests/test_compile.py already checks the reference against PyTorch on these models, and the
reference loops against the reference; here only the variants are new.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from modelcheck import assert_exact, calibrate, random_inputs, signals
from test_compile import (
    BCONV_CASES,
    HEAD_CASES,
    ICONV_CASES,
    RESIDUAL_CASES,
    bconv_case,
    iconv_case,
    random_model,
)

from tinybnn import firmware
from tinybnn.compiler import kernels, reference, targets, variants
from tinybnn.compiler.api import compile
from tinybnn.compiler.contract import words
from tinybnn.compiler.lowering import lower
from tinybnn.errors import TinyBNNError
from tinybnn.firmware import host
from tinybnn.nn import (
    BatchNormSign,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)
from tinybnn.ops import sliced
from tinybnn.ops.input_conv import InputConv


def check_variants(
    model: Sequential,
    target: str,
    tmp_path,
    name: str = "k",
    cc: str = "gcc",
    optimize: str = "speed",
    flash_budget: int | None = None,
) -> dict[int, str]:
    """C for `target` == reference on realistic and extreme windows; returns the variants.
    gcc builds with the sanitizers, clang with the strict flags alone."""
    c, t = model.input_shape
    result = compile(
        model, tmp_path, name, target=target, optimize=optimize, flash_budget=flash_budget
    )
    exe = host.build(tmp_path, name, cc=cc, extra_flags=host.SANITIZE_FLAGS if cc == "gcc" else [])
    for j, x in enumerate([signals(8, c, t, 1), random_inputs(4, c, t, 2)]):
        want = reference.run(result.program, x)
        scores, classes = host.run(exe, x, result.program.num_classes)
        where = (
            f"{target}, variants {[s.variant.name for s in result.cmodel.stages]}, input set {j}"
        )
        assert_exact(f"scores ({where})", scores, want)
        assert_exact(f"classes ({where})", classes, reference.argmax(want))
    return {s.index: s.variant.name for s in result.cmodel.stages}


def seeded(layers, in_channels: int, length: int, seed: int = 0) -> Sequential:
    torch.manual_seed(seed)
    model = Sequential(*layers(), input_shape=(in_channels, length))
    return calibrate(model, signals(12, in_channels, length, seed), seed)


def _with_channels(cases, in_channels: int):
    return [pytest.param(p.values[0], in_channels, p.values[1], id=p.id) for p in cases]


# Beyond test_compile's first layers: 7 and 8 channels take the subset-sum table on the
# host (up to 8) but not on Cortex-M0 (up to 6); 9 never does.
EXTRA_ICONV = [
    pytest.param(*iconv_case(8, 33, 3, 1, 1, "binary", 19), id="in8_out33_k3_binary"),
    pytest.param(*iconv_case(7, 32, 5, 2, 2, "binary", 23, pool=(3, 2)), id="in7_pool3s2_binary"),
    pytest.param(*iconv_case(9, 31, 3, 1, 0, "binary", 12), id="in9_binary_no_table"),
]

# The bit-sliced convolution takes 8 input channels at a time, 16 where it can: widths
# of 8 and 40 end on a half block, and 8 x k=1 has the fewest count slices, 256 x k=5
# many (the ripple into the high slices).
EXTRA_BCONV = [
    pytest.param(*bconv_case(c, k, s, pad, pv, t, pool=pool), id=f"c{c}_k{k}_s{s}_t{t}")
    for (c, k, s, pad, pv, t, pool) in [
        (8, 1, 1, 0, 1, 9, None),
        (8, 3, 1, 1, -1, 12, (2, 2)),
        (40, 3, 2, 1, -1, 21, None),
        (48, 5, 1, 2, 1, 17, (3, 1)),
        (256, 5, 1, 2, -1, 7, None),  # 1,280 inputs: counts of 11 slices
    ]
]

FAST_CASES = (
    _with_channels(BCONV_CASES + EXTRA_BCONV, 3)
    + ICONV_CASES
    + EXTRA_ICONV
    + _with_channels([p for p in HEAD_CASES if "binary" in p.id], 4)
    + _with_channels(RESIDUAL_CASES, 3)  # the fast kernels around the shortcuts' stages
)


@pytest.mark.parametrize("layers,in_channels,length", FAST_CASES)
def test_fast_variants_on_host(layers, in_channels, length, tmp_path):
    model = seeded(layers, in_channels, length)
    variants = check_variants(model, "host", tmp_path)
    assert set(variants.values()) - {"ref"}, "the host target chose no fast variant"
    stages = lower(model).stages
    sums = [i for i, st in enumerate(stages) if st.kernel in ("bconv1d_sum", "bresidual1d")]
    assert all(variants[i] == "lanes" for i in sums)
    binary = [i for i, st in enumerate(stages) if st.kernel in ("bconv1d", "bdense")]
    assert all(variants[i] != "vsl" for i in binary)  # speed: the subset tables instead


@pytest.mark.parametrize(
    "layers,in_channels,length",
    _with_channels(BCONV_CASES + EXTRA_BCONV, 3)
    + _with_channels([p for p in HEAD_CASES if "binary" in p.id], 4),
)
def test_size_variants_on_host(layers, in_channels, length, tmp_path):
    """optimize="size": no subset tables; the bit-sliced convolution without them where
    its channels come in bytes, byte-lane popcounts elsewhere."""
    model = seeded(layers, in_channels, length)
    speed = compile(model, tmp_path / "speed", "k", target="host").cmodel
    variants = check_variants(model, "host", tmp_path / "size", optimize="size")
    for s in speed.stages:
        want = s.variant.name
        if s.variant.name == "vst":
            want = "vsl" if s.kernel == "bconv1d" and s.stage.in_shape[0] % 8 == 0 else "lanes"
        assert variants[s.index] == want, (s.index, variants)


def test_subset_tables_cost_their_flash(tmp_path):
    """vst's tables: 16 words per 3-bit group, against vsl's packed weights."""
    layers, length = EXTRA_BCONV[3].values  # 48 channels in, 50 out, k=5
    model = seeded(layers, 3, length)
    st = lower(model).stages[1]
    sizes = {}
    for optimize in variants.OPTIMIZE:
        cm = compile(model, tmp_path / optimize, "k", target="host", optimize=optimize).cmodel
        sizes[optimize] = cm.stages[1]
    assert (sizes["speed"].variant.name, sizes["size"].variant.name) == ("vst", "vsl")
    o, k, c = st.weight.shape
    groups = len(sliced.vst_groups(c))  # 48 channels: 11 + 6 groups
    assert groups == 17
    extra = sizes["speed"].flash_bytes - sizes["size"].flash_bytes
    assert extra == 4 * words(o) * k * (groups * 16 - c)


@pytest.mark.parametrize("layers,in_channels,length", EXTRA_ICONV + ICONV_CASES[:2])
def test_first_layer_variants_for_cortex_m0(layers, in_channels, length, tmp_path):
    """Cortex-M0 keeps tables to 6 channels (sso): 7 and 8 take the x' variant there."""
    model = seeded(layers, in_channels, length)
    variants = check_variants(model, "cortex-m0", tmp_path)
    stage = lower(model).stages[0]
    assert isinstance(stage, InputConv)
    want = ("sso" if in_channels <= 6 else "xn") if stage.binary else "xm"
    assert variants[0] == want


def wide_multiplier_model() -> Sequential:
    """An int8 first layer whose weights times multipliers leave int16 (xs cannot fold
    them), on a narrow input range that keeps the accumulator in int32."""
    model = seeded(
        lambda: [
            InputConv1d(3, 9, 3, padding=1, weights="int8", input_range=(-2000, 2000)),
            MaxPool1d(2, 2),
            BatchNormSign(9),
            GlobalPool1d("sum"),
            Int8Linear(9, 4),
        ],
        3,
        19,
    )
    model.layers[0].multiplier[1] = 400
    return model


def test_flash_budget_drops_the_tables_that_save_least(tmp_path):
    """Tables go, least binary MACs per byte first, until the constants fit; a budget the
    table-free build exceeds is refused and nothing is written."""
    model = random_model(3)
    c, t = model.input_shape
    calibrate(model, signals(16, c, t, 3), 3)
    full = compile(model, tmp_path / "full", "k", target="host").cmodel
    small = compile(model, tmp_path / "small", "k", target="host", optimize="size").cmodel
    tables = [s for s in full.stages if s.variant.name == "vst"]
    assert tables and small.flash_bytes < full.flash_bytes
    for budget in range(small.flash_bytes, full.flash_bytes + 1, 97):
        cm = compile(model, tmp_path / "b", "k", target="host", flash_budget=budget).cmodel
        assert cm.flash_bytes <= budget
        kept = [s for s in cm.stages if s.variant.name == "vst"]
        dropped = [s for s in tables if cm.stages[s.index].variant.name != "vst"]
        for s in dropped:  # each stage dropped saves fewer MACs per byte than any kept
            rate = s.stage.macs()[0] / (s.flash_bytes - small.stages[s.index].flash_bytes)
            for k in kept:
                extra = k.flash_bytes - small.stages[k.index].flash_bytes
                assert rate <= k.stage.macs()[0] / extra
    with pytest.raises(TinyBNNError, match=f"over the budget of {small.flash_bytes - 1} B"):
        compile(model, tmp_path / "no", "k", target="host", flash_budget=small.flash_bytes - 1)
    assert not (tmp_path / "no").exists()


def test_a_flash_budget_on_a_core_trades_the_fewest_instructions_per_byte(tmp_path):
    """On a core with cost coefficients the trades go by estimated instructions: the earbud
    architecture's int8 first layer keeps xs (its int16 pairs save ~3 instructions a MAC
    for a few hundred bytes) while binary layers give up their subset tables, though by
    MACs per byte the first layer would go first."""
    from tinybnn.compiler import codegen, costs
    from tinybnn.models import conv_classifier

    torch.manual_seed(0)
    model = conv_classifier(5, 128, 6, widths=(16, 32, 48, 64), first_weights="int8")
    program = lower(model)
    fast = codegen.build(program, "k", {}, "cortex-m4")
    small = codegen.build(program, "k", {}, "cortex-m4", variants.CONSTANTS)
    assert (fast.stages[0].variant.name, small.stages[0].variant.name) == ("xs", "xq")
    byte_macs = {
        i: fast.stages[i].stage.macs()[0] / (fast.stages[i].flash_bytes - s.flash_bytes)
        for i, s in enumerate(small.stages)
        if s.flash_bytes < fast.stages[i].flash_bytes
    }
    assert min(byte_macs, key=byte_macs.get) == 0  # by MACs, the first layer would go first
    cm = codegen.build(program, "k", {}, "cortex-m4", flash_budget=fast.flash_bytes - 1)
    assert cm.stages[0].variant.name == "xs"
    assert [s.variant.name for s in cm.stages] != [s.variant.name for s in fast.stages]
    by_macs = list(fast.stages)
    by_macs[0] = small.stages[0]
    assert (
        costs.estimate(cm).instructions
        < costs.estimate(dataclasses.replace(cm, stages=by_macs)).instructions
    )


def test_int8_first_layer_variants(tmp_path):
    """Folded int16 weights (xs) where they fit, else four channels at a time (xq)."""
    assert check_variants(wide_multiplier_model(), "host", tmp_path / "xq")[0] == "xq"
    model = seeded(*next(c for c in ICONV_CASES if c.id == "in6_pool4s3_int8").values)
    assert check_variants(model, "host", tmp_path / "xs")[0] == "xs"


def test_a_flash_budget_takes_the_int8_first_layer_as_bytes(tmp_path):
    """Speed and size keep xs (int8 weights folded into int16 pairs: less code); a flash
    budget the speed build exceeds takes xq, whose weights are bytes (half the constants),
    and runs it bit-exact."""
    model = seeded(*next(c for c in ICONV_CASES if c.id == "in6_pool4s3_int8").values)
    assert check_variants(model, "host", tmp_path / "size", optimize="size")[0] == "xs"
    full = compile(model, tmp_path / "full", "k", target="host").cmodel
    budget = full.flash_bytes - 1
    assert check_variants(model, "host", tmp_path / "b", flash_budget=budget)[0] == "xq"
    cm = compile(model, tmp_path / "b2", "k", target="host", flash_budget=budget).cmodel
    assert cm.stages[0].variant.name == "xq" and cm.flash_bytes <= budget
    o, k, c = lower(model).stages[0].weight.shape
    (pairs,) = [a for a in full.stages[0].arrays if a.key == "wp"]
    (quads,) = [a for a in cm.stages[0].arrays if a.key == "wq4"]
    assert pairs.nbytes == (o + 3) // 4 * 4 * 2 * (k * c + (k * c) % 2)  # int16, host: flat
    assert quads.nbytes == (o + 3) // 4 * 4 * k * c  # int8


# The int8 first layers: c_out of 31, 32, 33, 64, 65 (blocks of 4 that straddle words),
# strides, padding, pooling, a learnable threshold.
INT8_ICONV = [p for p in ICONV_CASES if "int8" in p.id]


@pytest.mark.parametrize("layers,in_channels,length", INT8_ICONV)
def test_xm_on_a_host_without_smlad(layers, in_channels, length, tmp_path, monkeypatch):
    """xm (words of s * w, four sums at a time) in its portable C, on a host core that says
    it has no SMLAD; its ARMv6-M body runs under QEMU in test_fast_variants_under_qemu."""
    host_core = dataclasses.replace(targets.TARGETS["host"], smlad=False)
    monkeypatch.setitem(targets.TARGETS, "host", host_core)
    model = seeded(layers, in_channels, length)
    assert check_variants(model, "host", tmp_path)[0] == "xm"
    wide = wide_multiplier_model()  # xs cannot fold these weights; xm takes x' as it is
    assert check_variants(wide, "host", tmp_path / "wide")[0] == "xm"


def test_portable_target_emits_the_reference_loops(tmp_path):
    model = seeded(*ICONV_CASES[0].values)
    default = compile(model, tmp_path / "a", "k")
    compile(model, tmp_path / "b", "k", target="portable")
    assert all(s.variant.name == "ref" for s in default.cmodel.stages)
    assert (tmp_path / "a" / "k.c").read_text() == (tmp_path / "b" / "k.c").read_text()


def test_scratch_is_planned_apart_from_input_and_output(tmp_path):
    """Every stage's input, output and scratch are disjoint and inside the arena."""
    model = random_model(3)
    c, t = model.input_shape
    calibrate(model, signals(16, c, t, 3), 3)
    cm = compile(model, tmp_path, "k", target="cortex-m4").cmodel
    assert cm.stages[0].scratch_bytes > 0
    for s in cm.stages:
        spans = []
        if s.in_offset is not None:
            spans.append((s.in_offset, cm.stages[s.index - 1].stage.out_bytes()))
        if s.out_offset is not None:
            spans.append((s.out_offset, s.stage.out_bytes()))
        if s.scratch_bytes:
            spans.append((s.scratch_offset, s.scratch_bytes))
        spans.sort()
        for (a, n), (b, _) in zip(spans, spans[1:], strict=False):
            assert a + n <= b, f"stage {s.index}: buffers overlap: {spans}"
        assert all(a % 4 == 0 and a + n <= cm.arena_bytes for a, n in spans)


def test_unknown_target_is_refused(tmp_path):
    model = seeded(*ICONV_CASES[0].values)
    with pytest.raises(TinyBNNError, match="unknown target 'cortex-m9'"):
        compile(model, tmp_path, "k", target="cortex-m9")
    assert not list(tmp_path.iterdir())
    assert set(targets.TARGETS) >= {"host", *firmware.CORES}


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
@pytest.mark.parametrize(
    "layers,in_channels,length",
    _with_channels([EXTRA_BCONV[2]], 3)
    + [EXTRA_ICONV[2], next(c for c in ICONV_CASES if c.id == "in6_pool4s3_int8")]
    + _with_channels([HEAD_CASES[-4], HEAD_CASES[-2]], 4)
    + _with_channels([RESIDUAL_CASES[-2]], 3),
)
def test_every_variant_with_clang(layers, in_channels, length, tmp_path):
    """sst + vst (vsl with optimize="size"); xn; xs; classifier lanes; bdense lanes; the
    shortcuts' lanes: built by clang, strict flags."""
    model = seeded(layers, in_channels, length)
    check_variants(model, "host", tmp_path / "speed", cc="clang")
    check_variants(model, "host", tmp_path / "size", cc="clang", optimize="size")


@pytest.mark.parametrize("seed", range(2))
def test_random_models_on_host(seed, tmp_path):
    model = random_model(seed)
    c, t = model.input_shape
    calibrate(model, signals(16, c, t, seed), seed)
    check_variants(model, "host", tmp_path)


# ---------------------------------------------------------------------------------------
# Under QEMU: the variants as the cross compiler builds them (inlined, specialised).

QEMU_CORES = list(firmware.CORES)  # every core, M0+ included


@pytest.fixture(scope="module")
def toolchain():
    try:
        firmware.find_toolchain()
    except firmware.ToolchainMissing as exc:
        pytest.skip(f"no firmware toolchain: {exc}")


@pytest.mark.parametrize("core", QEMU_CORES)
def test_fast_variants_under_qemu(core, toolchain, tmp_path):
    """test_firmware_models' models (every layer kind) and two more first layers, compiled
    for `core`, bit-exact on its 8 vectors each; two of them again with optimize="size"."""
    from test_firmware_models import build_model

    from tinybnn.firmware.profile import run_on_core

    names = ("random1", "kinds_a", "kinds_b", "kinds_c", "shortcuts", "sums_bound")
    models = {n: build_model(n) for n in names}
    in6_pool = next(c for c in ICONV_CASES if c.id == "in6_pool2_binary")
    in6_int8 = next(c for c in ICONV_CASES if c.id == "in6_pool4s3_int8")
    for key, case in (("in8", EXTRA_ICONV[0]), ("in6_pool", in6_pool), ("in6_int8", in6_int8)):
        model = seeded(*case.values)
        c, t = model.input_shape
        models[key] = (model, np.concatenate([signals(6, c, t, 5), random_inputs(2, c, t, 6)]))
    model = wide_multiplier_model()
    models["wide"] = (model, np.concatenate([signals(6, 3, 19, 5), random_inputs(2, 3, 19, 6)]))
    int8_first = {"xm"} if not targets.TARGETS[core].smlad else {"xs", "xq"}
    for name, (model, x) in models.items():
        result = compile(model, tmp_path / name, name, target=core)
        assert any(s.variant.name != "ref" for s in result.cmodel.stages)
        first = result.cmodel.stages[0]
        if isinstance(first.stage, InputConv) and not first.stage.binary:
            assert first.variant.name in int8_first, (name, first.variant.name)
        run_on_core(result, name, core, x, reference.run(result.program, x))
    # optimize="size", no subset tables: vsl and byte-lane convolutions, byte-lane dense.
    chosen = set()
    for name in ("kinds_a", "kinds_b"):
        model, x = models[name]
        result = compile(model, tmp_path / f"{name}_size", name, target=core, optimize="size")
        chosen |= {(s.kernel, s.variant.name) for s in result.cmodel.stages}
        run_on_core(result, name, core, x, reference.run(result.program, x))
    assert {("bconv1d", "vsl"), ("bconv1d", "lanes"), ("bdense", "lanes")} <= chosen


# ARMv6-M counts the subset tables in assembly (tb_vst_rows_v6m): whole words of 11 groups,
# and a last, partial word of 1-11 groups (single, pair, quads); inside windows as one run
# of rows (of whole words: one long row), edge windows a row at a time (the pad word).
V6M_VST_CASES = [
    (2, 3, 1, 1, -1, 11, None),  # 1 group
    (7, 5, 2, 2, 1, 19, None),  # 3: a pair and a single
    (11, 1, 1, 0, 1, 9, None),  # 4: a quad
    (13, 3, 1, 1, 1, 14, (2, 2)),  # 5: a quad and a single
    (20, 7, 1, 3, -1, 16, None),  # 7: a quad, a pair and a single
    (31, 2, 1, 1, 1, 12, (3, 1)),  # 11 in a partial word
    (45, 3, 2, 1, -1, 17, None),  # a whole word and 5 groups
    (64, 5, 1, 2, 1, 13, (2, 2)),  # whole words only: one run of 10 words
    (96, 3, 1, 0, -1, 9, None),  # 3 whole words, no padding
]


@pytest.mark.parametrize(
    "c,k,s,pad,pv,t,pool",
    V6M_VST_CASES,
    ids=[f"c{v[0]}_k{v[1]}_s{v[2]}_p{v[3]}" for v in V6M_VST_CASES],
)
def test_subset_tables_in_armv6m_assembly(c, k, s, pad, pv, t, pool, toolchain, tmp_path):
    """The binary convolution with subset tables on Cortex-M0, bit-exact under QEMU."""
    from tinybnn.firmware.profile import run_on_core

    layers, _ = bconv_case(c, k, s, pad, pv, t, pool=pool)
    model = seeded(layers, 3, t)
    x = np.concatenate([signals(6, 3, t, 7), random_inputs(2, 3, t, 8)])
    result = compile(model, tmp_path, "v6m", target="cortex-m0")
    assert [v.variant.name for v in result.cmodel.stages if v.kernel == "bconv1d"] == ["vst"]
    run_on_core(result, "v6m", "cortex-m0", x, reference.run(result.program, x))


def test_kernel_limits_are_read_from_the_header_and_guarded(tmp_path):
    """The limits live in tinybnn_kernels.h alone: Python reads them from there, and a model
    whose variants rely on one refuses to build against a header with a smaller value."""
    from tinybnn.compiler import kernels

    header = (kernels.template_dir() / kernels.KERNELS_HEADER).read_text()
    assert kernels.read_limits(header) == kernels.LIMITS
    with pytest.raises(RuntimeError, match="TB_SST_MAX_IN"):
        kernels.read_limits(header.replace("#define TB_SST_MAX_IN", "#define TB_SST_MAX_INPUTS"))
    with pytest.raises(ValueError, match="TB_SST_MAX_IN"):
        targets.Core("big", fast=True, sst_max_in=kernels.LIMITS["TB_SST_MAX_IN"] + 1)

    model = seeded(*ICONV_CASES[0].values)
    cm = compile(model, tmp_path, "k", target="host").cmodel
    assert cm.requires  # sst and vst rely on limits; the C guards each
    limit, least = next(iter(cm.requires.items()))
    assert f"#if {limit} < {least}\n#error" in (tmp_path / "k.c").read_text()
    host.build(tmp_path, "k")  # builds against its own header
    value = kernels.LIMITS[limit]
    smaller = header.replace(f"#define {limit} {value}", f"#define {limit} {least - 1}")
    (tmp_path / kernels.KERNELS_HEADER).write_text(smaller)
    with pytest.raises(TinyBNNError, match=f"needs {limit} >= {least}"):
        host.build(tmp_path, "k")


def global_sum_model(c: int, t: int) -> Sequential:
    """Signs of c channels over t steps into the global sum; channel 0 always +1 and channel
    1 always -1 (BatchNorm scale 0, bias +-1), so the counts reach t and -t."""
    model = seeded(
        lambda: [
            InputConv1d(3, c, 1),
            BatchNormSign(c),
            GlobalPool1d("sum"),
            Int8Linear(c, 4),
        ],
        3,
        t,
    )
    bn = model.layers[1].bn
    with torch.no_grad():
        bn.weight[:2] = 0.0
        bn.bias[0], bn.bias[1] = 1.0, -1.0
    return model


@pytest.mark.parametrize("c,t", [(33, 255), (64, 9), (5, 1)])
def test_global_sum_bit_sliced(c, t, tmp_path, toolchain):
    """vsl (a ripple counter of 8 slices per 32 channels, transposed to bytes) on the host and
    under QEMU (M0, M4): a partial last word, counts of -t and t, the most steps it takes."""
    from tinybnn.firmware.profile import run_on_core

    model = global_sum_model(c, t)
    stages = lower(model).stages
    index = next(i for i, st in enumerate(stages) if st.kernel == "globalsum")
    counts = stages[index].run(stages[0].run(np.zeros((t, 3), np.int16)))  # [T][C] samples
    assert (counts[0], counts[1]) == (t, -t)
    assert check_variants(model, "host", tmp_path / "host")[index] == "vsl"
    x = np.concatenate([signals(3, 3, t, 7), random_inputs(2, 3, t, 8)])
    for core in ("cortex-m0", "cortex-m4"):
        result = compile(model, tmp_path / core, "g", target=core)
        assert result.cmodel.stages[index].variant.name == "vsl"
        run_on_core(result, "g", core, x, reference.run(result.program, x))


def test_global_sum_past_a_byte_takes_the_reference_loop(tmp_path):
    """Over TB_GSUM_VSL_MAX_T steps a count no longer fits the byte vsl transposes into."""
    t = kernels.LIMITS["TB_GSUM_VSL_MAX_T"] + 1
    model = global_sum_model(33, t)
    index = next(i for i, st in enumerate(lower(model).stages) if st.kernel == "globalsum")
    assert check_variants(model, "host", tmp_path)[index] == "ref"
