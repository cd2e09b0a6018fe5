"""The hidden int8 dense layer (`int8_linear` with bias=False before a batchnorm_sign): over
a flattened window of bits, a global max (bits) or a global sum (counts), PyTorch ==
reference == host C (gcc with sanitizers, clang) on widths that straddle 32-bit words, the
threshold on every accumulator, the model file, the refusals, streaming, and QEMU on every
core."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modelcheck import (
    assert_exact,
    calibrate,
    check_model,
    compilers,
    random_inputs,
    signals,
)

from tinybnn import firmware
from tinybnn.compiler import reference
from tinybnn.compiler.api import compile
from tinybnn.compiler.lowering import lower
from tinybnn.errors import ModelError
from tinybnn.firmware import host
from tinybnn.modelfile import load, save
from tinybnn.nn import (
    BatchNormSign,
    BinaryLinear,
    Flatten,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    Sequential,
)
from tinybnn.ops.dense import Int8Dense
from tinybnn.training.importance import raised


def dense_case(c, hidden, reduce, t):
    """input_conv1d(3 -> c) -> bn+sign -> flatten | global max | global sum ->
    int8_linear(hidden, no bias) -> bn+sign -> int8 classifier."""

    def layers():
        pool = {"flat": Flatten(), "max": GlobalPool1d("max"), "sum": GlobalPool1d("sum")}[reduce]
        features = c * (t - 2) if reduce == "flat" else c
        return [
            InputConv1d(3, c, 3),
            BatchNormSign(c),
            pool,
            Int8Linear(features, hidden, bias=False),
            BatchNormSign(hidden),
            Int8Linear(hidden, 3),
        ]

    return layers, t


CASES = [
    pytest.param(*dense_case(c, h, r, t), id=f"{r}_c{c}_h{h}_t{t}")
    for (c, h, r, t) in [
        (1, 31, "flat", 9),
        (31, 33, "flat", 7),
        (33, 1, "flat", 5),
        (32, 64, "max", 11),
        (65, 65, "max", 9),
        (64, 32, "sum", 13),
        (33, 65, "sum", 21),
        (1, 1, "sum", 9),
    ]
]


def build(layers, length: int, seed: int = 0) -> Sequential:
    torch.manual_seed(seed)
    model = Sequential(*layers(), input_shape=(3, length))
    return calibrate(model, signals(12, 3, length, seed), seed)


def vectors(length: int, seed: int = 0) -> list[np.ndarray]:
    return [signals(12, 3, length, seed), random_inputs(6, 3, length, seed + 1)]


@pytest.mark.parametrize("layers,length", CASES)
def test_int8_hidden_dense(layers, length, tmp_path):
    """PyTorch == reference layer by layer, and gcc (sanitizers) and clang == reference."""
    model = build(layers, length)
    program = check_model(model, vectors(length), tmp_path)
    assert sum(isinstance(s, Int8Dense) for s in program.stages) == 1


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("reduce", ["flat", "sum"])
def test_threshold_on_every_accumulator(reduce, seed):
    """int8 -> binary: the folded threshold gives PyTorch's eval-mode sign of bn(delta_o *
    acc) on every integer acc of the layer's range (bits: 127 F; counts: 127 F T), every
    output (gammas of both signs and a zero)."""
    model = build(dense_case(2, 9, reduce, 7)[0], 7, seed)
    i = next(j for j, m in enumerate(model.layers) if isinstance(m, Int8Linear))
    dense, bn = model.layers[i], model.layers[i + 1]
    stage = next(s for s in lower(model).stages if isinstance(s, Int8Dense))
    bound = 127 * dense.in_features * (1 if reduce == "flat" else 5)
    acc = np.arange(-bound, bound + 1, dtype=np.int64)
    with torch.no_grad():
        a = torch.tensor(acc, dtype=torch.float64).view(1, 1, -1).expand(1, 9, -1)
        want = (bn(dense.to_preact(a))[0] < 0).numpy().T.astype(np.uint8)  # [R][O]
    assert_exact(f"threshold bits, {reduce} seed={seed}", stage.threshold.bits(acc[:, None]), want)


def test_model_file_round_trip(tmp_path):
    layers, length = CASES[1].values
    model = build(layers, length)
    save(model, tmp_path / "m.pt")
    again = load(tmp_path / "m.pt")
    assert [(m.kind, m.config()) for m in again.layers] == [
        (m.kind, m.config()) for m in model.layers
    ]
    x = random_inputs(4, 3, length, 3)
    assert_exact("scores", reference.run(lower(again), x), reference.run(lower(model), x))


def test_importance_raises_a_hidden_binary_dense():
    """`tinybnn importance` raises a hidden binary_linear to this layer: it now compiles."""
    torch.manual_seed(0)
    layers = [
        InputConv1d(3, 8, 3),
        BatchNormSign(8),
        GlobalPool1d("max"),
        BinaryLinear(8, 16),
        BatchNormSign(16),
        Int8Linear(16, 3),
    ]
    model = calibrate(Sequential(*layers, input_shape=(3, 12)), signals(8, 3, 12, 0), 0)
    up = raised(model, 3).eval()
    assert up.layers[3].kind == "int8_linear" and up.layers[3].bias is None
    program = lower(up)
    assert any(isinstance(s, Int8Dense) for s in program.stages)


def test_refusals():
    """A hidden int8_linear feeds a batchnorm_sign, nothing else: one line naming the layer.
    (Its accumulator bound, 127 F T on counts, stays within int32 under the RAM limits of
    `ops.spec`, 127 * 2^19 < 2^31; the compiler still checks it on exact integers.)"""
    with pytest.raises(ModelError) as e:
        Sequential(
            InputConv1d(3, 8, 3),
            BatchNormSign(8),
            GlobalPool1d("sum"),
            Int8Linear(8, 4, bias=False),
            Int8Linear(4, 2),
            input_shape=(3, 12),
        )
    assert "layer 4 (int8_linear): takes flat binary activations or counts" in str(e.value)


def test_streaming_on_host(tmp_path):
    """A decision stage, as the binary dense layers: the streamed scores equal the numpy
    stream's on gcc and clang."""
    layers, length = dense_case(33, 65, "sum", 24)
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


try:
    firmware.find_toolchain()
    HAVE_FIRMWARE = True
except firmware.ToolchainMissing:
    HAVE_FIRMWARE = False

QEMU_CASES = ["flat_c31_h33_t7", "max_c65_h65_t9", "sum_c33_h65_t21"]


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
@pytest.mark.parametrize("core", list(firmware.CORES))
def test_int8_hidden_dense_under_qemu(core, tmp_path):
    """Three of the cases above (bits of a flatten, of a global max, counts), bit-exact on 8
    vectors each."""
    from tinybnn.firmware.profile import run_on_core

    for case in (c for c in CASES if c.id in QEMU_CASES):
        layers, length = case.values
        model = build(layers, length)
        x = np.concatenate([signals(6, 3, length, 5), random_inputs(2, 3, length, 6)])
        result = compile(model, tmp_path / case.id, case.id, target=core)
        run_on_core(result, case.id, core, x, reference.run(result.program, x))
