"""The default recipe: chosen from the data, said in one line, every choice overridable."""

from __future__ import annotations

import pytest
import torch
from conftest import CLASS_NAMES, make_signals

import tinybnn
from tinybnn.compiler.summary import summary
from tinybnn.errors import ModelError, TinyBNNError
from tinybnn.models import conv_classifier
from tinybnn.training.data import Dataset
from tinybnn.training.recipe import (
    AUGMENT_BELOW,
    DROPOUT,
    FEW_PER_CLASS,
    FLASH_BUDGET,
    LAST_CONV,
    MIN_EPOCHS,
    STEPS,
    Recipe,
    default_recipe,
    flash_bytes,
)


@pytest.mark.parametrize(
    "windows, length, epochs",
    [
        pytest.param(40, 100, 1000, id="40_windows_2_steps_per_epoch"),
        pytest.param(390, 300, 154, id="390_windows"),
        pytest.param(8926, 96, MIN_EPOCHS, id="8926_windows"),
    ],
)
def test_small_sets_get_a_budget_of_steps_large_ones_epochs(windows, length, epochs):
    r = default_recipe(windows, 1, length, 4)
    assert r.epochs == epochs
    steps = -(-windows // r.batch_size) * r.epochs
    assert steps >= STEPS
    assert (r.val_fraction, r.keep) == (0.0, "last")
    assert f"{windows} windows: {epochs} epochs" in r.why


@pytest.mark.parametrize("windows", [30, AUGMENT_BELOW - 1, AUGMENT_BELOW, 8926])
def test_small_sets_are_augmented_and_say_so(windows):
    r = default_recipe(windows, 1, 128, 3)
    assert r.augment == (windows < AUGMENT_BELOW)
    assert ("jitter, gain and time shift" in r.why) == r.augment
    assert not r.but(augment=False).augment


@pytest.mark.parametrize(
    "windows, classes",
    [(208, 26), (FEW_PER_CLASS * 4 - 1, 4), (FEW_PER_CLASS * 4, 4), (30, 3), (8926, 7)],
)
def test_few_windows_per_class_drop_out_before_the_classifier_and_say_so(windows, classes):
    r = default_recipe(windows, 1, 128, classes)
    few = windows < FEW_PER_CLASS * classes
    assert r.dropout == (DROPOUT if few else 0.0)
    assert ("windows per class: dropout" in r.why) == few
    assert ("dropout 0.2 before the classifier" in r.describe()) == few
    assert r.but(dropout=0.0).dropout == 0.0
    with pytest.raises(TinyBNNError, match=r"dropout must be in \[0, 1\)"):
        r.but(dropout=1.0)


@pytest.mark.parametrize("length, pool", [(127, 2), (128, 4), (300, 4), (999, 4), (1000, 8)])
def test_long_windows_pool_further_and_say_so(length, pool):
    r = default_recipe(100, 1, length, 12)
    assert r.architecture.get("pool", 2) == pool
    assert (f"pool {pool} and a first kernel of 9" in r.why) == (pool > 2)


def test_the_architecture_fits_the_flash_budget():
    r = default_recipe(40, 6, 100, 4, flash_budget=2000)
    assert flash_bytes(r.architecture, 6, 100, 4) <= 2000 < flash_bytes({}, 6, 100, 4)
    assert "to fit 2000 B" in r.why
    with pytest.raises(TinyBNNError, match="raise --flash-budget"):
        default_recipe(40, 6, 100, 4, flash_budget=100)


def test_overrides_replace_one_choice_and_say_so():
    r = default_recipe(40, 6, 100, 4).but(epochs=7, widths=(8, 16), teacher="twin")
    assert (r.epochs, r.architecture["widths"], r.teacher) == (7, (8, 16), "twin")
    assert r.why.endswith("overridden: epochs=7, widths=8,16, teacher=twin")
    assert "teacher twin" in r.describe()
    with pytest.raises(TinyBNNError, match="unknown training option 'epoch'"):
        r.but(epoch=3)
    with pytest.raises(TinyBNNError, match="keep must be"):
        r.but(keep="first")


@pytest.fixture(scope="module")
def signals():
    return Dataset(*make_signals(seed=0, per_class=10, length=32), CLASS_NAMES)


def test_train_without_a_split_keeps_the_last_epoch(signals):
    result = tinybnn.train(signals, epochs=3, widths=(8,), progress=False)
    assert (result.recipe.val_fraction, result.recipe.keep, result.validated) == (
        0.0,
        "last",
        False,
    )
    assert result.best_epoch == 3 and result.confusion.sum() == len(signals)


@pytest.mark.parametrize("twin", [False, True])
def test_dropout_acts_while_training_and_leaves_the_model_as_it_was(signals, twin):
    runs = [
        tinybnn.train(signals, epochs=2, widths=(8,), progress=False, twin=twin, dropout=p)
        for p in (0.0, 0.5, 0.5)
    ]
    weights = [r.model.layers[-1].weight.detach() for r in runs]
    assert not torch.equal(weights[0], weights[1])  # it acted
    assert torch.equal(weights[1], weights[2])  # seeded like the rest
    assert not runs[1].model.layers[-1]._forward_pre_hooks  # gone after training: the model,
    # its file and its C are those of the layers alone


def test_validation_data_picks_the_best_epoch(signals):
    result = tinybnn.train(signals, val_data=signals, epochs=3, widths=(8,), progress=False)
    assert result.recipe.keep == "best" and result.validated


def test_keeping_the_best_epoch_needs_validation_data(signals):
    with pytest.raises(TinyBNNError, match="keep='best' needs validation data"):
        tinybnn.train(signals, keep="best", epochs=1, progress=False)


def test_a_recipe_object_is_used_as_given(signals):
    recipe = Recipe(epochs=2, lr=0.01, architecture=dict(widths=(8,)))
    result = tinybnn.train(signals, recipe=recipe, progress=False)
    assert result.recipe == recipe and len(result.history) == 2


def test_cli_prints_what_it_chose(signals, tmp_path, capsys):
    from tinybnn.cli import main
    from tinybnn.training.data import save_dataset

    data = tmp_path / "d.npz"
    save_dataset(data, signals.X, signals.y, CLASS_NAMES)
    out = str(tmp_path / "m.pt")
    assert main(["train", str(data), "-o", out, "--epochs", "2", "--dropout", "0.3"]) == 0
    captured = capsys.readouterr()
    first = captured.err.splitlines()[0]
    assert first.startswith(
        "recipe: first_weights int8, last_conv 8a8, codes_into_last True, widths 32,64,63; "
        "2 epochs of batch 32"
    )
    assert "dropout 0.3 before the classifier" in first
    assert "overridden: epochs=2, dropout=0.3" in first
    assert "last epoch 2/2: training-set accuracy (eval mode)" in captured.out


def test_int8_first_layer_unless_it_takes_a_quarter_of_the_flash():
    assert default_recipe(100, 3, 128, 4).architecture["first_weights"] == "int8"
    wide = default_recipe(100, 64, 128, 4)  # 32 * 5 * 64 B = 10 KiB of int8 weights
    assert "first_weights" not in wide.architecture


def test_the_last_convolution_is_int8_when_it_fits_the_flash_budget():
    """Cricket-shaped data: 8a8 fits 16 KiB; 26 classes (GestureMidAirD1's shape) and 12
    channels of 26 samples (JapaneseVowels') do not, and say so."""
    r = default_recipe(390, 1, 300, 12)
    assert r.architecture["last_conv"] == LAST_CONV
    plain = {k: v for k, v in r.architecture.items() if k not in ("codes_into_last", "widths")}
    need = flash_bytes(plain, 1, 300, 12)
    assert f"int8 last convolution, its codes summed ({need} B of {FLASH_BUDGET} B)" in r.why
    binary = {k: v for k, v in plain.items() if k != "last_conv"}
    # what it costs: the 64 x 64 x 3 weights as bytes, not bits (the figures the docs quote)
    assert (flash_bytes(binary, 1, 300, 12), need) == (3828, 15532)
    wider = default_recipe(390, 1, 300, 12, given=dict(widths=(64, 128, 128)))
    assert "last_conv" not in wider.architecture and "stays binary" in wider.why
    for shape in [(208, 1, 360, 26), (270, 12, 26, 9)]:
        r = default_recipe(*shape)
        assert "last_conv" not in r.architecture
        assert "the last convolution stays binary: int8 would take" in r.why
    # a budget just under what it takes keeps it binary; just at it, int8
    assert "last_conv" not in default_recipe(390, 1, 300, 12, flash_budget=need - 1).architecture
    assert default_recipe(390, 1, 300, 12, flash_budget=need).architecture["last_conv"] == "8a8"


@pytest.mark.parametrize(
    "given, why",
    [
        (dict(padding="valid"), "int8 codes do not stream"),
        (dict(shortcuts=True), None),
        (dict(precision=(8, 1, 1, 8)), None),
        (dict(last_conv=1), None),
        (dict(widths=(16,)), None),
        (dict(widths=(16, 32)), None),  # no binary hidden convolution would be left
    ],
)
def test_the_last_convolution_is_chosen_for_the_model_that_will_be_built(given, why):
    r = default_recipe(390, 1, 300, 12, given=given)
    assert "last_conv" not in r.architecture
    assert (why in r.why) if why else "last convolution" not in r.why


def test_codes_go_into_the_int8_last_convolution_when_they_fit_the_flash_budget():
    """Cricket-shaped data: int8 codes out of the middle convolution take 944 B more, so the
    last convolution narrows to 63 channels to fit 16 KiB; GunPoint's shape fits at 64."""
    r = default_recipe(390, 1, 300, 12)
    assert r.architecture["codes_into_last"] and r.architecture["widths"] == (32, 64, 63)
    need = flash_bytes(r.architecture, 1, 300, 12)
    assert need == 16255 <= FLASH_BUDGET
    assert flash_bytes({**r.architecture, "widths": (32, 64, 64)}, 1, 300, 12) == 16476
    assert (
        f"int8 codes into it from the convolution before ({need} B of {FLASH_BUDGET} B, the "
        "last convolution 63 wide to fit)"
    ) in r.why
    fits = default_recipe(50, 1, 150, 2)
    assert fits.architecture["codes_into_last"] and "widths" not in fits.architecture
    model = conv_classifier(1, 300, 12, **r.architecture)
    convs = [layer for layer in model.layers if layer.kind in ("binary_conv1d", "int8_conv1d")]
    assert [(c.kind, c.activation) for c in convs] == [
        ("binary_conv1d", "int8"),
        ("int8_conv1d", "int8"),
    ]
    # widths given are not narrowed: signs stay; a budget just at the int8 last convolution
    # narrows further
    given = default_recipe(390, 1, 300, 12, given=dict(widths=(32, 64, 64)))
    assert "codes_into_last" not in given.architecture and "widths" not in given.architecture
    assert "hands it signs" in given.why
    tight = default_recipe(390, 1, 300, 12, flash_budget=15532)
    assert tight.architecture["widths"] == (32, 64, 59)
    assert flash_bytes(tight.architecture, 1, 300, 12) == 15371
    assert flash_bytes({**tight.architecture, "widths": (32, 64, 60)}, 1, 300, 12) == 15592


def test_the_flash_estimate_holds_for_the_trained_thresholds():
    """A fresh model's first-layer thresholds fit int16; a trained one's may need int32. The
    budget is checked against the latter (BasicMotions' shape: 64 B more)."""
    arch = default_recipe(40, 6, 100, 4).architecture
    torch.manual_seed(0)
    model = conv_classifier(6, 100, 4, **arch)
    fresh = summary(model)
    assert fresh.threshold_headroom == 64  # the first layer's 32 thresholds, int16 -> int32
    bn = next(layer for layer in model.layers if layer.kind == "batchnorm_sign")
    bn.bn.running_mean.fill_(1e4)  # sums far from 0, as training on raw samples gives
    model.eval()
    trained = summary(model)
    assert (trained.flash_bytes, trained.threshold_headroom) == (fresh.flash_bytes + 64, 0)
    assert trained.flash_bytes == fresh.trained_flash_bytes == flash_bytes(arch, 6, 100, 4)
    assert flash_bytes(arch, 6, 100, 4) == 16198


@pytest.mark.parametrize(
    "given",
    [dict(last_conv="8a8"), dict(last_conv=8), dict(codes_into_last=False), dict(padding="valid")],
)
def test_codes_into_the_last_convolution_are_overridable(given):
    r = default_recipe(390, 1, 300, 12, given=given)
    assert "codes_into_last" not in r.architecture and "widths" not in r.architecture


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(last_conv=1),
        dict(last_conv="1a8"),
        dict(last_conv="8a8", widths=(16, 32)),
        dict(last_conv="8a8", precision=(8, 1, "8a8", 8)),
    ],
)
def test_codes_into_last_needs_an_int8_last_convolution_behind_a_hidden_one(kwargs):
    with pytest.raises(ModelError, match="codes_into_last needs three or more widths"):
        conv_classifier(1, 64, 3, codes_into_last=True, **kwargs)


def test_train_builds_the_int8_last_convolution_and_honours_overrides(signals):
    default = tinybnn.train(signals, epochs=1, progress=False)
    assert [type(layer).__name__ for layer in default.model.layers].count("Int8Conv1d") == 1
    assert "last_conv 8a8" in default.recipe.describe()
    for override in (dict(last_conv=1), dict(padding="valid")):
        model = tinybnn.train(signals, epochs=1, progress=False, **override).model
        assert not any(type(layer).__name__ == "Int8Conv1d" for layer in model.layers)
