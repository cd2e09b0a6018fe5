"""The int8 hidden convolution (`int8_conv1d`) and its two crossings, binary -> int8 (+-1
inputs times int8 weights) and int8 -> binary (the folded threshold): PyTorch == reference ==
host C (gcc with sanitizers, clang) on shapes that straddle 32-bit words, the threshold
checked against PyTorch on every accumulator the layer can produce, the model file, the
refusals, streaming, and the same vectors under QEMU on every core."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hs
from modelcheck import (
    assert_exact,
    calibrate,
    check_model,
    check_reference_against_torch,
    compilers,
    random_inputs,
    signals,
)
from test_compile import WORD_CHANNELS

from tinybnn import firmware
from tinybnn.compiler import reference, targets
from tinybnn.compiler.api import compile
from tinybnn.compiler.lowering import lower
from tinybnn.errors import ModelError
from tinybnn.firmware import host
from tinybnn.modelfile import load, save
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    GlobalPool1d,
    InputConv1d,
    Int8Conv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)
from tinybnn.ops.int8_conv import Int8Conv


def int8_case(c, k, s, pad, pad_value, t, pool=None, out=None, after_binary=False):
    """input_conv1d -> [binary_conv1d ->] int8_conv1d(c -> out) [-> maxpool] -> bn+sign ->
    binary_conv1d (a binary layer after the int8 one) -> global sum -> int8 head."""
    out = out or c + 2

    def layers():
        first = [InputConv1d(3, c, 3), BatchNormSign(c)]
        if after_binary:
            first += [BinaryConv1d(c, c, 3, padding=1), BatchNormSign(c)]
        mid = [Int8Conv1d(c, out, k, stride=s, padding=pad, pad_value=pad_value)]
        if pool:
            mid.append(MaxPool1d(*pool))
        return (
            first
            + mid
            + [
                BatchNormSign(out),
                BinaryConv1d(out, 5, 1),
                BatchNormSign(5),
                GlobalPool1d("sum"),
                Int8Linear(5, 3),
            ]
        )

    return layers, t


CASES = [
    pytest.param(
        *int8_case(c, k, s, pad, pv, t), id=f"c{c}_k{k}_s{s}_p{pad}{'m' if pv < 0 else 'p'}_t{t}"
    )
    for c in WORD_CHANNELS
    for (k, s, pad, pv, t) in [(3, 1, 1, 1, 17), (5, 2, 2, -1, 21), (1, 1, 0, 1, 9)]
] + [
    pytest.param(*int8_case(33, 3, 1, 1, -1, 23, pool=(2, 2)), id="c33_k3_pool2"),
    pytest.param(*int8_case(32, 5, 2, 0, 1, 31, pool=(3, 1)), id="c32_k5_s2_valid_pool3s1"),
    pytest.param(*int8_case(31, 3, 1, 1, 1, 15, out=64, after_binary=True), id="bin_int8_bin"),
    pytest.param(*int8_case(64, 3, 1, "same", -1, 19, out=1), id="c64_to_1"),
]


def build(layers, length: int, seed: int = 0) -> Sequential:
    torch.manual_seed(seed)
    model = Sequential(*layers(), input_shape=(3, length))
    return calibrate(model, signals(12, 3, length, seed), seed)


def vectors(length: int, seed: int = 0) -> list[np.ndarray]:
    return [signals(12, 3, length, seed), random_inputs(6, 3, length, seed + 1)]


@pytest.mark.parametrize("layers,length", CASES)
def test_int8_conv1d(layers, length, tmp_path):
    """PyTorch == reference layer by layer, and gcc (sanitizers) and clang == reference."""
    model = build(layers, length)
    program = check_model(model, vectors(length), tmp_path)
    assert any(isinstance(s, Int8Conv) for s in program.stages)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("c_in,k", [(1, 1), (1, 3), (2, 5), (7, 3)])
def test_threshold_on_every_accumulator(c_in, k, seed):
    """int8 -> binary: the folded threshold gives PyTorch's eval-mode sign of
    bn(delta_o * acc) on every integer acc in [-127 k c_in, 127 k c_in], on every channel
    (gammas of both signs and one zero, as `calibrate` sets them)."""
    model = build(lambda: int8_case(c_in, k, 1, 0, 1, 12, out=9)[0](), 12, seed)
    i = next(j for j, m in enumerate(model.layers) if isinstance(m, Int8Conv1d))
    conv, bn = model.layers[i], model.layers[i + 1]
    stage = next(s for s in lower(model).stages if isinstance(s, Int8Conv))
    bound = 127 * k * c_in
    acc = np.arange(-bound, bound + 1, dtype=np.int64)
    with torch.no_grad():
        _, delta = conv.integer_weight()
        a = torch.tensor(acc, dtype=torch.float64).view(1, 1, -1).expand(1, 9, -1)
        want = (bn(conv.to_preact(a, delta))[0] < 0).numpy().T.astype(np.uint8)  # [R][C]
    got = stage.threshold.bits(acc[:, None])
    assert_exact(f"threshold bits, c_in={c_in} k={k} seed={seed}", got, want)


@settings(max_examples=25, deadline=None)
@given(
    c=hs.integers(1, 70),
    out=hs.integers(1, 70),
    k=hs.integers(1, 6),
    s=hs.integers(1, 3),
    pad=hs.integers(0, 2),
    pv=hs.sampled_from([1, -1]),
    extra=hs.integers(0, 9),
    seed=hs.integers(0, 2**16),
)
def test_reference_equals_torch_property(c, out, k, s, pad, pv, extra, seed):
    """Random shapes: the numpy reference equals PyTorch layer by layer."""
    t = k + 2 + extra  # the first layer (k=3, no padding) takes 2 steps
    layers, _ = int8_case(c, k, s, pad, pv, t, out=out)
    model = build(layers, t, seed)
    check_reference_against_torch(model, lower(model), random_inputs(3, 3, t, seed))


@pytest.mark.parametrize("smlad", [True, False], ids=["smlad", "no_smlad"])
@pytest.mark.parametrize("layers,length", CASES)
def test_fast_variants_on_host(layers, length, smlad, tmp_path, monkeypatch):
    """xs (int16 pairs, SMLAD) and, on a host core that says it has no SMLAD, xm (words, the
    portable C of its ARMv6-M body, which runs under QEMU below) == reference (gcc with
    sanitizers, clang); --optimize size keeps the int8 reference loop (the least flash)."""
    host_core = dataclasses.replace(targets.TARGETS["host"], smlad=smlad)
    monkeypatch.setitem(targets.TARGETS, "host", host_core)
    model = build(layers, length)
    x = np.concatenate(vectors(length))
    for optimize, want in (("speed", "xs" if smlad else "xm"), ("size", "ref")):
        out = tmp_path / optimize
        result = compile(model, out, "m", target="host", optimize=optimize)
        chosen = {s.variant.name for s in result.cmodel.stages if isinstance(s.stage, Int8Conv)}
        assert chosen == {want}
        expected = reference.run(result.program, x)
        for cc, flags in compilers():
            scores, _ = host.run(host.build(out, "m", cc=cc, extra_flags=flags), x, 3)
            assert_exact(f"{cc} {optimize} ({want}) scores", scores, expected)


def test_model_file_round_trip(tmp_path):
    """The model file stores kind and config: the loaded model lowers to the same program."""
    layers, length = CASES[3].values
    model = build(layers, length)
    save(model, tmp_path / "m.pt")
    again = load(tmp_path / "m.pt")
    assert [m.kind for m in again.layers] == [m.kind for m in model.layers]
    assert again.layers[2].config() == model.layers[2].config()
    x = random_inputs(4, 3, length, 3)
    assert_exact(
        "scores after a round trip",
        reference.run(lower(again), x),
        reference.run(lower(model), x),
    )


@pytest.mark.parametrize(
    "layers,message",
    [
        (
            lambda: [InputConv1d(3, 8, 3), Int8Conv1d(8, 8, 3)],
            "takes binary or int8 activations, but gets acc[8, 14]: put a batchnorm_sign",
        ),
        (
            lambda: [
                InputConv1d(3, 8, 3),
                BatchNormSign(8),
                Int8Conv1d(8, 8, 3),
                GlobalPool1d("sum"),
            ],
            "takes binary activations or int8 codes of shape [C, T], but gets acc[8, 12]",
        ),
    ],
    ids=["int8_after_an_accumulator", "no_sign_after_it"],
)
def test_refusals(layers, message):
    """Stacking without a sign in between is refused in one line naming the layer."""
    with pytest.raises(ModelError) as e:
        model = Sequential(*layers(), input_shape=(3, 16))
        lower(model)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert "layer " in str(e.value)


def test_streaming_on_host(tmp_path):
    """The stage streams as the binary convolutions do (a column stage): the streamed
    scores equal the numpy stream's on gcc and clang."""
    layers, length = int8_case(33, 3, 1, 0, 1, 24, pool=(2, 2))
    model = build(layers, length)
    result = compile(model, tmp_path, "m", target="host", streaming=True)
    program, stream = result.program, result.cmodel.stream
    x = np.concatenate([w.T for w in signals(4, 3, length, 4)])[:-3]  # [n][C], odd tail
    chunks = (1, 3, 7, 13)
    want = firmware.streaming.expected_pushes(program, stream.plan, x, chunks)
    for cc, flags in compilers():
        exe = host.build(tmp_path, "m", cc=cc, extra_flags=flags, streaming=True)
        pushed, decisions, scores = host.run_stream(exe, x, program.num_classes, chunks)
        assert_exact(f"{cc}: samples at each deciding push", pushed, want[:, 0])
        assert_exact(f"{cc}: decisions per push", decisions, want[:, 1])
        assert_exact(f"{cc}: scores", scores, want[:, 2:-1])


# ---------------------------------------------------------------------------------------
# Under QEMU, on every core.

try:
    firmware.find_toolchain()
    HAVE_FIRMWARE = True
except firmware.ToolchainMissing:
    HAVE_FIRMWARE = False

QEMU_CASES = ["c1_k3_s1_p1p_t17", "c33_k3_pool2", "bin_int8_bin", "c65_k5_s2_p2m_t21"]


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
@pytest.mark.parametrize("core", list(firmware.CORES))
def test_int8_conv1d_under_qemu(core, tmp_path):
    """Four of the cases above (1, 31 -> 64, 33 and 65 channels; odd lengths), compiled for
    `core` with its kernels (xs where it has SMLAD, else xm), bit-exact on 8 vectors each."""
    from tinybnn.firmware.profile import run_on_core

    for case in (c for c in CASES if c.id in QEMU_CASES):
        layers, length = case.values
        model = build(layers, length)
        x = np.concatenate([signals(6, 3, length, 5), random_inputs(2, 3, length, 6)])
        result = compile(model, tmp_path / case.id, case.id, target=core)
        chosen = {s.variant.name for s in result.cmodel.stages if isinstance(s.stage, Int8Conv)}
        assert chosen == {"xs" if targets.TARGETS[core].smlad else "xm"}, (case.id, chosen)
        run_on_core(result, case.id, core, x, reference.run(result.program, x))
