"""The full-precision twin, distillation, augmentation in training, Bop, and the models they
train compiling bit-exactly (C == reference == PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import CLASS_NAMES, make_signals
from modelcheck import check_model, signals

from tinybnn.errors import TinyBNNError
from tinybnn.models import conv_classifier
from tinybnn.nn import BatchNormSign, Int8Linear
from tinybnn.training.augment import Augment
from tinybnn.training.bop import Bop, binary_weights
from tinybnn.training.data import Dataset
from tinybnn.training.distill import distill_loss
from tinybnn.training.train import evaluate, train, train_twin
from tinybnn.training.twin import FloatTwin

SMALL = dict(widths=(8, 16), kernel_size=5)
FAST = dict(epochs=15, batch_size=16, lr=2e-2, progress=False)


@pytest.fixture(scope="module")
def data():
    X, y = make_signals(seed=0, per_class=20, length=64)
    return Dataset(X, y, CLASS_NAMES)


@pytest.fixture(scope="module")
def twin(data):
    return train_twin(data, **FAST, **SMALL)


def test_twin_mirrors_the_layers_in_float(data):
    model = conv_classifier(6, 64, 3, CLASS_NAMES, **SMALL)
    t = FloatTwin(model)
    kinds = [type(m).__name__ for m in t.layers]
    assert kinds == [
        "Sequential",
        "MaxPool1d",
        "Sequential",
        "Conv1d",
        "MaxPool1d",
        "Sequential",
    ] + [
        "GlobalMean",
        "Linear",
    ]
    assert t(torch.tensor(data.X[:4], dtype=torch.float32)).shape == (4, 3)


def test_twin_learns(twin, data):
    assert isinstance(twin.model, FloatTwin)
    assert twin.val_accuracy >= 0.9
    assert evaluate(twin.model, data.X, data.y).accuracy >= 0.9


def test_distillation_loss():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert torch.equal(distill_loss(logits, y, None, 0.5, 4.0), ce)
    # a teacher that agrees exactly adds no KL term
    torch.testing.assert_close(distill_loss(logits, y, logits, 0.5, 4.0), 0.5 * ce)
    assert distill_loss(logits, y, -logits, 0.5, 4.0) > 0.5 * ce


def test_distilled_training_is_reproducible_and_learns(twin, data):
    kw = dict(teacher=twin, seed=1, **FAST, **SMALL)
    a = train(data, **kw)
    b = train(data, **kw)
    assert a.history == b.history
    assert a.val_accuracy >= 0.8
    assert a.teacher is twin


def test_teacher_twin_trains_the_twin_first(data):
    r = train(data, teacher="twin", seed=0, **{**FAST, "epochs": 3}, **SMALL)
    assert isinstance(r.teacher.model, FloatTwin)
    assert len(r.teacher.history) == 3


def test_augmented_training_is_deterministic_per_seed(data):
    def run(seed):
        return train(data, augment=Augment(seed=seed), seed=0, keep="last", **FAST, **SMALL).history

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_bop_flips_only_against_a_consistent_gradient():
    w = torch.nn.Parameter(torch.tensor([0.3, -0.2, 0.0, 1.0]))
    opt = Bop([w], threshold=0.5, gamma=1.0)
    assert w.tolist() == [1, -1, 1, 1]  # binarised on construction, sign(0) = +1
    w.grad = torch.tensor([1.0, 1.0, 0.1, -1.0])
    opt.step()
    # flip where |m| > 0.5 and m has w's sign (a gradient step would move w across zero)
    assert w.tolist() == [-1, -1, 1, 1]


def test_bop_trains_a_model_whose_binary_weights_stay_pm1(data):
    r = train(data, optimizer="bop", seed=0, **FAST, **SMALL)
    for p in binary_weights(r.model):
        assert set(p.unique().tolist()) <= {-1.0, 1.0}
    assert r.val_accuracy >= 0.6


def test_refusals(data, tmp_path):
    with pytest.raises(TinyBNNError, match="teacher must be"):
        train(data, teacher="big", **FAST)
    with pytest.raises(TinyBNNError, match="float twin has none"):
        train(data, twin=True, optimizer="bop", **FAST)
    with pytest.raises(TinyBNNError, match="optimizer='bop' trains binary weights; this model"):
        train(data, optimizer="bop", widths=(8, 16), precision=(8, 8, 8), **FAST)
    with pytest.raises(TinyBNNError, match="keep must be"):
        train(data, keep="first", **FAST)
    with pytest.raises(TinyBNNError, match="cannot be saved"):
        train(data, twin=True, out=tmp_path / "twin.pt", **FAST)
    assert list(tmp_path.iterdir()) == []


OPTIONS = [
    pytest.param(dict(learnable_threshold=True), dict(), id="rsign"),
    pytest.param(dict(scaling=True), dict(), id="scaling"),
    pytest.param(dict(first_weights="int8", head="int8"), dict(), id="int8_ends"),
    pytest.param(dict(head="binary"), dict(optimizer="bop"), id="bop_binary_head"),
    pytest.param(
        dict(learnable_threshold=True, scaling=True), dict(teacher="twin"), id="distilled"
    ),
    pytest.param(
        dict(), dict(augment=Augment(rotation=10, axes=[(0, 1, 2), (3, 4, 5)])), id="augmented"
    ),
]


@pytest.mark.parametrize("architecture, options", OPTIONS)
def test_trained_with_option_compiles_exactly(data, tmp_path, architecture, options):
    r = train(data, seed=0, **{**FAST, "epochs": 3}, widths=(8, 33), **architecture, **options)
    model = r.model
    layers = {type(m) for m in model.layers}
    assert BatchNormSign in layers
    assert (Int8Linear in layers) == (architecture.get("head", "int8") == "int8")
    check_model(model, [data.X[:16], signals(8, 6, 64, seed=5)], tmp_path)
    assert np.array_equal(
        model(torch.tensor(data.X[:16], dtype=torch.float64)).argmax(1).numpy(),
        model(torch.tensor(data.X[:16], dtype=torch.float32)).argmax(1).numpy(),
    )
