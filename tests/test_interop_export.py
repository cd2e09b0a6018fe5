"""`tinybnn export`: tinybnn models as QONNX graphs, run by the `qonnx` package's own
executor (`qonnx.core.onnx_exec.execute_onnx`), give the integer reference's scores exactly:
on every layer kind, shapes that straddle 32-bit words, both forms of the first layer
(float32 `Conv`; windows times weights in double when its sums pass 2^24), the int8 hidden
convolutions (bits or int8 codes in, bits or int8 codes out, both forms), the requantisation
as a MultiThreshold at every boundary, and the earbud demo's architecture.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from modelcheck import assert_exact, calibrate, calibrate_codes, random_inputs, signals
from test_compile import random_model

pytest.importorskip("onnx")
pytest.importorskip("qonnx")

from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.transformation.infer_shapes import InferShapes  # noqa: E402

import tinybnn  # noqa: E402
from tinybnn.cli import tinybnn as cli  # noqa: E402
from tinybnn.compiler import reference  # noqa: E402
from tinybnn.compiler.contract import fold_requant  # noqa: E402
from tinybnn.compiler.lowering import lower  # noqa: E402
from tinybnn.errors import ModelError  # noqa: E402
from tinybnn.interop.qonnx_export import export, requant_thresholds  # noqa: E402
from tinybnn.models import conv_classifier  # noqa: E402
from tinybnn.nn import (  # noqa: E402
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    Flatten,
    GlobalPool1d,
    InputConv1d,
    Int8Conv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)
from tinybnn.ops.binary_conv import BinConvCodes  # noqa: E402

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


def precision_model(precision, **options):
    """conv_classifier on shapes that straddle 32-bit words (8, 33, 40 channels), pooled by
    2 after every convolution (after the codes too) unless options say otherwise."""
    return lambda: conv_classifier(1, 37, 3, widths=(8, 33, 40), precision=precision, **options)


def signed_codes_model() -> Sequential:
    """Codes in [-128, 127] (no ReLU) from a binary convolution, max-pooled 3 / 2, read by an
    int8 convolution with codes out (8a8 -> 8a8, stride 2), whose codes a global sum adds."""
    return Sequential(
        InputConv1d(2, 31, 3, padding=1, weights="int8"),
        BatchNormSign(31),
        BinaryConv1d(31, 33, 3, padding=1, pad_value=-1, activation="int8", relu=False),
        MaxPool1d(3, 2),
        Int8Conv1d(33, 17, 5, stride=2, padding=2, pad_value=0, activation="int8", relu=False),
        GlobalPool1d("sum"),
        BinaryLinear(17, 4, bias=True),
        input_shape=(2, 41),
    )


def double_model(codes_out: bool):
    """An int8 convolution on codes whose weights are all +-127 over 3 x 352 inputs:
    127 * 127 * 1056 >= 2^24, so the graph computes it in double (windows times weights),
    with codes or bits out."""

    def build() -> Sequential:
        act = dict(activation="int8", relu=False) if codes_out else {}
        wide = Int8Conv1d(352, 9, 3, padding=1, pad_value=0, **act)
        with torch.no_grad():
            wide.weight.copy_(torch.randint(0, 2, wide.weight.shape) * 2.0 - 1)
        after = [MaxPool1d(2), Int8Conv1d(9, 5, 3, pad_value=0)] if codes_out else []
        return Sequential(
            InputConv1d(2, 16, 3, weights="int8"),
            BatchNormSign(16),
            BinaryConv1d(16, 352, 3, padding=1, activation="int8"),
            wide,
            *after,
            BatchNormSign(9 if not codes_out else 5),
            GlobalPool1d("sum"),
            Int8Linear(9 if not codes_out else 5, 3),
            input_shape=(2, 21),
        )

    return build


MODELS = {"bits": bits_model, "counts": counts_model, "gmax": gmax_model}
MODELS.update({f"random{s}": (lambda s=s: random_model(s)) for s in range(4)})
# The int8 hidden-convolution stages each model lowers to (the others: none), so that the
# export test covers every one of them.
INT8_STAGE_KINDS = ("Int8Conv", "Int8ActConv", "BinConvCodes", "GlobalSumCodes")
INT8_STAGES = {
    "p8_1_8a8_8": {"Int8ActConv", "GlobalSumCodes"},
    "p8_1_8_8": {"Int8Conv"},
    "p8_8a8_8_8": {"Int8ActConv"},
    "p8_1_1a8_8": {"BinConvCodes", "GlobalSumCodes"},
    "p8_1_8a8_8_nopool": {"Int8ActConv", "GlobalSumCodes"},
    "p8_8a8_8_8_valid": {"Int8ActConv"},
    "p8_1a8_8a8_8_valid": {"BinConvCodes", "Int8ActConv", "GlobalSumCodes"},
    "signed_codes": {"BinConvCodes", "Int8ActConv", "GlobalSumCodes"},
    "double_codes": {"BinConvCodes", "Int8ActConv"},
    "double_bits": {"BinConvCodes", "Int8ActConv"},
}

MODELS.update(
    {
        "p8_1_8a8_8": precision_model([8, 1, "8a8", 8]),
        "p8_1_8_8": precision_model([8, 1, 8, 8]),
        "p8_8a8_8_8": precision_model([8, "8a8", 8, 8]),
        "p8_1_1a8_8": precision_model([8, 1, "1a8", 8]),
        "p8_1_8a8_8_nopool": precision_model([8, 1, "8a8", 8], pool=1),
        "p8_8a8_8_8_valid": precision_model([8, "8a8", 8, 8], padding="valid"),
        "p8_1a8_8a8_8_valid": precision_model([8, "1a8", "8a8", 8], padding="valid"),
        "signed_codes": signed_codes_model,
        "double_codes": double_model(True),
        "double_bits": double_model(False),
    }
)


@pytest.mark.parametrize("name", list(MODELS))
def test_qonnx_executor_gives_the_reference_scores(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MODELS[name]()
    c, t = model.input_shape
    x = signals(8, c, t, seed=5)
    calibrate_codes(model, x, seed=5)
    x = np.concatenate([x, random_inputs(4, c, t, seed=5)])
    ops = check_export(model, x, tmp_path)
    assert {"MultiThreshold"} <= ops
    if name == "bits":
        assert "Conv" in ops and "Gather" not in ops  # the float32 form of the first layer
    if name.startswith("double"):  # the wide int8 conv as windows times weights, in double
        inits = ModelWrapper(str(tmp_path / "model.onnx")).graph.initializer
        assert any(list(i.dims) == [3 * 352, 9] and i.data_type == 11 for i in inits)
    kinds = {type(st).__name__ for st in lower(model).stages}
    assert kinds & set(INT8_STAGE_KINDS) == INT8_STAGES.get(name, set())


def brute_force_boundaries(rq, bound: int) -> int:
    """The direction Mul and the MultiThreshold (qonnx's own function, in float32, or in
    double where the bound reaches 2^24, as the graph computes them) against the reference requantisation, per channel, at every
    threshold value - 1, value and value + 1 and at +-bound; the number of points checked."""
    from qonnx.custom_op.general.multithreshold import multithreshold

    dirs, rows = requant_thresholds(rq, bound)
    dtype = np.float32 if bound < 2**24 else np.float64
    checked = 0
    for ch, (d, row) in enumerate(zip(dirs, rows, strict=True)):
        assert len(row) == rq.hi - rq.lo and row == sorted(row)
        pts = sorted({p for v in row for p in (v - 1, v, v + 1)} | {-bound, bound})
        acc = np.array([d * p for p in pts if -bound <= p <= bound], dtype=np.int64)
        th = np.array([row], dtype=dtype)
        assert (th.astype(np.int64) == np.array([row])).all()  # exact in the graph's type
        got = multithreshold((d * acc).astype(dtype)[:, None], th) + rq.lo
        want = rq.codes(acc[:, None] * np.ones(len(rq.mult), np.int64))[:, ch]
        assert_exact(f"channel {ch} codes", got[:, 0].astype(np.int64), want)
        checked += len(acc)
    return checked


@pytest.mark.parametrize("lo,hi", [(0, 127), (-128, 127)])
def test_requantisation_thresholds_at_every_boundary(lo: int, hi: int) -> None:
    """Multipliers of both signs, zero, tiny and huge, offsets in and far out of the code
    range, accumulator bounds from 1 to 2^24 - 1: the 127 (255) thresholds per channel give
    the reference's codes at and beside every boundary."""
    rng = np.random.default_rng(hi - lo)
    scale = np.concatenate(
        [rng.normal(0, 1, 24), rng.normal(0, 1e-4, 8), [0.0, -0.0, 3e-7, -3e-7, 50.0, -50.0]]
    )
    offset = np.concatenate([rng.normal(0, 60, 32), [0.0, 10.5, -300.0, 300.0, 127.4, -0.5]])
    checked = 0
    for bound in (1, 37, 127 * 3 * 33, 128 * 127 * 3 * 40, 2**24 - 1):
        rq = fold_requant(scale, offset, lo, hi, bound, 24, "test")
        assert (rq.mult < 0).any() and (rq.mult == 0).any() and (rq.mult > 0).any()
        checked += brute_force_boundaries(rq, bound)
    assert checked > 10000


def test_requantisation_thresholds_of_calibrated_models() -> None:
    """The same on every codes-out stage of the models above, at its accumulator bound."""
    for name in ("p8_1_8a8_8", "p8_8a8_8_8", "p8_1_1a8_8", "signed_codes", "double_codes"):
        torch.manual_seed(0)
        model = MODELS[name]()
        c, t = model.input_shape
        calibrate_codes(model, signals(8, c, t, seed=5), seed=5)
        for st in lower(model).stages:
            if getattr(st, "requant", None) is not None:
                bound = st.k_bits if isinstance(st, BinConvCodes) else st.acc_bound
                assert brute_force_boundaries(st.requant, bound) > 0


def test_trained_8a8_model(tmp_path: Path, signals_npz: Path) -> None:
    """A model trained by `tinybnn.train` with precision [8, 1, "8a8", 8] exports exactly."""
    result = tinybnn.train(signals_npz, precision=[8, 1, "8a8", 8], epochs=1, seed=0,
                           progress=False, threads=1)  # fmt: skip
    model = result.model
    assert "Int8ActConv" in {type(st).__name__ for st in lower(model).stages}
    c, t = model.input_shape
    x = np.concatenate([np.load(signals_npz)["X"][:8], random_inputs(4, c, t, seed=3)])
    check_export(model, x, tmp_path)


def test_unsupported_stages_are_refused_in_one_line(tmp_path: Path) -> None:
    """A shortcut's integer sums have no QONNX form here: one line naming the layer."""
    torch.manual_seed(0)
    model = conv_classifier(1, 37, 3, widths=(8, 16, 16), shortcuts=True).eval()
    with pytest.raises(ModelError) as e:
        export(model, tmp_path / "m.onnx")
    text = str(e.value)
    assert text.startswith("layer ") and "has no QONNX form" in text and "\n" not in text
    assert not (tmp_path / "m.onnx").exists()


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
