"""Training: it learns, it is reproducible, it keeps the best epoch, it writes all or nothing."""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
import torch
from conftest import CLASS_NAMES, make_signals

import tinybnn
from tinybnn.errors import TinyBNNError
from tinybnn.models import conv_classifier
from tinybnn.training.data import Dataset, split
from tinybnn.training.train import evaluate, output_paths, train

# The module, not the function `tinybnn.train` that the package may export under that name.
training = importlib.import_module("tinybnn.training.train")

# Small and quick: ~0.5 s per run on two cores.
FAST = dict(epochs=10, lr=2e-2, val_fraction=0.2, progress=False)
SMALL = dict(widths=(16, 32))


@pytest.fixture(scope="module")
def signals():
    X, y = make_signals(seed=0)
    return Dataset(X, y, CLASS_NAMES)


@pytest.fixture(scope="module")
def trained(signals):
    return train(signals, **FAST, **SMALL)


def test_learns_the_separable_task(trained, signals):
    assert trained.val_accuracy > 0.95
    assert trained.confusion.sum() == len(split(signals, 0.2, seed=0)[1])
    assert not trained.model.training
    assert [s.epoch for s in trained.history] == list(range(1, 11))


def test_same_seed_gives_bit_identical_weights(trained, signals):
    again = train(signals, **FAST, **SMALL)
    a, b = trained.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    other = train(signals, **{**FAST, "seed": 1}, **SMALL).model.state_dict()
    assert not all(torch.equal(a[k], other[k]) for k in a)


def test_leaves_the_callers_torch_state_alone(signals):
    torch.manual_seed(123)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    train(signals, **{**FAST, "epochs": 1}, **SMALL)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_temperature_starts_logits_at_unit_std(signals, monkeypatch):
    seen = []
    real = training._init_temperature

    def spy(model, xb):
        real(model, xb)
        model.eval()
        seen.append(model.logits(model(xb)).std().item())
        model.train()

    monkeypatch.setattr(training, "_init_temperature", spy)
    train(signals, **{**FAST, "epochs": 1}, **SMALL)
    assert seen and 0.5 < seen[0] < 2  # eval mode differs a little from the batch statistics


def test_keeps_the_best_epoch_and_the_earlier_of_ties(signals, monkeypatch):
    """Script the validation accuracies; the model returned must be the one after epoch 2."""
    scripted = iter([0.5, 0.9, 0.7, 0.9, 0.6])
    states = []
    real = training.evaluate

    def fake_evaluate(model, X, y):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return training.Evaluation(next(scripted), real(model, X, y).confusion)

    monkeypatch.setattr(training, "evaluate", fake_evaluate)
    result = train(signals, **{**FAST, "epochs": 5}, **SMALL)
    assert result.best_epoch == 2 and result.val_accuracy == 0.9
    kept = result.model.state_dict()
    assert all(torch.equal(kept[k], states[1][k]) for k in kept)
    assert not all(torch.equal(kept[k], states[-1][k]) for k in kept)


def test_writes_model_and_plots_that_load(tmp_path, signals):
    out = tmp_path / "runs" / "m.pt"
    result = train(signals, out=out, **{**FAST, "epochs": 3}, **SMALL)
    assert (
        result.files
        == output_paths(out)
        == [
            out,
            tmp_path / "runs" / "m_curves.png",
            tmp_path / "runs" / "m_confusion.png",
        ]
    )
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(p.name for p in result.files)
    for png in result.files[1:]:
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    payload = torch.load(out, map_location="cpu", weights_only=True)
    assert payload["spec"]["class_names"] == CLASS_NAMES
    model = tinybnn.load(out)
    x = torch.from_numpy(signals.X).float()
    assert torch.equal(model(x), result.model(x))


def test_failed_output_leaves_nothing(tmp_path, signals, monkeypatch):
    def broken(result):
        raise RuntimeError("disk full")

    monkeypatch.setattr(training, "_confusion_png", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        train(signals, out=tmp_path / "m.pt", **{**FAST, "epochs": 1}, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_progress_prints_one_line_per_epoch(signals, capsys):
    train(signals, **{**FAST, "epochs": 3, "progress": True}, **SMALL)
    recipe, *lines = capsys.readouterr().err.splitlines()
    assert recipe.startswith("recipe: ") and "widths 16,32" in recipe
    assert "3 epochs of batch 32, lr 0.02; validation 20%, keep best" in recipe
    assert "overridden: epochs=3" in recipe
    assert len(lines) == 3 and lines[-1].startswith("epoch 3/3") and "val" in lines[-1]


def test_trains_a_given_model_on_given_validation_data(signals):
    train_set, val_set = split(signals, 0.25, seed=9)
    model = conv_classifier(6, 64, 3, CLASS_NAMES, widths=(8,), first_weights="int8")
    result = train(train_set, model, val_data=val_set, **{**FAST, "epochs": 2})
    assert result.model is model
    assert result.confusion.sum() == len(val_set)


@pytest.mark.parametrize(
    "model, options, message",
    [
        pytest.param(conv_classifier(6, 32, 3), {}, "has [C, T] = [6, 64]", id="length"),
        pytest.param(conv_classifier(6, 64, 2), {}, "has 3 classes, the model 2", id="classes"),
        pytest.param(conv_classifier(6, 64, 3), {}, "class names", id="names"),
        pytest.param(None, {"widths": ()}, "at least one width", id="no_widths"),
        pytest.param(None, {"epochs": 0}, "epochs", id="epochs"),
    ],
)
def test_refuses_what_cannot_train(signals, model, options, message):
    with pytest.raises(TinyBNNError, match=re.escape(message)):
        train(signals, model, **{**FAST, **options})


def test_refuses_an_output_path_that_is_a_directory(tmp_path, signals):
    with pytest.raises(TinyBNNError, match="is a directory"):
        train(signals, out=tmp_path, **FAST, **SMALL)


def test_evaluate_counts_and_restores_the_mode(trained, signals):
    trained.model.train()
    result = evaluate(trained.model, signals.X, signals.y)
    assert trained.model.training
    trained.model.eval()
    assert result.confusion.sum() == len(signals)
    assert result.accuracy == np.trace(result.confusion) / len(signals)


def test_refuses_a_single_class():
    X, y = make_signals(seed=0, per_class=4)
    with pytest.raises(TinyBNNError, match="needs two or more"):
        train(Dataset(X, np.zeros_like(y)), **FAST)
