"""`tinybnn evaluate`: accuracy, per-class accuracy and the confusion PNG of a model on a data
set, and the check that the compiled C predicts PyTorch's scores on every window."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import CLASS_NAMES, make_signals

import tinybnn
from tinybnn.cli import main
from tinybnn.firmware import host
from tinybnn.models import conv_classifier
from tinybnn.training.data import Dataset, save_dataset
from tinybnn.training.evaluate import evaluate_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small trained model and a test set of other windows."""
    d = tmp_path_factory.mktemp("evaluate")
    X, y = make_signals(seed=0, per_class=20, length=32)
    test = d / "test.npz"
    save_dataset(test, *make_signals(seed=1, per_class=10, length=32), class_names=CLASS_NAMES)
    model = conv_classifier(6, 32, 3, CLASS_NAMES, widths=(8, 16))
    tinybnn.train(
        Dataset(X, y, CLASS_NAMES),
        model,
        epochs=3,
        progress=False,
    )
    path = d / "model.pt"
    tinybnn.save(model, path)
    return path, test


def test_accuracy_and_confusion_are_pytorchs(files, tmp_path):
    path, test = files
    png = tmp_path / "c.png"
    report = evaluate_file(path, test, png, check_c=True)
    model = tinybnn.load(path)
    data = np.load(test)
    with torch.no_grad():
        pred = model(torch.tensor(data["X"], dtype=torch.float32)).argmax(1).numpy()
    assert report.windows == len(data["y"]) == 30
    assert report.accuracy == float((pred == data["y"]).mean())
    for k, (name, acc, n) in enumerate(report.per_class()):
        assert (name, n) == (CLASS_NAMES[k], 10)
        assert acc == float((pred[data["y"] == k] == k).mean())
    assert report.c_check.exact and report.c_check.windows == 30
    assert png.read_bytes().startswith(b"\x89PNG")


def test_the_c_check_catches_a_difference(files, tmp_path, monkeypatch, capsys):
    path, test = files
    run = host.run

    def off_by_one(exe, x, k):
        s, c = run(exe, x, k)
        s[7, 1] += 1
        return s, c

    monkeypatch.setattr(host, "run", off_by_one)
    status = main(["evaluate", str(path), str(test), "--check-c", "-o", str(tmp_path / "c.png")])
    out, err = capsys.readouterr()
    assert status == 1
    assert "DIFFERENT scores on 1 of 30 windows (first: window 7)" in out
    assert err.strip().startswith("error: the compiled C differs") and "\n" not in err.strip()


def test_cli_prints_the_report_and_writes_the_png(files, capsys):
    path, test = files
    assert main(["evaluate", str(path), str(test)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model.pt on test.npz: 30 windows, accuracy ")
    assert "per class: sine " in out
    png = path.with_name("model_test_confusion.png")
    assert png.is_file() and f"wrote {png}" in out


@pytest.mark.parametrize(
    "case, fragment",
    [
        pytest.param("other_shape", "has [C, T] = [6, 40]", id="other_shape"),
        pytest.param("other_names", "class names", id="other_names"),
        pytest.param("png_is_input", "is the data file", id="png_is_input"),
    ],
)
def test_bad_input_is_one_line(files, tmp_path, capsys, case, fragment):
    path, test = files
    args = ["evaluate", str(path), str(test), "-o", str(tmp_path / "c.png")]
    if case == "other_shape":
        other = tmp_path / "other.npz"
        save_dataset(other, *make_signals(seed=2, per_class=2, length=40), class_names=CLASS_NAMES)
        args[2] = str(other)
    elif case == "other_names":
        other = tmp_path / "other.npz"
        save_dataset(
            other, *make_signals(seed=2, per_class=2, length=32), class_names=["a", "b", "c"]
        )
        args[2] = str(other)
    else:
        args[-1] = str(test)
    before = test.read_bytes()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err and err.startswith("error: ")
    assert test.read_bytes() == before
