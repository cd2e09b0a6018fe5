"""Streaming inference: at every decision, the streamed scores equal the windowed model's on
the window that ends there, exactly: the numpy streaming reference against the windowed
reference and PyTorch, the generated streaming C (gcc with sanitizers, clang) against both
and against the windowed C, then under QEMU on every core; pushed in chunks of 1, of odd
sizes and of whole windows. And what cannot stream is refused in one line naming the layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as hs
from modelcheck import assert_exact, calibrate, check_reference_against_torch, compilers, signals

from tinybnn import firmware, models
from tinybnn.cli import main
from tinybnn.compiler import reference, streaming
from tinybnn.compiler.api import compile
from tinybnn.compiler.lowering import lower
from tinybnn.errors import ModelError, TinyBNNError
from tinybnn.firmware import host
from tinybnn.modelfile import load, save
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    Flatten,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)

GOLDEN = Path(__file__).parent / "golden"


def pooled_binary() -> Sequential:
    """Binary first layer (subset-sum tables on fast cores) pooled on accumulators; a binary
    conv of stride 2; pooling on bits; global sum; binary classifier on counts."""
    return Sequential(
        InputConv1d(6, 33, 5, weights="binary"),
        MaxPool1d(2),
        BatchNormSign(33),
        BinaryConv1d(33, 40, 3, stride=2),
        BatchNormSign(40),
        MaxPool1d(2),
        BinaryConv1d(40, 32, 3),
        BatchNormSign(32),
        GlobalPool1d("sum"),
        BinaryLinear(32, 5, bias=True),
        input_shape=(6, 53),
    )


def strided_max() -> Sequential:
    """int8 first layer of stride 2; binary conv k=5 stride 2 with an overlapping pool on
    accumulators; global max; binary dense; binary classifier on bits."""
    return Sequential(
        InputConv1d(3, 31, 3, stride=2, weights="int8"),
        BatchNormSign(31),
        BinaryConv1d(31, 65, 5, stride=2),
        MaxPool1d(3, 2),
        BatchNormSign(65),
        GlobalPool1d("max"),
        BinaryLinear(65, 40),
        BatchNormSign(40),
        BinaryLinear(40, 4, bias=True),
        input_shape=(3, 61),
    )


def word_edges() -> Sequential:
    """Channels across word boundaries (1 -> 31 -> 64 -> 65), stride 1, an odd length."""
    return Sequential(
        InputConv1d(1, 31, 3, weights="int8"),
        BatchNormSign(31),
        BinaryConv1d(31, 64, 3),
        BatchNormSign(64),
        BinaryConv1d(64, 65, 1),
        BatchNormSign(65),
        GlobalPool1d("sum"),
        Int8Linear(65, 3),
        input_shape=(1, 31),
    )


def skipping() -> Sequential:
    """Strides longer than the windows (a conv k=2 of stride 3, a bit pooling k=2 of stride
    3): some inputs are read by no output."""
    return Sequential(
        InputConv1d(2, 9, 2, stride=3, weights="binary"),
        BatchNormSign(9),
        MaxPool1d(2, 3),
        GlobalPool1d("sum"),
        Int8Linear(9, 3),
        input_shape=(2, 47),
    )


def classifier_valid() -> Sequential:
    """`conv_classifier` as `tinybnn train --streaming` builds it."""
    return models.conv_classifier(
        5, 64, 4, widths=(16, 33, 20), first_weights="int8", padding="valid"
    )


MODELS = {
    "pooled_binary": pooled_binary,
    "strided_max": strided_max,
    "word_edges": word_edges,
    "skipping": skipping,
    "classifier_valid": classifier_valid,
}
CHUNKS = {"ones": (1,), "odd": (3, 7, 13, 1, 5), "window": None}  # None: the window length


def build(name: str, seed: int = 0) -> Sequential:
    torch.manual_seed(seed)
    model = MODELS[name]()
    c, t = model.input_shape
    return calibrate(model, signals(8, c, t, seed), seed)


def sample_stream(model: Sequential, windows: int, seed: int) -> np.ndarray:
    """int16 [n][C]: realistic windows end to end, with a saturated stretch, and an odd tail."""
    c, t = model.input_shape
    x = np.concatenate([w.T for w in signals(windows, c, t, seed)])
    x[t // 2 : t // 2 + 5] = 32767
    return x[: len(x) - 3]


def chunks_of(kind: str, model: Sequential) -> tuple[int, ...]:
    return CHUNKS[kind] or (model.input_shape[1],)


def windows_at(x: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """The windows [D, C, T] that end after each of `ends` samples."""
    return np.stack([x[e - length : e].T for e in ends])


@pytest.mark.parametrize("hops", [1, 3], ids=["hop_stride", "hop_3strides"])
@pytest.mark.parametrize("name", MODELS)
def test_reference_stream_equals_windows(name: str, hops: int) -> None:
    model = build(name)
    program = lower(model)
    stride = streaming.plan(program).stride
    x = sample_stream(model, 5, 1)
    t = program.length
    want_ends = np.arange(t, len(x) + 1, hops * stride)
    for kind in CHUNKS:
        ends, scores = streaming.run(program, x, hops * stride, chunk=chunks_of(kind, model)[0])
        assert_exact(f"{name} decision points, chunks {kind}", ends, want_ends)
        windows = windows_at(x, ends, t)
        assert_exact(
            f"{name} streamed scores vs windowed, chunks {kind}",
            scores,
            reference.run(program, windows),
        )
    check_reference_against_torch(model, program, windows)  # and PyTorch on those windows


@given(
    c=hs.sampled_from([1, 3, 31, 33]),
    k=hs.integers(1, 5),
    s=hs.integers(1, 2),
    pool=hs.sampled_from([None, (2, 2), (3, 1), (3, 2)]),
    k2=hs.integers(1, 4),
    extra=hs.integers(0, 9),
    seed=hs.integers(0, 2**16),
)
def test_reference_stream_property(c, k, s, pool, k2, extra, seed) -> None:
    """Any valid-padded stack of convolutions, strides and poolings streams exactly."""
    layers = [InputConv1d(2, c, k, stride=s)]
    layers += [MaxPool1d(*pool)] if pool else []
    layers += [BatchNormSign(c), BinaryConv1d(c, 7, k2, stride=s), BatchNormSign(7)]
    layers += [GlobalPool1d("sum"), Int8Linear(7, 3)]
    span = (k + (pool[0] - 1) * s if pool else k) + (k2 - 1) * s * (pool[1] if pool else 1)
    torch.manual_seed(seed % 97)
    model = Sequential(*layers, input_shape=(2, span + extra))
    calibrate(model, signals(4, 2, span + extra, seed), seed)
    program = lower(model)
    x = sample_stream(model, 4, seed)
    ends, scores = streaming.run(program, x, chunk=1 + seed % 5)
    assert len(ends)
    assert_exact(
        "streamed scores", scores, reference.run(program, windows_at(x, ends, span + extra))
    )


@pytest.mark.parametrize("target", ["portable", "host"])
@pytest.mark.parametrize("name", MODELS)
def test_host_c_stream(name: str, target: str, tmp_path) -> None:
    """The streaming C on the host: each push that decides gives the numpy stream's count,
    decisions and latest scores, which are the windowed C's scores on those windows."""
    model = build(name)
    result = compile(model, tmp_path, "m", target=target, streaming=True)
    program, stream = result.program, result.cmodel.stream
    x = sample_stream(model, 5, 2)
    windowed = host.build(tmp_path, "m", extra_flags=host.SANITIZE_FLAGS)
    for cc, flags in compilers():
        exe = host.build(tmp_path, "m", cc=cc, extra_flags=flags, streaming=True)
        for kind in CHUNKS:
            chunks = chunks_of(kind, model)
            want = firmware.streaming.expected_pushes(program, stream.plan, x, chunks)
            pushed, decisions, scores = host.run_stream(exe, x, program.num_classes, chunks)
            what = f"{cc} {target} {name}, chunks {kind}"
            assert_exact(f"{what}: samples at each deciding push", pushed, want[:, 0])
            assert_exact(f"{what}: decisions per push", decisions, want[:, 1])
            assert_exact(f"{what}: scores", scores, want[:, 2:-1])
            t, hop = program.length, stream.plan.hop
            latest = pushed - (pushed - t) % hop  # the last decision point of each push
            c_scores, _ = host.run(windowed, windows_at(x, latest, t), program.num_classes)
            assert_exact(f"{what}: vs the windowed C", scores, c_scores)


def test_state_layout(tmp_path) -> None:
    """The header's sizes are the plan's: the state is its regions end to end, word-aligned,
    and the hop is the one asked for."""
    result = compile(build("pooled_binary"), tmp_path, "m", streaming=True, hop=16)
    sm = result.cmodel.stream
    offsets = [o for _, o, _ in sm.layout]
    sizes = [b for _, _, b in sm.layout]
    assert offsets == [sum(sizes[:i]) for i in range(len(sizes))]
    assert all(b % 4 == 0 for b in sizes) and sm.state_bytes == sum(sizes)
    text = (tmp_path / "m.h").read_text()
    assert f"#define M_STATE_BYTES {sm.state_bytes}\n" in text
    assert "#define M_DECISION_HOP 16\n" in text
    plain = compile(build("pooled_binary"), tmp_path / "plain", "m")
    assert "stream" not in (tmp_path / "plain" / "m.h").read_text()
    assert plain.cmodel.stream is None


def padded() -> Sequential:
    return Sequential(
        InputConv1d(2, 8, 3),
        BatchNormSign(8),
        BinaryConv1d(8, 8, 3, padding=1),
        BatchNormSign(8),
        GlobalPool1d("sum"),
        Int8Linear(8, 2),
        input_shape=(2, 20),
    )


def flattened() -> Sequential:
    return Sequential(
        InputConv1d(2, 8, 3),
        BatchNormSign(8),
        Flatten(),
        Int8Linear(8 * 18, 2),
        input_shape=(2, 20),
    )


REFUSALS = [
    pytest.param(
        padded, None, "layer 2 (binary_conv1d): cannot stream exactly: pads 1 steps", id="padding"
    ),
    pytest.param(
        flattened,
        None,
        "layer 3 (int8_linear): cannot stream exactly: reads the whole window",
        id="flatten",
    ),
    pytest.param(
        pooled_binary,
        12,
        "decision hop 12: must be a positive multiple of the model's total stride 8",
        id="hop",
    ),
]


@pytest.mark.parametrize("model, hop, message", REFUSALS)
def test_refusals(model, hop, message, tmp_path, capsys) -> None:
    """compile --streaming refuses in one line, naming the layer and the reason, and writes
    nothing; without --streaming the same model compiles."""
    m = calibrate(model(), signals(4, *model().input_shape, 0), 0)
    with pytest.raises(TinyBNNError) as e:
        compile(m, tmp_path / "s", "m", streaming=True, hop=hop)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert not (tmp_path / "s").exists()
    save(m, tmp_path / "m.pt")
    args = ["compile", str(tmp_path / "m.pt"), "-o", str(tmp_path / "cli"), "--streaming"]
    assert main(args + (["--hop", str(hop)] if hop else [])) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "cli").exists()
    assert isinstance(e.value, ModelError) == (hop is None)
    compile(m, tmp_path / "w", "m")


def test_train_streaming_builds_valid_padding() -> None:
    model = models.conv_classifier(5, 64, 4, padding="valid")
    assert all(getattr(layer, "pad", 0) == 0 for layer in model.layers)
    streaming.plan(lower(calibrate(model, signals(4, 5, 64, 0), 0)))
    with pytest.raises(ModelError, match="padding must be 'same' or 'valid'"):
        models.conv_classifier(5, 64, 4, padding="causal")


# ---------------------------------------------------------------------------------------
# Under QEMU, on every core.

try:
    firmware.find_toolchain()
    HAVE_FIRMWARE = True
except firmware.ToolchainMissing:
    HAVE_FIRMWARE = False


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
@pytest.mark.parametrize("core", list(firmware.CORES))
@pytest.mark.parametrize("name", ["pooled_binary", "strided_max", "word_edges", "skipping"])
def test_stream_on_core(name: str, core: str, tmp_path) -> None:
    """Every decision of a stream pushed in chunks of 1, odd sizes and a whole window (in
    turn) equals the numpy stream's, which equals the windowed reference (above)."""
    model = build(name)
    result = compile(model, tmp_path, name, target=core, streaming=True)
    x = sample_stream(model, 4, 3)
    chunks = (1, 3, 7, model.input_shape[1], 13, 1, 5)
    run = firmware.streaming.run_stream_on_core(result, name, core, x, chunks)
    assert run.output.strip().splitlines()[-1].startswith("OK ")


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
def test_profile_streaming(tmp_path, capsys) -> None:
    """`tinybnn profile --streaming`: the measured push made a decision per hop, its state is
    the header's, and it runs fewer instructions per second of signal than the windowed
    model at the same decisions; the figures repeat exactly."""
    model = build("classifier_valid")
    save(model, tmp_path / "m.pt")
    a = firmware.streaming.profile_stream(tmp_path / "m.pt", "cortex-m0", name="m", hop=16)
    assert a.hop == 16 and a.decisions * a.hop == a.samples >= model.input_shape[1]
    assert a.per_second == a.instructions / a.samples * 100
    assert a.windowed_per_second == a.windowed.instructions * 100 / 16
    assert 1 < a.gain and a.stack_bytes > 0
    result = compile(model, tmp_path / "c", "m", target="cortex-m0", streaming=True, hop=16)
    assert a.state_bytes == result.cmodel.stream.state_bytes
    b = firmware.streaming.profile_stream(model, "cortex-m0", name="m", hop=16)
    assert (a.instructions, a.windowed.instructions) == (b.instructions, b.windowed.instructions)
    args = ["profile", str(tmp_path / "m.pt"), "--target", "cortex-m0", "--streaming"]
    assert main(args + ["--hop", "16", "--sample-rate", "50", "--name", "m"]) == 0
    out = capsys.readouterr().out
    assert f"state {a.state_bytes} B" in out
    assert f"streaming {a.instructions / a.samples * 50:,.0f}, windowed" in out


def golden_stream_model() -> Sequential:
    """`test_codegen.golden_model` without padding (so it streams), every number seeded."""
    torch.manual_seed(1234)
    model = Sequential(
        InputConv1d(3, 8, 3),
        BatchNormSign(8),
        BinaryConv1d(8, 33, 3, stride=2, pad_value=-1),
        BatchNormSign(33),
        GlobalPool1d("sum"),
        Int8Linear(33, 3),
        input_shape=(3, 17),
        class_names=["tap", "double tap", "none"],
    )
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        model.layers[0].offset.copy_(torch.tensor([10, -20, 30]))
        model.layers[0].multiplier.copy_(torch.tensor([5, 7, 9]))
        model.layers[0].shift.fill_(12)
        for bn, k in ((model.layers[1], 300), (model.layers[3], 24)):
            c = bn.num_features
            bn.bn.running_mean.copy_((torch.rand(c, generator=g) - 0.5) * k)
            bn.bn.running_var.copy_(torch.rand(c, generator=g) * k + 1)
            bn.bn.weight.copy_(torch.randn(c, generator=g))
            bn.bn.bias.copy_(torch.randn(c, generator=g))
        model.layers[5].bias.copy_(torch.randn(3, generator=g) * 10)
    return model.eval()


def test_golden_stream_c(tmp_path) -> None:
    """The generated streaming C of a fixed model, diffed against tests/golden/ (so a change
    to what is emitted shows in review); TINYBNN_UPDATE_GOLDEN=1 rewrites the copy."""
    command = "tinybnn compile golden_stream.pt -o golden --name golden_stream --streaming"
    compile(golden_stream_model(), tmp_path, "golden_stream", command=command, streaming=True)
    for fname in ("golden_stream.h", "golden_stream.c"):
        text = (tmp_path / fname).read_text()
        if os.environ.get("TINYBNN_UPDATE_GOLDEN"):
            (GOLDEN / fname).write_text(text)
        assert text == (GOLDEN / fname).read_text(), f"{fname} differs from tests/golden/{fname}"


def test_stream_input_is_checked() -> None:
    program = lower(build("word_edges"))
    ref = streaming.StreamReference(program, streaming.plan(program))
    for bad, why in [
        (np.zeros((4, 2)), "shape"),
        (np.full((4, 1), 40000), "outside int16"),
        (np.full((4, 1), 0.5), "non-integer"),
        (np.full((4, 1), np.nan), "non-integer"),
    ]:
        with pytest.raises(TinyBNNError, match=why):
            ref.push(bad)
    assert ref.samples == 0  # a refused push changes nothing


def test_train_and_compile_streaming_from_the_command_line(tmp_path, capsys) -> None:
    """`tinybnn train --streaming` gives a model that `tinybnn compile --streaming` takes."""
    rng = np.random.default_rng(0)
    x = rng.integers(-2000, 2000, (24, 2, 40)).astype(np.int16)
    np.savez(tmp_path / "d.npz", X=x, y=np.arange(24) % 3)
    args = ["train", str(tmp_path / "d.npz"), "-o", str(tmp_path / "m.pt"), "--streaming"]
    assert main(args + ["--epochs", "1", "--threads", "1", "--no-progress"]) == 0
    trained = load(tmp_path / "m.pt")
    pads = [layer.pad for layer in trained.layers if hasattr(layer, "pad")]
    assert len(pads) >= 2 and not any(pads)  # every convolution unpadded
    capsys.readouterr()
    out = tmp_path / "c"
    assert main(["compile", str(tmp_path / "m.pt"), "-o", str(out), "--streaming"]) == 0
    assert "streaming: a decision every" in capsys.readouterr().out
    assert "model_stream_push" in (out / "model.h").read_text()
