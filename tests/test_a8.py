"""int8 activations out of a binary convolution ("1a8": `binary_conv1d` with
activation="int8"), their global sum pooling and the classifier over the integer sums:
PyTorch == reference == host C (gcc with sanitizers, clang) on shapes that straddle 32-bit
words, with and without a max-pool of the codes, the requantisation on every accumulator of
a binary layer, random shapes, conv_classifier(precision=[8, 1, "1a8", 8]) trained by the CLI
then compiled, the model file, the refusals, and the same under QEMU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hs
from modelcheck import (
    assert_exact,
    check_model,
    check_reference_against_torch,
    compilers,
    random_inputs,
    signals,
)
from test_compile import WORD_CHANNELS
from test_int8_act import build

import tinybnn
from tinybnn import firmware
from tinybnn.compiler import reference
from tinybnn.compiler.api import compile
from tinybnn.compiler.contract import INT32_MAX
from tinybnn.compiler.kernels import LIMITS
from tinybnn.compiler.lowering import lower
from tinybnn.errors import ModelError
from tinybnn.firmware import host
from tinybnn.modelfile import load, save
from tinybnn.models import conv_classifier
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    GlobalPool1d,
    InputConv1d,
    Int8Conv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)
from tinybnn.ops import sliced
from tinybnn.ops.binary_conv import BinConvCodes
from tinybnn.ops.pool import GlobalSumCodes


def a8_case(c, k, s, pad, t, pool=None, relu=True, out=None, then="pool", head="int8", **conv):
    """input_conv1d(3 -> c) -> bn+sign -> binary_conv1d(c -> out, int8 codes out) [-> maxpool]
    -> (then="int8": int8_conv1d(out -> 5, codes in) -> bn+sign) -> global sum -> head
    (int8 or binary weights, or a hidden int8 dense layer and its sign first) over the
    integer sums."""
    out = out or c

    def layers():
        mid = [BinaryConv1d(c, out, k, stride=s, padding=pad, activation="int8", relu=relu, **conv)]
        if pool:
            mid.append(MaxPool1d(*pool))
        f = out
        if then == "int8":
            mid += [Int8Conv1d(out, 5, 3, padding=1, pad_value=0), BatchNormSign(5)]
            f = 5
        classifier = {
            "int8": [Int8Linear(f, 3)],
            "binary": [BinaryLinear(f, 3, bias=True)],
            "hidden": [Int8Linear(f, 6, bias=False), BatchNormSign(6), Int8Linear(6, 3)],
        }[head]
        return [InputConv1d(3, c, 3), BatchNormSign(c), *mid, GlobalPool1d("sum"), *classifier]

    return layers, t


CASES = [
    pytest.param(*a8_case(c, k, s, pad, t), id=f"c{c}_k{k}_s{s}_p{pad}_t{t}")
    for c in WORD_CHANNELS
    for (k, s, pad, t) in [(3, 1, 1, 17), (5, 2, 2, 23)]
] + [
    pytest.param(*a8_case(33, 3, 1, 1, 25, pool=(2, 2)), id="c33_k3_pool2"),
    pytest.param(*a8_case(65, 3, 1, 0, 31, pool=(3, 1), relu=False), id="c65_valid_pool3s1_norelu"),
    pytest.param(*a8_case(31, 1, 1, 0, 15, out=64, pad_value=-1), id="c31_to_64_k1_pad-1"),
    pytest.param(*a8_case(64, 3, 2, 1, 20, out=1, pool=(2, 2)), id="c64_to_1_s2_pool2"),
    pytest.param(*a8_case(32, 3, 1, 1, 19, then="int8", pool=(2, 2)), id="c32_then_int8_conv"),
    pytest.param(*a8_case(33, 3, 1, 1, 19, out=65, then="int8"), id="c33_to_65_then_int8"),
    pytest.param(*a8_case(33, 3, 1, 1, 21, head="binary"), id="c33_binary_head"),
    pytest.param(*a8_case(65, 3, 1, 1, 21, head="hidden"), id="c65_hidden_int8_dense"),
    pytest.param(*a8_case(32, 3, 1, 1, 21, scaling=True, pool=(2, 2)), id="c32_scaling"),
]


def vectors(length: int, seed: int = 0) -> list[np.ndarray]:
    return [signals(12, 3, length, seed), random_inputs(6, 3, length, seed + 1)]


@pytest.mark.parametrize("layers,length", CASES)
def test_binary_conv_codes_out(layers, length, tmp_path):
    """PyTorch == reference layer by layer, gcc (sanitizers) and clang == reference; the
    program holds the binary convolution to codes and the global sum of codes (or the int8
    convolution reading them), and with 8 channels or more (and no pool, which drops the low
    end) the codes reach an end of their range."""
    model = build(layers, length)
    program = check_model(model, vectors(length), tmp_path)
    kinds = [type(s) for s in program.stages]
    then_int8 = any(isinstance(m, Int8Conv1d) for m in model.layers)
    assert BinConvCodes in kinds and (GlobalSumCodes in kinds) != then_int8
    _, traces = reference.run(program, np.concatenate(vectors(length)), trace=True)
    ends = [
        np.isin(traces[i], (s.requant.lo, s.requant.hi)).any()
        for i, s in enumerate(program.stages)
        if isinstance(s, BinConvCodes) and s.out_shape[0] >= 8 and s.pool_k == 1
    ]
    assert not ends or any(ends)


FAST_CASES = [  # counts of 5 to 9 bits (vst takes up to 8), partial words, pools, strides
    "c1_k3_s1_p1_t17",
    "c31_k3_s1_p1_t17",
    "c64_k3_s1_p1_t17",
    "c65_k5_s2_p2_t23",
    "c33_k3_pool2",
    "c65_valid_pool3s1_norelu",
    "c31_to_64_k1_pad-1",
    "c33_to_65_then_int8",
    "c65_hidden_int8_dense",
    "c32_scaling",
]


@pytest.mark.parametrize("layers,length", [c for c in CASES if c.id in FAST_CASES])
def test_fast_variants_on_host(layers, length, tmp_path):
    """vst (subset tables, the counts transposed into bytes) where a count fits 8 bits and
    optimize="speed", else lanes (byte-lane popcounts), == reference on gcc with sanitizers
    and clang; the portable target keeps the reference loop."""
    model = build(layers, length)
    x = np.concatenate(vectors(length))
    stage = next(s for s in lower(model).stages if isinstance(s, BinConvCodes))
    fits = sliced.slices(stage.k_bits) <= LIMITS["TB_VSTQ_MAX_SLICES"]
    for target, optimize, want in (
        ("host", "speed", "vst" if fits else "lanes"),
        ("host", "size", "lanes"),
        ("portable", "speed", "ref"),
    ):
        out = tmp_path / f"{target}_{optimize}"
        result = compile(model, out, "m", target=target, optimize=optimize)
        chosen = {s.variant.name for s in result.cmodel.stages if isinstance(s.stage, BinConvCodes)}
        assert chosen == {want}
        expected = reference.run(result.program, x)
        for cc, flags in compilers():
            scores, _ = host.run(host.build(out, "m", cc=cc, extra_flags=flags), x, 3)
            assert_exact(f"{cc} {target} {optimize} ({want}) scores", scores, expected)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("c_in,k,relu", [(1, 1, True), (2, 3, False), (7, 3, True), (33, 1, False)])
def test_requantisation_on_every_accumulator(c_in, k, relu, seed):
    """A trained-like binary layer's own requantisation (BatchNorm with gammas of both signs
    and a zero, its range): the stage's codes equal PyTorch's eval mode on every acc in
    [-k c_in, k c_in], every channel, and the C's uint32 steps too."""
    model = build(a8_case(c_in, k, 1, 0, 14, out=9, relu=relu)[0], 14, seed)
    layer = model.layers[2]
    with torch.no_grad():
        layer.bn.weight[1] = -0.7  # a negative gamma, whatever the draw
    stage = next(s for s in lower(model).stages if isinstance(s, BinConvCodes))
    assert stage.layers[0] == 2 and layer.acc_bound == k * c_in
    assert (stage.requant.mult < 0).any()
    acc = np.arange(-layer.acc_bound, layer.acc_bound + 1, dtype=np.int64)
    o = layer.out_channels
    with torch.no_grad():
        a = torch.tensor(acc, dtype=torch.float64).view(1, 1, -1).expand(1, o, -1)
        want = layer.requantize(a, layer.requant())[0].numpy().T.astype(np.int64)
    assert_exact("stage codes", stage.requant.codes(acc[:, None]), want)
    assert_exact("C steps", stage.requant.codes_as_c(acc[:, None]), want)


@settings(max_examples=20, deadline=None)
@given(
    c=hs.integers(1, 70),
    out=hs.integers(1, 70),
    k=hs.integers(1, 5),
    s=hs.integers(1, 3),
    pad=hs.integers(0, 2),
    relu=hs.booleans(),
    pool=hs.sampled_from([None, (2, 2), (3, 1)]),
    then=hs.sampled_from(["pool", "int8"]),
    head=hs.sampled_from(["int8", "binary", "hidden"]),
    extra=hs.integers(0, 9),
    seed=hs.integers(0, 2**16),
)
def test_reference_equals_torch_property(c, out, k, s, pad, relu, pool, then, head, extra, seed):
    """Random shapes, code ranges, pools, what reads the codes and the head: the numpy
    reference equals PyTorch layer by layer."""
    t = 2 + 3 * (k + 2 + extra)
    layers, _ = a8_case(c, k, s, pad, t, pool=pool, relu=relu, out=out, then=then, head=head)
    model = build(layers, t, seed)
    check_reference_against_torch(model, lower(model), random_inputs(3, 3, t, seed))


def test_model_file_round_trip(tmp_path):
    """The model file stores activation, relu and the range of the binary layer: the loaded
    model lowers to the same program; a binary convolution without codes keeps its config."""
    layers, length = next(c for c in CASES if c.id == "c33_k3_pool2").values
    model = build(layers, length)
    save(model, tmp_path / "m.pt")
    again = load(tmp_path / "m.pt")
    for a, b in zip(again.layers, model.layers, strict=True):
        assert (a.kind, a.config()) == (b.kind, b.config())
    assert again.layers[2].config()["activation"] == "int8"
    assert float(again.layers[2].act_max) == float(model.layers[2].act_max) > 0
    x = random_inputs(4, 3, length, 3)
    _, got = reference.run(lower(again), x, trace=True)
    _, want = reference.run(lower(model), x, trace=True)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_exact(f"stage {i} after a round trip", g, w)
    assert "activation" not in BinaryConv1d(4, 4, 3).config()


def _model(*layers, length=16, c=8):
    return Sequential(InputConv1d(3, c, 3), BatchNormSign(c), *layers, input_shape=(3, length))


def _codes(c=8, **kw):
    return BinaryConv1d(c, c, 3, activation="int8", **kw)


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda: _model(_codes(), GlobalPool1d("max")),
            "layer 3 (global_pool1d): takes binary activations (mode='sum' takes int8 codes)",
        ),
        (
            lambda: _model(_codes(), BatchNormSign(8)),
            "layer 3 (batchnorm_sign): follows a convolution or dense layer",
        ),
        (
            lambda: _model(_codes(), BinaryConv1d(8, 8, 3)),
            "layer 3 (binary_conv1d): takes binary activations of shape [C, T], but gets i8",
        ),
        (
            lambda: _model(_codes(), Int8Conv1d(8, 8, 3, padding=1)),
            "layer 3 (int8_conv1d): pads i8[8, 12] with pad_value=1",
        ),
        (
            lambda: _model(_codes(), GlobalPool1d("sum"), BinaryLinear(8, 4)),
            "layer 4 (binary_linear): takes flat binary activations of shape [F], but gets count",
        ),
    ],
    ids=[
        "global_max_of_codes",
        "bn_sign_of_codes",
        "binary_conv_of_codes",
        "codes_padded_1",
        "hidden_binary_dense_of_sums",
    ],
)
def test_refusals(make, message):
    """Layers that cannot read codes (or their sums) are refused in one line naming the
    layer."""
    with pytest.raises(ModelError) as e:
        lower(make())
    assert message in str(e.value) and "\n" not in str(e.value)


def test_scores_beyond_int32_are_refused():
    """The head over sums of T codes: |score| <= T * 127 * sum |q| + |b|, on exact integers;
    64 channels of codes in [-128, 127] over 2,100 steps with every weight 127 pass 2^31 - 1
    and are refused naming the classifier."""
    t, c = 2100, 64
    model = Sequential(
        InputConv1d(1, c, 1),
        BatchNormSign(c),
        BinaryConv1d(c, c, 1, activation="int8", relu=False),
        GlobalPool1d("sum"),
        Int8Linear(c, 2),
        input_shape=(1, t),
    )
    with torch.no_grad():
        model.layers[-1].weight.fill_(1.0)
    model.eval()
    assert t * 128 * 127 * c > INT32_MAX
    with pytest.raises(ModelError) as e:
        lower(model)
    text = str(e.value)
    assert text.startswith("layer 4 (int8_linear): class scores could overflow int32")
    assert "\n" not in text


def test_streaming_is_refused(tmp_path):
    layers, length = a8_case(8, 3, 1, 0, 20)
    model = build(layers, length)
    with pytest.raises(ModelError) as e:
        compile(model, tmp_path, "m", target="host", streaming=True)
    text = str(e.value)
    assert "layer 2 (binary_conv1d): cannot stream exactly: carries int8 activations" in text
    assert "\n" not in text and not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------
# conv_classifier(precision=[8, 1, "1a8", 8]): trained, then compiled.


def classifier_1a8(precision=(8, 1, "1a8", 8), length=61, seed=0, widths=(8, 33, 32)) -> Sequential:
    """The default architecture's kind, small: a k9 int8 first layer, three widths that
    straddle a word (8, 33, 32), pool 2 for the short windows; five Adam steps on synthetic
    windows give the BatchNorm statistics and the codes' range."""
    torch.manual_seed(seed)
    model = conv_classifier(
        3, length, 4, widths=widths, kernel_size=9, pool=2, precision=list(precision)
    )
    x = torch.tensor(signals(32, 3, length, seed), dtype=torch.float32)
    y = torch.arange(32) % 4
    model.layers[0].fit_normalization(x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x) / 8.0, y).backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize(
    "precision",
    [(8, 1, "1a8", 8), (8, "1a8", 8, 8), (8, 1, "8a8", 8), (8, 1, "1a8", 1), (8, "1a8", "8a8", 8)],
)
def test_conv_classifier_precisions(precision, tmp_path):
    """ "1a8" as the last hidden convolution (its codes summed for the head, int8 or binary)
    and before an int8 one; "8a8" as the last hidden one, also reading "1a8" codes (the
    defaults' `codes_into_last`): trained a few steps, then PyTorch == reference == gcc
    (sanitizers) and clang on random windows."""
    model = classifier_1a8(precision)
    codes = sum(b in ("1a8", "8a8") for b in precision)
    assert [v.kind for v in model.values].count("i8") == 2 * codes  # codes and their max-pool
    check_model(model, [signals(10, 3, 61, 4), random_inputs(6, 3, 61, 5)], tmp_path)


def test_train_1a8_then_summary_and_compile(tmp_path, signals_npz, capsys):
    """--precision 8,1,1a8,8 trains, the model file records the activation, summary shows
    "1 / a8", and the trained model's C equals the reference equals PyTorch."""
    from test_cli import run

    from tinybnn.training.data import load_dataset

    out = tmp_path / "model.pt"
    tiny = ["--epochs", "2", "--widths", "8,16,8", "--batch-size", "16", "--no-progress"]
    status, _, err = run(capsys, "train", signals_npz, "-o", out, *tiny, "--precision", "8,1,1a8,8")
    assert (status, err) == (0, "")
    model = tinybnn.load(out)
    codes = [m for m in model.layers if m.kind == "binary_conv1d"]
    assert [m.activation for m in codes] == ["none", "int8"] and float(codes[1].act_max) > 0
    status, stdout, err = run(capsys, "summary", out)
    assert (status, err) == (0, "")
    row = next(line for line in stdout.splitlines() if "int8 out" in line)
    assert "binary_conv1d" in row and "1 / a8" in row and "i8[8, " in row
    check_model(model, [load_dataset(signals_npz).X[:16]], tmp_path / "c")


# ---------------------------------------------------------------------------------------
# Under QEMU.

try:
    firmware.find_toolchain()
    HAVE_FIRMWARE = True
except firmware.ToolchainMissing:
    HAVE_FIRMWARE = False

QEMU_CASES = [  # vst (5, 8 and 7 slices), lanes (9 slices)
    "c1_k3_s1_p1_t17",
    "c65_valid_pool3s1_norelu",
    "c33_to_65_then_int8",
    "c65_k5_s2_p2_t23",
]


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
@pytest.mark.parametrize("core", list(firmware.CORES))
def test_classifier_under_qemu(core, tmp_path):
    """conv_classifier([8, 1, "1a8", 8]) compiled for `core` with optimize="speed" (the
    codes by vst) and "size" (by lanes), bit-exact on 8 windows; on M0 and M4 also four
    word-straddling cases; and [8, "1a8", "8a8", 8] (the defaults' codes into an int8 last
    convolution) of widths 8, 33, 31."""
    from tinybnn.firmware.profile import run_on_core

    model = classifier_1a8()
    x = np.concatenate([signals(6, 3, 61, 7), random_inputs(2, 3, 61, 8)])
    for optimize, want in (("speed", "vst"), ("size", "lanes")):
        result = compile(model, tmp_path / optimize, "cc", target=core, optimize=optimize)
        chosen = {s.variant.name for s in result.cmodel.stages if isinstance(s.stage, BinConvCodes)}
        assert chosen == {want}
        run_on_core(result, "cc", core, x, reference.run(result.program, x))
    # the defaults' codes into an int8 last convolution (`codes_into_last`), an odd width
    model = classifier_1a8((8, "1a8", "8a8", 8), widths=(8, 33, 31))
    result = compile(model, tmp_path / "into", "cc", target=core, optimize="speed")
    run_on_core(result, "cc", core, x, reference.run(result.program, x))
    if core not in ("cortex-m0", "cortex-m4"):
        return
    for case in (c for c in CASES if c.id in QEMU_CASES):
        layers, length = case.values
        model = build(layers, length)
        x = np.concatenate([signals(6, 3, length, 5), random_inputs(2, 3, length, 6)])
        result = compile(model, tmp_path / case.id, case.id, target=core)
        run_on_core(result, case.id, core, x, reference.run(result.program, x))
