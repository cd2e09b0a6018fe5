"""`tinybnn export`: tinybnn models as QONNX graphs, run by the `qonnx` package's own
executor (`qonnx.core.onnx_exec.execute_onnx`), give the integer reference's scores exactly:
on every layer kind, shapes that straddle 32-bit words, both forms of the first layer
(float32 `Conv`; windows times weights in double when its sums pass 2^24), and the earbud
demo's architecture.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from modelcheck import assert_exact, calibrate, random_inputs, signals
from test_compile import random_model

pytest.importorskip("onnx")
pytest.importorskip("qonnx")

from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.transformation.infer_shapes import InferShapes  # noqa: E402

import tinybnn  # noqa: E402
from tinybnn.cli import tinybnn as cli  # noqa: E402
from tinybnn.compiler import reference  # noqa: E402
from tinybnn.compiler.lowering import lower  # noqa: E402
from tinybnn.interop.qonnx_export import export  # noqa: E402
from tinybnn.nn import (  # noqa: E402
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

DEMO = Path(__file__).resolve().parent.parent / "examples" / "earbud_gesture"


def qonnx_scores(path: Path, x: np.ndarray) -> np.ndarray:
    """The qonnx executor's outputs on windows x int16 [N, C, T], one window at a time."""
    model = ModelWrapper(str(path)).transform(InferShapes())
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    rows = [execute_onnx(model, {inp: x[i : i + 1].astype(np.float32)})[out] for i in range(len(x))]
    scores = np.concatenate(rows)
    assert (scores == np.round(scores)).all()
    return scores.astype(np.int64)


def check_export(model: Sequential, x: np.ndarray, tmp_path: Path) -> set[str]:
    """Export, execute with qonnx, compare with the integer reference exactly; the graph's
    operator types."""
    path = tmp_path / "model.onnx"
    export(model, path)
    assert_exact("qonnx scores", qonnx_scores(path, x), reference.run(lower(model), x))
    return {n.op_type for n in ModelWrapper(str(path)).graph.node}


def bits_model() -> Sequential:
    """Binary first layer (float32 Conv in the graph), a pool on its accumulator, RSign,
    RPReLU, scaling, +-1 padding, pooled bits, flatten, binary dense, binary classifier."""
    return Sequential(
        InputConv1d(1, 31, 3, padding=1, weights="binary", input_range=(-2000, 2000)),
        MaxPool1d(2),
        BatchNormSign(31, learnable_threshold=True),
        BinaryConv1d(31, 65, 3, padding=1, pad_value=-1, scaling=True),
        BatchNormSign(65, rprelu=True),
        MaxPool1d(3, 2),
        BinaryConv1d(65, 33, 5, stride=2, padding=2, pad_value=1),
        BatchNormSign(33),
        Flatten(),
        BinaryLinear(33 * 4, 64),
        BatchNormSign(64),
        BinaryLinear(64, 5, bias=True),
        input_shape=(1, 37),
    )


def counts_model() -> Sequential:
    """int8 first layer (stride 2), global sum, binary classifier on counts."""
    return Sequential(
        InputConv1d(3, 32, 5, stride=2, padding=2, weights="int8"),
        BatchNormSign(32),
        BinaryConv1d(32, 64, 3, pad_value=1),
        BatchNormSign(64),
        GlobalPool1d("sum"),
        BinaryLinear(64, 3, bias=True),
        input_shape=(3, 45),
    )


def gmax_model() -> Sequential:
    """int8 first layer, global max, int8 classifier on bits."""
    return Sequential(
        InputConv1d(2, 33, 3, weights="int8"),
        BatchNormSign(33),
        GlobalPool1d("max"),
        Int8Linear(33, 4),
        input_shape=(2, 29),
    )


MODELS = {"bits": bits_model, "counts": counts_model, "gmax": gmax_model}
MODELS.update({f"random{s}": (lambda s=s: random_model(s)) for s in range(4)})


@pytest.mark.parametrize("name", list(MODELS))
def test_qonnx_executor_gives_the_reference_scores(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MODELS[name]()
    c, t = model.input_shape
    x = signals(8, c, t, seed=5)
    calibrate(model, x, seed=5)
    x = np.concatenate([x, random_inputs(4, c, t, seed=5)])
    ops = check_export(model, x, tmp_path)
    assert {"MultiThreshold"} <= ops
    if name == "bits":
        assert "Conv" in ops and "Gather" not in ops  # the float32 form of the first layer


def test_earbud_demo_model(tmp_path: Path) -> None:
    """The demo's architecture (int8 first layer on 5 channels, 16/32/48/64), trained briefly
    on the demo's simulated users: its first layer's sums pass 2^24, so the graph computes it
    in double."""
    sys.path.insert(0, str(DEMO))
    import demo

    cfg = dataclasses.replace(demo.QUICK, users=(3, 1, 1), per_class=2, epochs=1,
                              widths=demo.FULL.widths, stream_s=1.0)  # fmt: skip
    paths = demo.make_data(cfg, tmp_path)
    out = tmp_path / "model.pt"
    tinybnn.train(paths["train"], out=out, epochs=1, widths=cfg.widths, first_weights="int8",
                  seed=0, progress=False, threads=1)  # fmt: skip
    model = tinybnn.load(out)
    x = np.load(paths["test"])["X"][:8]
    ops = check_export(model, x, tmp_path)
    assert "Gather" in ops and "MatMul" in ops


def test_export_command(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = counts_model()
    c, t = model.input_shape
    calibrate(model, signals(8, c, t, seed=1), seed=1)
    src = tmp_path / "m.pt"
    tinybnn.save(model, src)
    res = CliRunner().invoke(cli, ["export", str(src), str(tmp_path / "m.onnx")])
    assert res.exit_code == 0, res.output
    x = signals(4, c, t, seed=2)
    assert_exact("scores", qonnx_scores(tmp_path / "m.onnx", x), reference.run(lower(model), x))
    before = src.read_bytes()
    res = CliRunner().invoke(cli, ["export", str(src), str(src)])
    assert res.exit_code != 0 and src.read_bytes() == before
