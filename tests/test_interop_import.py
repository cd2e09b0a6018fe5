"""Importing larq and QONNX models (issue 17): the fixtures made by
`scripts/make_interop_fixtures.py`, read without the frameworks, compiled, and compared with
the outputs the frameworks stored beside them; then PyTorch == reference == host C, and the
C under QEMU on Cortex-M4. Synthetic graphs cover every mapped layer on shapes that straddle
32-bit words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from modelcheck import assert_exact, check_model, signals

pytest.importorskip("h5py")
pytest.importorskip("onnx")

import tinybnn  # noqa: E402
from tinybnn import firmware  # noqa: E402
from tinybnn.cli import tinybnn as cli  # noqa: E402
from tinybnn.compiler import reference  # noqa: E402
from tinybnn.compiler.api import compile  # noqa: E402
from tinybnn.interop import import_model  # noqa: E402
from tinybnn.interop.graph import (  # noqa: E402
    BINARY,
    SCALED,
    BatchNorm,
    Conv,
    Dense,
    FlattenOp,
    GlobalPool,
    Graph,
    MaxPool,
    Sign,
    evaluate,
    to_tinybnn,
)

FIXTURES = Path(__file__).parent / "fixtures" / "interop"

# file -> integer-exact in the framework's graph (binary weights and activations, BN folded)
MODELS = {
    "larq_exact.h5": True,
    "larq_gmp.h5": True,
    "larq_gap_float_head.keras": False,  # float Dense head
    "larq_float_first.h5": False,  # float first layer and a BatchNorm on the head
    "larq_docs.keras": False,  # larq's documented example in 1-D: BatchNorm on the head
    "brevitas_exact.onnx": True,
    "brevitas_dense.onnx": True,
    "brevitas_gap_float_head.onnx": False,
}
REFUSED = {
    "larq_refuse_float_conv.h5": "layer 2 (Conv1D 'conv1d'): has float weights",
    "larq_refuse_zero_pad.keras": "pads binary activations with 0",
    "brevitas_refuse_zero_pad.onnx": "(Conv 'node_Conv_77'): pads binary activations with 0",
}


def stored(name: str) -> dict[str, np.ndarray]:
    """The framework's outputs; X (stored [N, T, C]) in PyTorch's layout [N, C, T]."""
    with np.load(FIXTURES / (name.rsplit(".", 1)[0] + ".npz")) as d:
        out = dict(d)
    out["X"] = np.ascontiguousarray(out["X"].transpose(0, 2, 1))
    return out


def tinybnn_scores(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(x, dtype=torch.float64)).numpy().astype(np.int64)


@pytest.mark.parametrize("name", list(MODELS))
def test_reader_computes_what_the_framework_computed(name: str) -> None:
    """The graph read from the file, run in float64, gives the framework's stored logits
    (float32 in the framework: a relative tolerance, the only one in these tests)."""
    imported = import_model(FIXTURES / name)
    d = stored(name)
    logits = evaluate(imported.graph, d["X"])
    scale = np.abs(d["logits"]).max()
    np.testing.assert_allclose(logits, d["logits"], rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("name", [n for n, exact in MODELS.items() if exact])
def test_exact_models_give_the_frameworks_logits(name: str) -> None:
    """Integer-exact graphs: tinybnn's integer scores are the framework's logits divided by
    the factor the import reports, exactly (the logits are integers times it)."""
    imported = import_model(FIXTURES / name)
    assert imported.exactness.exact and imported.exactness.borderline == 0
    d = stored(name)
    scores = tinybnn_scores(imported.model, d["X"])
    want = np.round(d["logits"] / imported.exactness.factor).astype(np.int64)
    assert_exact(f"{name}: scores", scores, want)
    # also the QONNX executor's own outputs, where the fixture stored them
    if "qonnx_logits" in d:
        want = np.round(d["qonnx_logits"] / imported.exactness.factor).astype(np.int64)
        assert_exact(f"{name}: scores vs qonnx", scores, want)


@pytest.mark.parametrize("name", [n for n, exact in MODELS.items() if not exact])
def test_quantised_models_flag_every_window_they_may_get_wrong(name: str) -> None:
    """Float layers quantised by tinybnn: a window whose class differs from the framework's
    is always among the windows flagged at risk; the classifier's bound holds where the
    first layer is exact."""
    imported = import_model(FIXTURES / name)
    ex = imported.exactness
    assert not ex.exact and ex.reasons
    d = stored(name)
    agreement = imported.agreement(d["X"])
    assert not (agreement.differs & ~agreement.risky).any()
    assert agreement.same_class == int((~agreement.differs).sum())
    if not any("first" in r or "int8 per channel" in r for r in ex.reasons):
        scores = tinybnn_scores(imported.model, d["X"])
        logits = evaluate(imported.graph, d["X"])
        slack = 1e-9 * np.abs(logits).max()
        assert (np.abs(ex.factor * scores - logits) <= ex.head_error[None] + slack).all()


def test_docs_example_agrees_on_every_window(tmp_path: Path) -> None:
    """Issue 17's goal: larq's documented example in 1-D, compiled and run on Cortex-M4
    under QEMU, agrees with larq's class on 100% of its seeded test set."""
    imported = import_model(FIXTURES / "larq_docs.keras")
    d = stored("larq_docs.keras")
    scores = tinybnn_scores(imported.model, d["X"])
    assert_exact("classes", scores.argmax(1), d["probs"].argmax(1))
    try:
        firmware.find_toolchain()
    except firmware.ToolchainMissing as e:
        pytest.skip(f"no firmware toolchain: {e}")
    from tinybnn.firmware.profile import run_on_core

    result = compile(FIXTURES / "larq_docs.keras", tmp_path, "docs", target="cortex-m4")
    run_on_core(result, "docs", "cortex-m4", d["X"], scores)  # every window, scores and class


@pytest.mark.parametrize("name", list(MODELS))
def test_fixture_c_on_host(name: str, tmp_path: Path) -> None:
    """PyTorch == reference layer by layer == host C (gcc with sanitizers, clang)."""
    model = import_model(FIXTURES / name).model
    d = stored(name)
    c, t = model.input_shape
    check_model(model, [d["X"], signals(8, c, t, seed=3)], tmp_path)


@pytest.mark.parametrize("name", list(MODELS))
def test_fixture_c_on_cortex_m4(name: str, tmp_path: Path) -> None:
    """The compiled fixture under QEMU on Cortex-M4 gives the reference's scores."""
    try:
        firmware.find_toolchain()
    except firmware.ToolchainMissing as e:
        pytest.skip(f"no firmware toolchain: {e}")
    from tinybnn.firmware.profile import run_on_core

    d = stored(name)
    result = compile(FIXTURES / name, tmp_path, "m", target="cortex-m4")
    x = d["X"][:8]
    run_on_core(result, "m", "cortex-m4", x, reference.run(result.program, x))


# ---------------------------------------------------------------------------------------
# The commands


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_compile_command_reports_exactness(tmp_path: Path) -> None:
    res = run("compile", FIXTURES / "larq_exact.h5", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "a larq model, integer-exact" in res.output
    assert (tmp_path / "out" / "model.c").is_file()


def test_compile_command_measures_agreement_on_data(tmp_path: Path) -> None:
    d = stored("larq_float_first.h5")
    data = tmp_path / "data.npz"
    np.savez(data, X=d["X"], y=d["y"])
    res = run("compile", FIXTURES / "larq_float_first.h5", "-o", tmp_path / "out", "--data", data)
    assert res.exit_code == 0, res.output
    agreement = import_model(FIXTURES / "larq_float_first.h5").agreement(d["X"])
    assert f"on {data}: tinybnn {agreement.describe()}" in res.output
    assert ("warning:" in res.output) == bool(agreement.at_risk or agreement.differs.any())


@pytest.mark.parametrize("name", list(REFUSED))
def test_unsupported_layers_are_refused_in_one_line(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for args in (
        ("compile", FIXTURES / name, "-o", out),
        ("convert-model", FIXTURES / name, tmp_path / "m.pt"),
    ):
        res = CliRunner().invoke(cli, [str(a) for a in args])
        assert res.exit_code != 0
        with pytest.raises(tinybnn.TinyBNNError) as e:
            import_model(FIXTURES / name)
        message = str(e.value)
        assert "\n" not in message and message.startswith(str(FIXTURES / name))
        assert REFUSED[name] in message
    assert not out.exists() and not (tmp_path / "m.pt").exists()


def test_convert_model_writes_a_tinybnn_model(tmp_path: Path) -> None:
    dst = tmp_path / "m.pt"
    res = run("convert-model", FIXTURES / "larq_gmp.h5", dst)
    assert res.exit_code == 0, res.output
    d = stored("larq_gmp.h5")
    want = tinybnn_scores(import_model(FIXTURES / "larq_gmp.h5").model, d["X"])
    assert_exact("scores of the saved model", tinybnn_scores(tinybnn.load(dst), d["X"]), want)


def test_convert_model_never_overwrites_its_source(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    src.write_bytes((FIXTURES / "brevitas_dense.onnx").read_bytes())
    res = run("convert-model", src, src)
    assert res.exit_code == 1
    assert src.read_bytes() == (FIXTURES / "brevitas_dense.onnx").read_bytes()


def test_summary_reads_a_larq_file() -> None:
    res = run("summary", FIXTURES / "larq_docs.keras")
    assert res.exit_code == 0, res.output
    assert "binary_conv1d" in res.output and "int8_linear" in res.output


def test_damaged_files_are_one_line(tmp_path: Path) -> None:
    for suffix in (".h5", ".keras", ".onnx"):
        bad = tmp_path / f"bad{suffix}"
        bad.write_bytes(b"not a model" * 10)
        res = run("compile", bad, "-o", tmp_path / "out")
        assert res.exit_code == 1
        with pytest.raises(tinybnn.TinyBNNError) as e:
            import_model(bad)
        assert str(e.value).startswith(str(bad)) and "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------
# Synthetic graphs: every mapped layer, on shapes that straddle 32-bit words


def synthetic(c_in: int, width: int, length: int, seed: int, head: str) -> Graph:
    """raw -> binary conv (zero padding) -> BN -> maxpool -> sign -> binary conv (+1/-1
    padding, scaled) -> maxpool on the accumulator -> BN -> [flatten -> dense -> BN ->] head."""
    rng = np.random.default_rng(seed)

    def bn(c, name):
        return BatchNorm(
            name,
            rng.normal(0, 3, c),
            rng.uniform(0.5, 9, c),
            rng.normal(0, 1, c) * np.where(np.arange(c) % 5 == 1, -1, 1),
            rng.normal(0, 0.5, c),
            1e-3,
        )

    def pm(*shape):
        return np.where(rng.random(shape) < 0.5, -1.0, 1.0)

    alpha = rng.uniform(0.1, 2, width)[:, None, None]
    ops = [
        Conv("conv0", pm(width, c_in, 3), BINARY, pad=1, pad_value=0.0),
        bn(width, "bn0"),
        MaxPool("pool0", 2, 2),
        Sign("sign0"),
        Conv(
            "conv1",
            pm(width, width, 3) * alpha,
            SCALED,
            pad=1,
            pad_value=float(rng.choice([-1, 1])),
            sign_input=True,
        ),
        MaxPool("pool1", 3, 2),
        bn(width, "bn1"),
    ]
    t = (length - 2) // 2 + 1  # conv0 keeps the length, pool0 halves it
    t = (t - 3) // 2 + 1  # conv1 keeps it, pool1 (3, stride 2)
    if head == "dense":
        ops += [
            FlattenOp("flat"),
            Dense("dense", pm(33, width * t), BINARY, sign_input=True),
            bn(33, "bn2"),
            Dense("head", pm(5, 33), BINARY, sign_input=True),
        ]
    elif head == "gmax":
        ops += [GlobalPool("gmax", "max"), Dense("head", pm(4, width), BINARY, sign_input=True)]
    else:
        ops += [Sign("sign1"), GlobalPool("gap", "mean"), Dense("head", pm(3, width), BINARY)]
    return Graph("synthetic", (c_in, length), ops)


SHAPES = [
    pytest.param(1, 31, 33, "dense", id="c1_w31_t33_dense"),
    pytest.param(3, 32, 40, "gmax", id="c3_w32_t40_gmax"),
    pytest.param(2, 33, 29, "gap", id="c2_w33_t29_gap"),
    pytest.param(4, 64, 31, "dense", id="c4_w64_t31_dense"),
    pytest.param(5, 65, 27, "gmax", id="c5_w65_t27_gmax"),
]


@pytest.mark.parametrize("c_in, width, length, head", SHAPES)
def test_synthetic_graph_is_exact_on_host(c_in, width, length, head, tmp_path: Path) -> None:
    graph = synthetic(c_in, width, length, seed=width, head=head)
    model, ex = to_tinybnn(graph)
    assert ex.exact
    x = signals(12, c_in, length, seed=width) // 8  # keeps the raw accumulator in range
    logits = evaluate(graph, x)
    assert_exact("scores", tinybnn_scores(model, x), np.round(logits / ex.factor).astype(np.int64))
    check_model(model, [x], tmp_path)


@settings(max_examples=30, deadline=None)
@given(
    c_in=st.integers(1, 6),
    width=st.sampled_from([1, 2, 31, 32, 33, 63, 64, 65]),
    length=st.integers(6, 40),
    head=st.sampled_from(["dense", "gmax", "gap"]),
    seed=st.integers(0, 2**16),
)
def test_random_graphs_are_exact(c_in, width, length, head, seed) -> None:
    """Any graph of the mapped layers: tinybnn's integer scores are its logits exactly."""
    graph = synthetic(c_in, width, length, seed=seed, head=head)
    model, ex = to_tinybnn(graph)
    assert ex.exact
    x = signals(4, c_in, length, seed=seed) // 8
    logits = evaluate(graph, x)
    assert_exact("scores", tinybnn_scores(model, x), np.round(logits / ex.factor).astype(np.int64))


@pytest.mark.parametrize("c_in, width, length, head", SHAPES[1:4])
def test_synthetic_graph_on_cortex_m4(c_in, width, length, head, tmp_path: Path) -> None:
    try:
        firmware.find_toolchain()
    except firmware.ToolchainMissing as e:
        pytest.skip(f"no firmware toolchain: {e}")
    from tinybnn.firmware.profile import run_on_core

    model, _ = to_tinybnn(synthetic(c_in, width, length, seed=width, head=head))
    x = signals(6, c_in, length, seed=width) // 8
    result = compile(model, tmp_path, "m", target="cortex-m4")
    run_on_core(result, "m", "cortex-m4", x, reference.run(result.program, x))


# ---------------------------------------------------------------------------------------
# QONNX as FINN streamlines it: MultiThreshold, checked against the qonnx executor


def finn_style_graph(path: Path, x0: np.ndarray, width: int, seed: int) -> None:
    """Quant (identity on int16) -> Conv (BipolarQuant weights) -> MultiThreshold -> Conv ->
    BatchNormalization -> MultiThreshold -> Flatten -> MatMul (BipolarQuant weights). The
    first thresholds of even channels equal the accumulator of window x0 [C, T] at t = 0,
    so that ties (acc == threshold: +1) occur."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    c_in, length = x0.shape
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(op, ins, out, domain="", **attrs):
        nodes.append(helper.make_node(op, ins, [out], name=out, domain=domain, **attrs))
        return out

    q = "qonnx.custom_op.general"
    t1 = length - 2
    t2 = t1 - 2
    x = node("Quant", ["x", const("s", 1.0), const("z", 0.0), const("b", 16.0)], "xq", q,
             signed=1, narrow=0, rounding_mode="ROUND")  # fmt: skip
    w0f = rng.normal(size=(width, c_in, 3))
    w0 = node("BipolarQuant", [const("w0f", w0f), "s"], "w0", q)
    a = node("Conv", [x, w0], "a0", kernel_shape=[3])
    th0 = rng.integers(-3000, 3000, (width, 1))
    tie = (np.where(w0f >= 0, 1, -1) * x0[None, :, :3]).sum((1, 2))
    th0[::2, 0] = tie[::2]
    a = node("MultiThreshold", [a, const("th0", th0)], "m0", q, out_dtype="BIPOLAR",
             out_scale=2.0, out_bias=-1.0, data_layout="NCW")  # fmt: skip
    w1 = node("BipolarQuant", [const("w1f", rng.normal(size=(width, width, 3))), "s"], "w1", q)
    a = node("Conv", [a, w1], "a1", kernel_shape=[3])
    bn = [const(n, v) for n, v in (("g", rng.normal(size=width)), ("be", rng.normal(size=width)),
          ("mu", rng.normal(0, 3, width)), ("var", rng.uniform(1, 9, width)))]  # fmt: skip
    a = node("BatchNormalization", [a, *bn], "bn", epsilon=1e-3)
    a = node("MultiThreshold", [a, const("th1", rng.normal(0, 0.3, (width, 1)))], "m1", q,
             out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0, data_layout="NCW")  # fmt: skip
    a = node("Flatten", [a], "flat", axis=1)
    w2 = node("BipolarQuant", [const("w2f", rng.normal(size=(width * t2, 4))), "s"], "w2", q)
    node("MatMul", [a, w2], "scores")
    graph = helper.make_graph(
        nodes, "finn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, length])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4])], inits,
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(q, 1)]
    )
    onnx.save(model, str(path))


@pytest.mark.parametrize("c_in, width, length", [(1, 31, 21), (3, 33, 17), (2, 64, 12)])
def test_multithreshold_graph_matches_the_qonnx_executor(c_in, width, length, tmp_path):
    pytest.importorskip("qonnx")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    path = tmp_path / "finn.onnx"
    x = signals(6, c_in, length, seed=width) // 16
    finn_style_graph(path, x[0], width, seed=width)
    imported = import_model(path)
    assert imported.exactness.exact
    wrapper = ModelWrapper(str(path)).transform(InferShapes())
    want = np.concatenate(
        [execute_onnx(wrapper, {"x": x[i : i + 1].astype(np.float32)})["scores"] for i in range(6)]
    )
    assert_exact("scores", tinybnn_scores(imported.model, x), want.astype(np.int64))
    check_model(imported.model, [x], tmp_path)


MUTATIONS = {
    "filters_text": ('"filters": 31', '"filters": "31"'),
    "kernel_list": ('"kernel_size": [3]', '"kernel_size": [3, 3]'),
    "strides_zero": ('"strides": [1]', '"strides": [0]'),
    "axis_text": ('"axis": [2]', '"axis": "two"'),
    "pool_huge": ('"pool_size": [2]', '"pool_size": [999]'),
    "units_negative": ('"units": 5', '"units": -5'),
    "class_lambda": ('"class_name": "Flatten"', '"class_name": "Lambda"'),
    "layers_null": ('"layers": [', '"layers": null, "x": ['),
    "quantizer_unknown": ('"class_name": "SteSign"', '"class_name": "DoReFaQuantizer"'),
    "pad_text": ('"pad_values": 1.0', '"pad_values": "one"'),
    "filters_more": ('"filters": 31', '"filters": 30'),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_damaged_configs_are_one_line(mutation: str, tmp_path: Path) -> None:
    """A larq file whose architecture JSON was edited: read or refused in one line naming
    the file, never another exception."""
    import h5py

    old, new = MUTATIONS[mutation]
    path = tmp_path / "m.h5"
    path.write_bytes((FIXTURES / "larq_exact.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        config = f.attrs["model_config"]
        config = config.decode() if isinstance(config, bytes) else config
        assert old in config
        f.attrs["model_config"] = config.replace(old, new, 1)
    with pytest.raises(tinybnn.TinyBNNError) as e:
        import_model(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_sign_of_an_accumulator_without_batchnorm(tmp_path: Path) -> None:
    """A sign straight on a convolution's output (no BatchNorm between): an identity
    batchnorm_sign, exact; a pool between them is moved after the sign."""
    rng = np.random.default_rng(0)
    pm = lambda *s: np.where(rng.random(s) < 0.5, -1.0, 1.0)  # noqa: E731
    graph = Graph(
        "synthetic",
        (2, 19),
        [
            Conv("c0", pm(33, 2, 3), BINARY, bias=rng.normal(0, 5, 33)),
            Conv("c1", pm(32, 33, 3), BINARY, sign_input=True),
            MaxPool("p", 2, 2),
            Dense("head", pm(3, 32 * 7), BINARY, sign_input=True),
        ],
    )
    graph.ops.insert(3, FlattenOp("flat"))
    model, ex = to_tinybnn(graph)
    x = signals(8, 2, 19, seed=0) // 8
    assert ex.exact
    want = np.round(evaluate(graph, x) / ex.factor).astype(np.int64)
    assert_exact("scores", tinybnn_scores(model, x), want)
    check_model(model, [x], tmp_path)


def test_thresholds_at_float32_rounding_are_reported() -> None:
    """A BatchNorm whose zero falls on an integer accumulator: float32 could round either
    way there, and the import says how many channels are so placed."""
    graph = synthetic(2, 33, 21, seed=1, head="gmax")
    bn = graph.ops[1]
    bn.mean[:5], bn.gamma[:5], bn.beta[:5] = [3.0, -7.0, 0.0, 11.0, 1.0], 1.0, 0.0
    _, ex = to_tinybnn(graph)
    assert ex.exact and ex.borderline == 5
    assert "5 channels' thresholds lie within float32 rounding" in ex.describe()


def test_compile_without_data_warns_about_a_quantised_model(tmp_path: Path) -> None:
    res = run("compile", FIXTURES / "brevitas_gap_float_head.onnx", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "not integer-exact" in res.output
    assert "warning: tinybnn's quantised class could differ from QONNX's" in res.output
