"""The default recipe: chosen from the data, said in one line, every choice overridable."""

from __future__ import annotations

import pytest
from conftest import CLASS_NAMES, make_signals

import tinybnn
from tinybnn.errors import TinyBNNError
from tinybnn.training.data import Dataset
from tinybnn.training.recipe import (
    AUGMENT_BELOW,
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


@pytest.mark.parametrize("length, pool", [(128, 2), (299, 2), (300, 4), (999, 4), (1000, 8)])
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
    assert main(["train", str(data), "-o", str(tmp_path / "m.pt"), "--epochs", "2"]) == 0
    captured = capsys.readouterr()
    first = captured.err.splitlines()[0]
    assert first.startswith("recipe: first_weights int8; 2 epochs of batch 32")
    assert "overridden: epochs=2" in first
    assert "last epoch 2/2: training-set accuracy (eval mode)" in captured.out


def test_int8_first_layer_unless_it_takes_a_quarter_of_the_flash():
    assert default_recipe(100, 3, 128, 4).architecture["first_weights"] == "int8"
    wide = default_recipe(100, 64, 128, 4)  # 32 * 5 * 64 B = 10 KiB of int8 weights
    assert "first_weights" not in wide.architecture
