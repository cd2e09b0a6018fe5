"""The dataset format: what loads, what is refused (one line naming the file), splitting."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CLASS_NAMES, make_signals

from tinybnn.errors import TinyBNNError
from tinybnn.training.data import Dataset, load_dataset, save_dataset, split


def test_round_trip(tmp_path):
    X, y = make_signals(seed=1, per_class=5)
    save_dataset(tmp_path / "d.npz", X, y, CLASS_NAMES)
    data = load_dataset(tmp_path / "d.npz")
    assert data.X.dtype == np.int16 and data.y.dtype == np.int64
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, y)
    assert data.class_names == CLASS_NAMES
    assert (len(data), data.input_shape, data.num_classes) == (15, (6, 64), 3)


@pytest.mark.parametrize(
    "X",
    [
        pytest.param(np.array([[[1.0, -2.0, 32767.0]]]), id="integral_floats"),
        pytest.param(np.array([[[1, -2, 32767]]], dtype=np.int64), id="int64"),
        pytest.param(np.array([[[1, 2, 255]]], dtype=np.uint8), id="uint8"),
    ],
)
def test_accepts_whole_numbers_in_int16_range(X):
    data = Dataset(X, np.array([0]))
    assert data.X.dtype == np.int16
    np.testing.assert_array_equal(data.X, X)


def test_default_class_names_from_labels():
    data = Dataset(np.zeros((3, 1, 4), np.int16), np.array([0, 2, 2]))
    assert data.class_names == ["class0", "class1", "class2"]


def test_integral_float_labels_are_accepted():
    data = Dataset(np.zeros((2, 1, 4), np.int16), np.array([0.0, 1.0]))
    assert data.y.dtype == np.int64


def test_rejects_bad_files(bad_dataset):
    path, fragment = bad_dataset
    with pytest.raises(TinyBNNError) as info:
        load_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and fragment in message
    assert "\n" not in message


def test_save_refuses_bad_arrays_and_writes_nothing(tmp_path):
    X, y = make_signals(seed=0, per_class=2)
    with pytest.raises(TinyBNNError, match="out of range"):
        save_dataset(tmp_path / "d.npz", X, y + 1, CLASS_NAMES)
    assert list(tmp_path.iterdir()) == []


def test_split_is_stratified_deterministic_and_disjoint():
    X, y = make_signals(seed=0, per_class=10)
    data = Dataset(X, y, CLASS_NAMES)
    train, val = split(data, 0.2, seed=3)
    assert np.bincount(val.y).tolist() == [2, 2, 2]
    assert len(train) + len(val) == len(data)
    rows = {x.tobytes() for x in train.X}
    assert not any(x.tobytes() in rows for x in val.X)
    again = split(data, 0.2, seed=3)[1]
    np.testing.assert_array_equal(again.X, val.X)
    assert not np.array_equal(split(data, 0.2, seed=4)[1].X, val.X)


def test_split_keeps_singletons_in_training_and_refuses_no_validation():
    data = Dataset(np.zeros((4, 1, 4), np.int16), np.array([0, 0, 0, 1]))
    train, val = split(data, 0.01, seed=0)
    assert val.y.tolist() == [0] and train.y.tolist() == [0, 0, 1]
    with pytest.raises(TinyBNNError, match="too few to hold out"):
        split(Dataset(np.zeros((2, 1, 4), np.int16), np.array([0, 1])), 0.5, seed=0)
