"""Precision per layer as data: `conv_classifier(precision=[...])`, the recipe override and
`tinybnn train --precision`, the kinds the model file records, and the bits column of
`tinybnn summary`."""

from __future__ import annotations

import pytest
import torch
from test_cli import assert_one_error_line, run

import tinybnn
from tinybnn.compiler.summary import summary
from tinybnn.errors import ModelError
from tinybnn.models import conv_classifier
from tinybnn.training.recipe import Recipe


def weighted(model) -> list[tuple[str, int]]:
    """(kind, bits per weight) of each layer that has weights, from the summary."""
    return [(r.kind, r.bits) for r in summary(model).rows if r.bits]


@pytest.mark.parametrize(
    "precision,want",
    [
        (
            [8, 1, 1, 8],
            [("input_conv1d", 8), ("binary_conv1d", 1), ("binary_conv1d", 1), ("int8_linear", 8)],
        ),
        (
            [1, 8, 1, 1],
            [("input_conv1d", 1), ("int8_conv1d", 8), ("binary_conv1d", 1), ("binary_linear", 1)],
        ),
        (
            [8, 8, 8, 8],
            [("input_conv1d", 8), ("int8_conv1d", 8), ("int8_conv1d", 8), ("int8_linear", 8)],
        ),
    ],
    ids=["8118", "1811", "8888"],
)
def test_precision_builds_the_kinds(precision, want):
    torch.manual_seed(0)
    model = conv_classifier(3, 40, 4, widths=(8, 16, 12), precision=precision)
    assert weighted(model) == want


def test_precision_overrides_first_weights_and_head():
    model = conv_classifier(3, 40, 4, widths=(8, 16), first_weights="binary", precision=[8, 8, 1])
    assert weighted(model) == [("input_conv1d", 8), ("int8_conv1d", 8), ("binary_linear", 1)]


@pytest.mark.parametrize(
    "precision", [[8, 1, 8], [8, 1, 1, 4], [8, 1, 1, True], [8, 1, 1, 8.0]], ids=str
)
def test_bad_precision_is_one_line(precision):
    with pytest.raises(ModelError) as e:
        conv_classifier(3, 40, 4, widths=(8, 16, 12), precision=precision)
    assert "precision must be 4 values of 1 or 8" in str(e.value) and "\n" not in str(e.value)


def test_recipe_takes_precision():
    recipe = Recipe().but(precision=(8, 8, 1, 8))
    assert recipe.architecture["precision"] == (8, 8, 1, 8)
    assert "precision=8,8,1,8" in recipe.why


def test_train_precision_then_summary(tmp_path, signals_npz, capsys):
    """The CLI option reaches the architecture; the model file records the int8 layer as its
    kind and config; summary shows the bits per layer."""
    out = tmp_path / "model.pt"
    tiny = ["--epochs", "2", "--widths", "8,16", "--batch-size", "16", "--no-progress"]
    status, _, err = run(capsys, "train", signals_npz, "-o", out, *tiny, "--precision", "1,8,8")
    assert (status, err) == (0, "")
    model = tinybnn.load(out)
    assert weighted(model) == [("input_conv1d", 1), ("int8_conv1d", 8), ("int8_linear", 8)]
    status, stdout, err = run(capsys, "summary", out)
    assert (status, err) == (0, "")
    header = next(line for line in stdout.splitlines() if "layer" in line and "bits" in line)
    row = next(line for line in stdout.splitlines() if "int8_conv1d" in line)
    assert row[header.index("bits") :].split()[0] == "8", (header, row)


def test_train_bad_precision_is_one_line(tmp_path, signals_npz, capsys):
    status, _, err = run(capsys, "train", signals_npz, "--precision", "8,1,1", "--no-progress")
    assert status != 0
    assert_one_error_line(err)
    assert "precision must be 4 values of 1 or 8" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signals.npz"]


def test_precision_8a8_builds_int8_activations():
    """'8a8': a hidden int8_conv1d with activation='int8' (no batchnorm_sign after it), read
    by the next int8 convolution, which pads with 0."""
    model = conv_classifier(3, 40, 4, widths=(8, 16, 12, 12), precision=[8, "8a8", "8a8", 8, 8])
    convs = [m for m in model.layers if m.kind == "int8_conv1d"]
    assert [(m.activation, m.pad_value) for m in convs] == [("int8", 1), ("int8", 0), ("none", 0)]
    assert [v.kind for v in model.values].count("i8") == 4  # two convs and their pools
    assert weighted(model)[1:3] == [("int8_conv1d", 8), ("int8_conv1d", 8)]


@pytest.mark.parametrize(
    "precision",
    [
        [8, "8a8", 1, 8, 8],
        [8, "1a8", 1, 8, 8],
        [8, "1a8", "1a8", 8, 8],
        ["8a8", 8, 8, 8, 8],
        ["1a8", 8, 8, 8, 8],
        [8, 8, 8, 8, "8a8"],
        [8, 1, 1, 1, "1a8"],
    ],
    ids=[
        "binary_after",
        "binary_after_1a8",
        "1a8_after_1a8",
        "first",
        "first_1a8",
        "head",
        "head_1a8",
    ],
)
def test_bad_8a8_is_one_line(precision):
    """int8 codes must go to an int8 convolution or, after the last, to the global sum
    pooling: not to a binary convolution, and the first layer and the head have no int8
    activations out."""
    with pytest.raises(ModelError) as e:
        conv_classifier(3, 40, 4, widths=(8, 16, 12, 12), precision=precision)
    assert "'8a8' / '1a8' for a hidden convolution with int8 activations out" in str(e.value)
    assert "\n" not in str(e.value)


def test_train_8a8_then_summary_and_compile(tmp_path, signals_npz, capsys):
    """--precision with 8a8 trains (fake quantisation, the calibrated range), the model file
    records the activation, summary shows the int8 activations, and the trained model's C
    equals the reference equals PyTorch."""
    from modelcheck import check_model

    out = tmp_path / "model.pt"
    tiny = ["--epochs", "2", "--widths", "8,16,8", "--batch-size", "16", "--no-progress"]
    status, _, err = run(capsys, "train", signals_npz, "-o", out, *tiny, "--precision", "8,8a8,8,8")
    assert (status, err) == (0, "")
    model = tinybnn.load(out)
    act = next(m for m in model.layers if m.kind == "int8_conv1d")
    assert act.config()["activation"] == "int8" and float(act.act_max) > 0
    status, stdout, err = run(capsys, "summary", out)
    assert (status, err) == (0, "")
    row = next(line for line in stdout.splitlines() if "int8 out" in line)
    assert "i8[16, " in row
    from tinybnn.training.data import load_dataset

    check_model(model, [load_dataset(signals_npz).X[:16]], tmp_path / "c")


def test_cli_refuses_bad_8a8_words(tmp_path, signals_npz, capsys):
    status, _, err = run(capsys, "train", signals_npz, "--precision", "8,8a4,8", "--no-progress")
    assert status != 0 and "8a8 / 1a8: int8 activations out of a hidden convolution" in err


@pytest.mark.parametrize("last", [8, "8a8", "1a8"])
def test_last_conv_is_the_last_convolution_of_precision(last):
    """last_conv sets the last convolution alone: the same model, draw for draw, as the
    precision that says so; the first layer and the head stay as first_weights and head say
    (ternary too, which precision cannot say)."""
    torch.manual_seed(0)
    a = conv_classifier(3, 40, 4, widths=(8, 33, 12), first_weights="int8", last_conv=last)
    torch.manual_seed(0)
    b = conv_classifier(3, 40, 4, widths=(8, 33, 12), precision=[8, 1, last, 8])
    assert weighted(a) == weighted(b)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    t = conv_classifier(3, 40, 4, widths=(8, 16), first_weights="ternary", last_conv=last)
    assert t.layers[0].config()["weights"] == "ternary"
    given = conv_classifier(3, 40, 4, widths=(8, 16), precision=[8, 1, 8], last_conv=last)
    assert weighted(given)[1] == ("binary_conv1d", 1)  # precision, when given, decides


@pytest.mark.parametrize(
    "widths, last", [((8,), "8a8"), ((8, 16), 4), ((8, 16), True), ((8, 16), "8a4")], ids=str
)
def test_bad_last_conv_is_one_line(widths, last):
    with pytest.raises(ModelError) as e:
        conv_classifier(3, 40, 4, widths=widths, last_conv=last)
    assert "last_conv must be 1, 8, '8a8' or '1a8' for the last of two or more" in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_last_conv(tmp_path, signals_npz, capsys):
    out = tmp_path / "model.pt"
    tiny = ["--epochs", "1", "--widths", "8,16", "--no-progress"]
    status, _, err = run(capsys, "train", signals_npz, "-o", out, *tiny, "--last-conv", "1")
    assert (status, err) == (0, "")
    assert [k for k, _ in weighted(tinybnn.load(out))] == [
        "input_conv1d", "binary_conv1d", "int8_linear"
    ]  # fmt: skip
    status, _, err = run(capsys, "train", signals_npz, *tiny, "--last-conv", "4")
    assert status != 0 and "'4' is not one of '1', '8', '8a8', '1a8'" in err
