"""`tinybnn importance`: each binary layer raised alone to int8 (the same latent weights),
fine-tuned as the unchanged model is, priced on a core under QEMU; the table, the plot, the
suggestion within a budget, and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import CLASS_NAMES
from test_cli import assert_one_error_line, run

import tinybnn
from tinybnn import firmware
from tinybnn.compiler.lowering import lower
from tinybnn.models import conv_classifier
from tinybnn.training.evaluate import c_check, scores
from tinybnn.training.importance import (
    Change,
    Importance,
    activation_raisable,
    importance,
    raisable,
    raised,
    raised_activations,
)

try:
    firmware.find_toolchain()
    HAVE_FIRMWARE = True
except firmware.ToolchainMissing:
    HAVE_FIRMWARE = False


def small_model(names=None):
    torch.manual_seed(0)
    return conv_classifier(6, 64, 3, names, widths=(8, 16), head="binary", precision=None)


def test_raised_keeps_the_latent_weights():
    model = small_model()
    assert raisable(model) == [0, 3, 7]  # input_conv1d, binary_conv1d, binary_linear
    for i in raisable(model):
        up = raised(model, i)
        assert up.layers[i].kind in ("input_conv1d", "int8_conv1d", "int8_linear")
        assert not up.layers[i].binary_weights
        assert torch.equal(up.layers[i].weight, model.layers[i].weight)
        assert [m.kind for j, m in enumerate(up.layers) if j != i] == [
            m.kind for j, m in enumerate(model.layers) if j != i
        ]
        lower(up)  # it compiles
    assert model.layers[3].kind == "binary_conv1d"  # the original is untouched


def test_signs_into_the_global_pool_can_become_int8_codes():
    model = small_model()
    assert activation_raisable(model) == [3]  # its signs go to the global sum pooling
    up = raised_activations(model, 3)
    assert [m.kind for m in up.layers] == [
        "input_conv1d",
        "maxpool1d",
        "batchnorm_sign",
        "binary_conv1d",  # now with int8 codes out, its BatchNorm inside
        "maxpool1d",
        "global_pool1d",
        "binary_linear",
    ]
    conv = up.layers[3]
    assert (conv.activation, conv.binary_weights) == ("int8", True)
    assert torch.equal(conv.weight, model.layers[3].weight)
    assert torch.equal(conv.bn.weight, model.layers[5].bn.weight)
    assert model.layers[3].activation == "none"  # the original is untouched
    up.train()
    up(torch.randn(16, 6, 64) * 1000)  # statistics and the codes' range, as a fine-tune would
    up.eval()
    x = np.random.default_rng(0).integers(-3000, 3000, (20, 6, 64)).astype(np.int16)
    assert c_check(up, x, scores(up, x)).exact  # the host C gives PyTorch's scores
    # signs that go on to another binary convolution stay signs
    deeper = conv_classifier(6, 64, 3, widths=(8, 16, 16), precision=None)
    assert activation_raisable(deeper) == [6]


def test_signs_into_the_global_pool_can_become_int8_codes_of_int8_weights():
    """The "8a8" raise: int8 codes of the same latent weights, int8 codes out."""
    model = small_model()
    up = raised_activations(model, 3, weights=True)
    conv = up.layers[3]
    assert (conv.kind, conv.activation, conv.binary_weights) == ("int8_conv1d", "int8", False)
    assert torch.equal(conv.weight, model.layers[3].weight)
    assert torch.equal(conv.bn.running_mean, model.layers[5].bn.running_mean)
    assert [m.kind for m in up.layers][4:] == ["maxpool1d", "global_pool1d", "binary_linear"]
    up.train()
    up(torch.randn(16, 6, 64) * 1000)
    up.eval()
    x = np.random.default_rng(1).integers(-3000, 3000, (20, 6, 64)).astype(np.int16)
    assert c_check(up, x, scores(up, x)).exact


def test_retrain_trains_every_model_with_the_default_recipe(monkeypatch, signals_npz):
    """epochs=None: no epochs or lr reach `train` (the recipe's own), for the unchanged model
    and every change alike, and the table says how they were trained."""
    from tinybnn.training import train as train_module

    calls = []
    real = train_module.train

    def spy(data, model=None, **options):
        calls.append({k: options.get(k) for k in ("epochs", "lr")})
        return real(data, model, **{**options, "epochs": 1})  # one epoch keeps the test short

    monkeypatch.setattr(train_module, "train", spy)
    monkeypatch.setattr("tinybnn.training.importance._measure", lambda m, core: (1000, 1000))
    model = small_model(CLASS_NAMES)
    result = importance(model, signals_npz, val_data=signals_npz, epochs=None, activations=True)
    assert calls == [{"epochs": None, "lr": None}] * 6  # unchanged, 3 weights, 1a8, 8a8
    assert [c.how for c in result.changes] == [
        *["weights"] * 3,
        "activations",
        "weights and activations",
    ]
    assert result.changes[-1].what == "layer 3 (binary_conv1d) weights and activations -> int8"
    for c in [result.base, *result.changes]:  # each keeps its model; apply makes it again
        assert [m.kind for m in c.model.layers] == [m.kind for m in c.apply(model).layers]
    assert "then trained with the default recipe; accuracy on validation data" in result.format()
    assert model.layers[3].kind == "binary_conv1d"  # the original is untouched


def change(i, acc, flash, instr):
    return Change(i, f"layer {i}", acc, flash, instr)


def test_suggestion_within_budgets():
    base = change(None, 0.80, 10_000, 100_000)
    changes = [
        change(0, 0.90, 13_000, 150_000),  # +10 points, +3,000 B
        change(3, 0.86, 11_000, 300_000),  # +6 points, +1,000 B, many instructions
        change(7, 0.78, 10_500, 101_000),  # loses accuracy
    ]
    r = Importance(base, changes, "cortex-m4", "the training data")
    assert r.suggestion().layer == 0
    assert r.gain(changes[1]) == pytest.approx(6.0)
    assert Importance(base, changes, "m", "d", flash_budget=2000).suggestion().layer == 3
    both = Importance(base, changes, "m", "d", flash_budget=2000, instruction_budget=100_000)
    assert both.suggestion() is None
    assert "no single change gains accuracy within" in both.format()
    table = r.format()
    assert "+3,000" in table and "+3.41" in table  # 10 points per 3,000 B = 3.41 per KB


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
def test_importance_command(tmp_path, signals_npz, capsys):
    out = tmp_path / "model.pt"
    tiny = ["--epochs", "2", "--widths", "8,16", "--batch-size", "16", "--no-progress"]
    status, _, err = run(capsys, "train", signals_npz, "-o", out, *tiny, "--precision", "1,1,1")
    assert (status, err) == (0, "")
    before = out.read_bytes()
    status, stdout, err = run(
        capsys, "importance", out, signals_npz, "--epochs", "1", "--flash-budget", "100000"
    )
    assert (status, err) == (0, ""), err
    lines = stdout.splitlines()
    for kind in ("input_conv1d", "binary_conv1d", "binary_linear"):
        assert any(kind in line and "-> int8" in line for line in lines), stdout
    assert not any("activations" in line for line in lines)  # only with --activations
    status, stdout, err = run(
        capsys,
        "importance",
        out,
        signals_npz,
        "--epochs",
        "1",
        "--folds",
        "2",
        "--activations",
        "--repeats",
        "2",
    )
    assert (status, err) == (0, ""), err
    assert "accuracy on 2-fold cross-validation of the training data, mean of 2 seeds" in stdout
    assert "weights and activations -> int8" in stdout
    assert "costs on cortex-m4 under QEMU" in stdout
    assert lines[-2].startswith(("suggested within flash budget +B 100,000", "no single change"))
    png = tmp_path / "model_importance.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.read_bytes() == before  # the model file is not changed
    assert tinybnn.load(out).layers[3].kind == "binary_conv1d"


def test_importance_refusals(tmp_path, signals_npz, capsys):
    model = tmp_path / "m.pt"
    tinybnn.save(conv_classifier(6, 64, 3, widths=(8,), precision=[8, 8]), model)
    status, _, err = run(capsys, "importance", model, signals_npz, "--epochs", "1")
    assert status == 1
    assert_one_error_line(err)
    assert f"{model}: the model has no binary layer to raise to int8" in err
    trained = tmp_path / "b.pt"
    tinybnn.save(conv_classifier(6, 64, 3, widths=(8,), precision=[8, 1]), trained)
    status, _, err = run(capsys, "importance", trained, signals_npz, "--retrain")
    assert status == 1
    assert_one_error_line(err)
    assert "score on validation data (val_data, --val-data) or by cross-validation" in err
    status, _, err = run(capsys, "importance", model, signals_npz, "-o", signals_npz)
    assert status == 1
    assert_one_error_line(err)
    assert np.load(signals_npz)["X"].shape[0] > 0  # still the data


def test_cross_validation_scores_every_window_once(monkeypatch, signals_npz):
    """folds=k: each model trained k times on all but one fold, every window scored once as
    held out; the folds are stratified and cover the data exactly."""
    from tinybnn.training.data import folds, load_dataset

    data = load_dataset(signals_npz)
    parts = folds(data, 3, seed=0)
    held = np.concatenate([h.X for _, h in parts])
    assert sorted(map(bytes, held)) == sorted(map(bytes, data.X))  # each window once
    assert np.bincount(data.y).tolist() == [60, 60, 60]
    for fit, h in parts:
        assert (len(fit), len(h)) == (120, 60)
        assert np.bincount(h.y).tolist() == [20, 20, 20]  # stratified
    assert [h.y.tolist() for _, h in folds(data, 3, 0)] == [h.y.tolist() for _, h in parts]
    from tinybnn.training import importance as importance_module

    sizes, tuned = [], []
    real = importance_module._fine_tune

    def spy(model, part, epochs, lr, seed):
        sizes.append(len(part))
        tuned.append(real(model, part, epochs, lr, seed))
        return tuned[-1]

    monkeypatch.setattr(importance_module, "_fine_tune", spy)
    monkeypatch.setattr(importance_module, "_measure", lambda m, core: (1000, 1000))
    result = importance(small_model(CLASS_NAMES), data, folds=3, epochs=1)
    assert sizes == [len(f) for f, _ in parts] * (1 + len(result.changes))
    assert result.scored_on == "3-fold cross-validation of the training data"
    assert all(c.model is None for c in [result.base, *result.changes])
    for n, c in enumerate([result.base, *result.changes]):  # every window once, held out
        models = tuned[3 * n : 3 * n + 3]
        right = sum(
            importance_module._correct(m, h) for m, (_, h) in zip(models, parts, strict=True)
        )
        assert c.accuracy == right / len(data)
    with pytest.raises(tinybnn.TinyBNNError, match="not both"):
        importance(small_model(), data, val_data=data, folds=3)
    with pytest.raises(tinybnn.TinyBNNError, match="2 to 180 folds, not 1"):
        folds(data, 1, 0)
    with pytest.raises(tinybnn.TinyBNNError, match="full-recipe training fits the training data"):
        importance(small_model(), data, epochs=None)  # would score models on what they fitted


def test_repeats_average_the_score_over_seeds(monkeypatch, signals_npz):
    """repeats=n: every model trained n times, seeds seed .. seed+n-1, on the same folds;
    its accuracy is the mean of the n scores, and the first seed's model is kept."""
    from tinybnn.training import importance as importance_module
    from tinybnn.training.data import load_dataset

    data = load_dataset(signals_npz)
    seeds, tuned = [], []
    real = importance_module._fine_tune

    def spy(model, part, epochs, lr, seed):
        seeds.append(seed)
        tuned.append(real(model, part, epochs, lr, seed))
        return tuned[-1]

    monkeypatch.setattr(importance_module, "_fine_tune", spy)
    monkeypatch.setattr(importance_module, "_measure", lambda m, core: (1000, 1000))
    result = importance(small_model(CLASS_NAMES), data, val_data=data, epochs=1, seed=5, repeats=2)
    n = 1 + len(result.changes)
    assert seeds == [5, 6] * n
    for k, c in enumerate([result.base, *result.changes]):
        first, second = tuned[2 * k : 2 * k + 2]
        right = importance_module._correct(first, data) + importance_module._correct(second, data)
        assert c.accuracy == right / (2 * len(data))
        assert c.model is first
    assert result.scored_on == "validation data, mean of 2 seeds"
    assert "mean of 2 seeds" in result.format()
    once = importance(small_model(CLASS_NAMES), data, val_data=data, epochs=1, seed=5)
    assert seeds[2 * n :] == [5] * n  # repeats=1: one training per model, as before
    assert once.base.accuracy == importance_module._correct(tuned[2 * n], data) / len(data)
    with pytest.raises(tinybnn.TinyBNNError, match="repeats must be at least 1, not 0"):
        importance(small_model(), data, val_data=data, repeats=0)
