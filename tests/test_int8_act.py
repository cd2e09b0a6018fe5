"""int8 activations between layers (`int8_conv1d` with activation="int8") and their three
crossings, binary -> int8, int8 -> int8 (the requantisation to int8 codes) and int8 ->
binary (the folded threshold): PyTorch == reference == host C (gcc with sanitizers, clang)
on shapes that straddle 32-bit words, the requantisation on every accumulator of its range
against exact Python integers, PyTorch and the C, the model file, the refusals, and the
same vectors under QEMU on every core."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hs
from modelcheck import (
    assert_exact,
    calibrate_codes,
    check_model,
    check_reference_against_torch,
    compilers,
    random_inputs,
    signals,
)
from test_compile import WORD_CHANNELS

from tinybnn import firmware
from tinybnn.compiler import reference
from tinybnn.compiler.api import compile
from tinybnn.compiler.contract import INT32_MAX, Requant, fold_requant
from tinybnn.compiler.kernels import LIMITS, template_dir
from tinybnn.compiler.lowering import lower
from tinybnn.errors import ModelError, TinyBNNError
from tinybnn.firmware import host
from tinybnn.modelfile import load, save
from tinybnn.nn import (
    BatchNormSign,
    GlobalPool1d,
    InputConv1d,
    Int8Conv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)
from tinybnn.ops.int8_conv import Int8ActConv


def act_case(c, k, s, pad, t, pool=None, relu=(True, False), out=None):
    """input_conv1d -> bn+sign -> int8_conv1d(c -> c, int8 out) [-> maxpool] ->
    int8_conv1d(c -> out, int8 out) -> int8_conv1d(out -> 5) -> bn+sign -> global sum ->
    int8 head: bits -> codes, codes -> codes, codes -> bits."""
    out = out or c

    def layers():
        mid = [Int8Conv1d(c, c, k, stride=s, padding=pad, activation="int8", relu=relu[0])]
        if pool:
            mid.append(MaxPool1d(*pool))
        zero = dict(padding=pad, pad_value=0)
        return [
            InputConv1d(3, c, 3),
            BatchNormSign(c),
            *mid,
            Int8Conv1d(c, out, k, **zero, activation="int8", relu=relu[1]),
            Int8Conv1d(out, 5, 3, padding=1, pad_value=0),
            BatchNormSign(5),
            GlobalPool1d("sum"),
            Int8Linear(5, 3),
        ]

    return layers, t


CASES = [
    pytest.param(*act_case(c, k, s, pad, t), id=f"c{c}_k{k}_s{s}_p{pad}_t{t}")
    for c in WORD_CHANNELS
    for (k, s, pad, t) in [(3, 1, 1, 17), (5, 2, 2, 23)]
] + [
    pytest.param(*act_case(33, 3, 1, 1, 25, pool=(2, 2)), id="c33_k3_pool2"),
    pytest.param(
        *act_case(32, 5, 1, 0, 31, pool=(3, 1), relu=(False, True)), id="c32_valid_pool3s1"
    ),
    pytest.param(*act_case(31, 1, 1, 0, 15, out=64), id="c31_to_64_k1"),
    pytest.param(*act_case(64, 3, 2, 1, 20, out=1), id="c64_to_1_s2"),
]


@torch.no_grad()
def build(layers, length: int, seed: int = 0) -> Sequential:
    """A model with realistic, varied statistics (`calibrate`), its int8 activation layers
    too: their BatchNorm statistics from data, gammas of both signs and one zero, shifted
    betas, and a range 0.8 times the largest |y| so that codes saturate at both ends."""
    torch.manual_seed(seed)
    model = Sequential(*layers(), input_shape=(3, length))
    return calibrate_codes(model, signals(12, 3, length, seed), seed)


def vectors(length: int, seed: int = 0) -> list[np.ndarray]:
    return [signals(12, 3, length, seed), random_inputs(6, 3, length, seed + 1)]


def act_stages(program) -> list[Int8ActConv]:
    return [s for s in program.stages if isinstance(s, Int8ActConv)]


@pytest.mark.parametrize("layers,length", CASES)
def test_int8_activations(layers, length, tmp_path):
    """PyTorch == reference layer by layer, and gcc (sanitizers) and clang == reference; the
    three crossings are all in the program and, with 8 channels or more, codes saturate."""
    model = build(layers, length)
    program = check_model(model, vectors(length), tmp_path)
    kinds = {(s.reads, s.out_kind) for s in act_stages(program)}
    assert kinds == {("bin", "i8"), ("i8", "i8"), ("i8", "bin")}
    _, traces = reference.run(program, np.concatenate(vectors(length)), trace=True)
    ends = [
        np.isin(traces[i], (s.requant.lo, s.requant.hi)).any()
        for i, s in enumerate(program.stages)
        if isinstance(s, Int8ActConv) and s.out_kind == "i8" and s.out_shape[0] >= 8
    ]
    assert not ends or any(ends)


# ---------------------------------------------------------------------------------------
# The requantisation on every accumulator of its range.

RQ_CASES = [  # scale, offset (codes), lo, hi, bound
    pytest.param(0.013, 3.7, 0, 127, 127 * 3 * 7, id="small_relu"),
    pytest.param(-0.021, -40.2, -128, 127, 127 * 5 * 3, id="negative_scale"),
    pytest.param(1.7, 0.5, -128, 127, 128 * 127 * 2, id="scale_above_1"),
    pytest.param(3.1e-6, 12.25, 0, 127, 128 * 127 * 64 * 3, id="tiny_scale_k3_c64"),
    pytest.param(0.0, -3.5, -128, 127, 1000, id="zero_scale"),
    pytest.param(1 / 64, -0.5, -128, 127, 128 * 127 * 9, id="power_of_two_ties"),
    pytest.param(2.0**20, 0.0, -128, 127, 4000, id="huge_scale"),
]


def exact_codes(acc: np.ndarray, scale: float, offset: float, rq: Requant) -> np.ndarray:
    """Python integers: clamp(floor((acc * mult + bias) / 2^shift), lo, hi), and the
    multiplier chosen as documented (the largest shift that fits)."""
    m, b, s = int(rq.mult[0]), int(rq.bias[0]), int(rq.shift[0])
    assert m == round(scale * 2**s) and b == int(np.floor((offset + 0.5) * 2**s))
    return np.array([min(max((int(a) * m + b) >> s, rq.lo), rq.hi) for a in acc])


@pytest.mark.parametrize("scale,offset,lo,hi,bound", RQ_CASES)
def test_requantisation_on_every_accumulator(scale, offset, lo, hi, bound, tmp_path):
    """Every acc in [-bound, bound]: exact Python integers == the numpy reference == the
    C's steps emulated == PyTorch's eval-mode arithmetic == the C (gcc with sanitizers and
    clang); the clamp to [amin, amax] never changes a code, the 32-bit sums are proven, and
    the codes are within a code of the real value where it is in range."""
    rq = fold_requant(np.array([scale]), np.array([offset]), lo, hi, bound, 31, "test")
    acc = np.arange(-bound, bound + 1, dtype=np.int64)
    want = exact_codes(acc, scale, offset, rq)
    assert_exact("numpy reference", rq.codes(acc[:, None])[:, 0], want)
    assert_exact("C steps in uint32", rq.codes_as_c(acc[:, None])[:, 0], want)
    layer = Int8Conv1d(1, 1, 1, activation="int8")
    torch_codes = layer.requantize(torch.tensor(acc, dtype=torch.float64).view(1, 1, -1), rq)
    assert_exact("PyTorch", torch_codes.view(-1).numpy().astype(np.int64), want)
    m, b, a0, a1 = (int(rq.mult[0]), int(rq.bias[0]), int(rq.amin[0]), int(rq.amax[0]))
    assert max(abs(a0 * m + b), abs(a1 * m + b)) <= INT32_MAX and -bound <= a0 <= a1 <= bound
    real = np.clip(np.floor(acc * scale + offset + 0.5), lo, hi)
    assert np.abs(want - real).max() <= 1
    for cc, flags in compilers():
        assert_exact(f"{cc} tb_requant", run_requant_in_c(rq, bound, tmp_path, cc, flags), want)


def run_requant_in_c(rq: Requant, bound: int, tmp_path, cc: str, flags: list[str]) -> np.ndarray:
    """tb_requant of the kernels header on every acc in [-bound, bound], as int8 bytes."""
    a = rq.arrays()
    src = tmp_path / f"rq_{cc}.c"
    src.write_text(
        f"""#include <stdio.h>
#include "tinybnn_kernels.h"
static const int32_t mult[1] = {{{int(a["mult"][0])}}}, bias[1] = {{{int(a["bias"][0])}}};
static const int32_t amin[1] = {{{int(a["amin"][0])}}}, amax[1] = {{{int(a["amax"][0])}}};
static const uint8_t shift[1] = {{{int(a["shift"][0])}}};
int main(void)
{{
    tb_requant_t r = {{mult, bias, shift, amin, amax, {rq.lo}, {rq.hi}}};
    for (int32_t acc = -{bound}; acc <= {bound}; acc++)
        putchar((unsigned char)(int8_t)tb_requant(&r, 0, acc));
    return 0;
}}
"""
    )
    exe = tmp_path / f"rq_{cc}"
    strict = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"]
    subprocess.run(
        [cc, *strict, *flags, "-I", str(template_dir()), str(src), "-o", str(exe)], check=True
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True).stdout
    return np.frombuffer(out, dtype=np.int8).astype(np.int64)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("c_in,k", [(1, 1), (2, 3), (7, 3)])
def test_layer_requantisation_on_every_accumulator(c_in, k, seed):
    """A trained-like layer's own requantisation (its BatchNorm, delta_o and range): the
    stage's codes equal PyTorch's eval mode on every acc in [-128 * 127 k c_in, ...], every
    channel (gammas of both signs and a zero)."""
    model = build(lambda: act_case(c_in, k, 1, 0, 14, out=9)[0](), 14, seed)
    program = lower(model)
    for stage in act_stages(program):
        if stage.out_kind != "i8":
            continue
        layer = model.layers[stage.layers[0]]
        bound = stage.acc_bound
        acc = np.arange(-bound, bound + 1, dtype=np.int64)
        o = layer.out_channels
        with torch.no_grad():
            a = torch.tensor(acc, dtype=torch.float64).view(1, 1, -1).expand(1, o, -1)
            want = layer.requantize(a, layer.requant())[0].numpy().T.astype(np.int64)
        assert_exact(
            f"stage codes, layer {stage.layers[0]}", stage.requant.codes(acc[:, None]), want
        )
        assert_exact("C steps", stage.requant.codes_as_c(acc[:, None]), want)


# ---------------------------------------------------------------------------------------
# Random shapes, the fast variant, the model file, refusals.


@settings(max_examples=20, deadline=None)
@given(
    c=hs.integers(1, 70),
    out=hs.integers(1, 70),
    k=hs.integers(1, 5),
    s=hs.integers(1, 3),
    pad=hs.integers(0, 2),
    relu=hs.tuples(hs.booleans(), hs.booleans()),
    pool=hs.sampled_from([None, (2, 2), (3, 1)]),
    extra=hs.integers(0, 9),
    seed=hs.integers(0, 2**16),
)
def test_reference_equals_torch_property(c, out, k, s, pad, relu, pool, extra, seed):
    """Random shapes, codes ranges and pools: the numpy reference equals PyTorch layer by
    layer."""
    t = 2 + 3 * (k + 2 + extra)  # long enough for the first layer, a pool and two convs
    layers, _ = act_case(c, k, s, pad, t, pool=pool, relu=relu, out=out)
    model = build(layers, t, seed)
    check_reference_against_torch(model, lower(model), random_inputs(3, 3, t, seed))


@pytest.mark.parametrize("layers,length", CASES)
def test_fast_variant_on_host(layers, length, tmp_path):
    """xs (int16 pairs; the portable pair product on the host, as on cores without SMLAD)
    == reference on gcc with sanitizers and clang, for the three crossings; --optimize size
    keeps the reference loops."""
    model = build(layers, length)
    x = np.concatenate(vectors(length))
    for optimize, want in (("speed", "xs"), ("size", "ref")):
        out = tmp_path / optimize
        result = compile(model, out, "m", target="host", optimize=optimize)
        chosen = {s.variant.name for s in result.cmodel.stages if isinstance(s.stage, Int8ActConv)}
        assert chosen == {want}
        expected = reference.run(result.program, x)
        for cc, flags in compilers():
            scores, _ = host.run(host.build(out, "m", cc=cc, extra_flags=flags), x, 3)
            assert_exact(f"{cc} {optimize} ({want}) scores", scores, expected)


def test_portable_target_takes_the_reference_loops():
    layers, length = CASES[0].values
    from tinybnn.compiler.codegen import build as build_c

    cm = build_c(lower(build(layers, length)), "m", {}, target_name="portable")
    assert {s.variant.name for s in cm.stages if isinstance(s.stage, Int8ActConv)} == {"ref"}


def test_model_file_round_trip(tmp_path):
    """The model file stores activation, relu and the range: the loaded model lowers to the
    same program and computes the same codes."""
    layers, length = CASES[2].values
    model = build(layers, length)
    save(model, tmp_path / "m.pt")
    again = load(tmp_path / "m.pt")
    for a, b in zip(again.layers, model.layers, strict=True):
        assert (a.kind, a.config()) == (b.kind, b.config())
    assert float(again.layers[2].act_max) == float(model.layers[2].act_max) > 0
    x = random_inputs(4, 3, length, 3)
    _, got = reference.run(lower(again), x, trace=True)
    _, want = reference.run(lower(model), x, trace=True)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_exact(f"stage {i} after a round trip", g, w)


def _model(*layers, length=16):
    return Sequential(InputConv1d(3, 8, 3), BatchNormSign(8), *layers, input_shape=(3, length))


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda: _model(Int8Conv1d(8, 8, 3, activation="int8"), GlobalPool1d("max")),
            "takes binary activations (mode='sum' takes int8 codes) of shape [C, T], but gets "
            "i8[8, 12]",
        ),
        (
            lambda: _model(Int8Conv1d(8, 8, 3, activation="int8"), BatchNormSign(8)),
            "follows a convolution or dense layer (an accumulator), not i8[8, 12]",
        ),
        (
            lambda: _model(Int8Conv1d(8, 8, 3, activation="int8"), Int8Conv1d(8, 8, 3, padding=1)),
            "int8 activations pad with 0",
        ),
        (
            lambda: _model(Int8Conv1d(8, 8, 3, padding=1, pad_value=0)),
            "binary activations pad with +1 or -1",
        ),
    ],
    ids=["global_max_of_codes", "bn_sign_of_codes", "codes_padded_with_1", "bits_padded_with_0"],
)
def test_refusals(make, message):
    """Layers that cannot read codes, and pads that are not the input's, are refused in one
    line naming the layer."""
    with pytest.raises(ModelError) as e:
        lower(make())
    assert message in str(e.value) and "\n" not in str(e.value)
    assert "layer " in str(e.value)


def test_requantisation_out_of_range_is_refused():
    """A multiplier no int32 and shift hold (a BatchNorm variance of 0 with a gamma of 1e30)
    is refused in one line naming the layer and the channel, by the compiler and by PyTorch's
    eval mode alike; the same for NaN."""
    layers, length = act_case(8, 3, 1, 1, 16)
    model = build(layers, length)
    with torch.no_grad():
        model.layers[2].bn.running_var[3] = 0.0
        model.layers[2].bn.weight[3] = 1e30
    with pytest.raises(ModelError) as e:
        lower(model)
    text = str(e.value)
    assert text.startswith("layer 2 (int8_conv1d): channel 3 requantises") and "\n" not in text
    with pytest.raises(ModelError, match="channel 3 requantises"):
        model(torch.zeros(1, 3, length))


def test_accumulator_beyond_int32_is_refused():
    """int8 codes in: |acc| <= 128 * 127 * k * c_in, checked on exact integers: one past
    2^31 - 1 is refused naming the layer."""
    c, k = 2, 2**31 // (128 * 127 * 2) + 1  # 128 * 127 * k * c > 2^31 - 1
    assert 128 * 127 * k * c > INT32_MAX >= 128 * 127 * (k - 1) * c
    model = Sequential(
        InputConv1d(1, c, 1),
        BatchNormSign(c),
        Int8Conv1d(c, c, 1, activation="int8"),
        Int8Conv1d(c, 1, k),
        BatchNormSign(1),
        GlobalPool1d("sum"),
        Int8Linear(1, 2),
        input_shape=(1, k),
    )
    with pytest.raises(ModelError) as e:
        lower(model)
    assert "layer 3 (int8_conv1d): its accumulators could reach" in str(e.value)


def test_streaming_is_refused(tmp_path):
    layers, length = act_case(8, 3, 1, 0, 20)
    model = build(layers, length)
    with pytest.raises(ModelError) as e:
        compile(model, tmp_path, "m", target="host", streaming=True)
    assert "layer 2 (int8_conv1d): cannot stream exactly: carries int8 activations" in str(e.value)
    assert "\n" not in str(e.value) and not any(tmp_path.iterdir())


def test_shift_limit_is_read_from_the_header_and_guarded(tmp_path):
    """TB_RQ_MAX_SHIFT lives in tinybnn_kernels.h: the multipliers' shifts stay within it,
    the generated C guards the largest it uses with #error, and a header with a smaller
    limit refuses to build it."""
    from tinybnn.compiler import kernels

    layers, length = CASES[0].values
    result = compile(build(layers, length), tmp_path, "m", target="host")
    shifts = [int(s.requant.shift.max()) for s in act_stages(result.program) if s.requant]
    least = max(shifts)
    assert least <= LIMITS["TB_RQ_MAX_SHIFT"]
    assert result.cmodel.requires["TB_RQ_MAX_SHIFT"] == least
    assert f"#if TB_RQ_MAX_SHIFT < {least}\n#error" in (tmp_path / "m.c").read_text()
    host.build(tmp_path, "m")
    header = tmp_path / kernels.KERNELS_HEADER
    limit = f"#define TB_RQ_MAX_SHIFT {LIMITS['TB_RQ_MAX_SHIFT']}"
    assert limit in header.read_text()
    header.write_text(header.read_text().replace(limit, f"#define TB_RQ_MAX_SHIFT {least - 1}"))
    with pytest.raises(TinyBNNError, match=f"needs TB_RQ_MAX_SHIFT >= {least}"):
        host.build(tmp_path, "m")


@settings(max_examples=60, deadline=None)
@given(
    scale=hs.one_of(
        hs.floats(-4.0, 4.0, allow_nan=False),
        hs.floats(1e-9, 1e-3),
        hs.floats(-1e4, 1e4, allow_nan=False),
        hs.floats(1e8, 1e308),  # refused where no int32 multiplier holds it
    ),
    offset=hs.one_of(hs.floats(-300.0, 300.0), hs.floats(-1e308, 1e308)),
    relu=hs.booleans(),
    bound=hs.integers(0, 4000),
    max_shift=hs.integers(0, 31),
)
def test_requantisation_property(scale, offset, relu, bound, max_shift):
    """Any multiplier, offset, code range, bound and shift limit: either a one-line refusal,
    or on every acc in [-bound, bound] the numpy reference, the C's uint32 steps and exact
    Python integers agree, the shift is within the limit and the 32-bit sums are proven."""
    lo, hi = (0, 127) if relu else (-128, 127)
    try:
        rq = fold_requant(np.array([scale]), np.array([offset]), lo, hi, bound, max_shift, "x")
    except ModelError as e:  # legitimate: only multipliers near or past int32 at shift 0
        assert str(e).startswith("x: channel 0 requantises") and "\n" not in str(e)
        assert abs(scale) > 2**30 or abs(offset) > 2**30, (scale, offset)
        return
    acc = np.arange(-bound, bound + 1, dtype=np.int64)
    m, b, sh = int(rq.mult[0]), int(rq.bias[0]), int(rq.shift[0])
    want = np.array([min(max((int(a) * m + b) >> sh, lo), hi) for a in acc])
    assert 0 <= sh <= max_shift and max(abs(m), abs(b)) <= INT32_MAX
    assert_exact("numpy", rq.codes(acc[:, None])[:, 0], want)
    assert_exact("C steps", rq.codes_as_c(acc[:, None])[:, 0], want)


# ---------------------------------------------------------------------------------------
# Under QEMU, on every core.

try:
    firmware.find_toolchain()
    HAVE_FIRMWARE = True
except firmware.ToolchainMissing:
    HAVE_FIRMWARE = False

QEMU_CASES = ["c1_k3_s1_p1_t17", "c33_k3_pool2", "c31_to_64_k1", "c65_k5_s2_p2_t23"]


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
@pytest.mark.parametrize("core", list(firmware.CORES))
def test_int8_activations_under_qemu(core, tmp_path):
    """Four of the cases above (1, 31 -> 64, 33 and 65 channels; odd lengths), compiled for
    `core` with its kernels (xs: SMLAD where the core has it, else the portable pair
    product), bit-exact on 8 vectors each."""
    from tinybnn.firmware.profile import run_on_core

    for case in (c for c in CASES if c.id in QEMU_CASES):
        layers, length = case.values
        model = build(layers, length)
        x = np.concatenate([signals(6, 3, length, 5), random_inputs(2, 3, length, 6)])
        result = compile(model, tmp_path / case.id, case.id, target=core)
        chosen = {s.variant.name for s in result.cmodel.stages if isinstance(s.stage, Int8ActConv)}
        assert chosen == {"xs"}, (case.id, chosen)
        run_on_core(result, case.id, core, x, reference.run(result.program, x))
