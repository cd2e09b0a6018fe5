"""The UEA/UCR .ts loader: header, multivariate cases, variable lengths, missing values,
string labels, int16 scaling, and errors that name the line."""

from __future__ import annotations

import numpy as np
import pytest

from tinybnn.errors import TinyBNNError
from tinybnn.training.data import load_dataset
from tinybnn.training.tsfile import (
    aeon_data_dir,
    convert,
    fill_missing,
    load_ts,
    read_series,
    read_ts,
    to_length,
)

HEADER = """\
# a comment
@problemName Tiny
@timeStamps false
@missing {missing}
@univariate false
@dimensions 2
@equalLength {equal}
{length}@classLabel true walk run
@data
"""

EQUAL = HEADER.format(missing="false", equal="true", length="@seriesLength 3\n") + (
    "1,2,3:4,5,6:run\n\n-1.5,0,2:0.25,0.5,1:walk\n"
)
VARIABLE = HEADER.format(missing="true", equal="false", length="") + (
    "1,?,3,4:0,1,2,3:walk\n2,4:?,?:run\n"
)


def write(tmp_path, text: str, name: str = "d.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_multivariate_cases_and_string_labels(tmp_path):
    ts = read_ts(write(tmp_path, EQUAL))
    assert ts.problem_name == "Tiny"
    assert ts.class_names == ["walk", "run"]
    assert ts.labels.tolist() == [1, 0]
    np.testing.assert_array_equal(ts.series[0], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(ts.series[1], [[-1.5, 0, 2], [0.25, 0.5, 1]])


def test_global_scale_maps_the_largest_value_to_the_target(tmp_path):
    conv = load_ts(write(tmp_path, EQUAL), full_scale=12000)
    assert conv.data.X.dtype == np.int16
    assert np.abs(conv.data.X).max() == 12000  # 6 -> 12000, one scale for all channels
    np.testing.assert_array_equal(conv.data.X[0], [[2000, 4000, 6000], [8000, 10000, 12000]])
    per_channel = load_ts(write(tmp_path, EQUAL), full_scale=12000, scaling="channel")
    np.testing.assert_array_equal(per_channel.data.X[0, 0], [4000, 8000, 12000])


def test_variable_lengths_and_missing_values(tmp_path):
    path = write(tmp_path, VARIABLE)
    ts = read_ts(path)
    assert ts.lengths.tolist() == [4, 2]
    conv = load_ts(path, full_scale=4)  # scale 1: the largest |x| is 4
    assert (conv.length, conv.missing, conv.resampled) == (4, 3, 1)
    # case 0: the '?' is interpolated between 1 and 3
    np.testing.assert_array_equal(conv.data.X[0], [[1, 2, 3, 4], [0, 1, 2, 3]])
    # case 1: resampled 2 -> 4 points; a dimension with no values becomes 0
    np.testing.assert_array_equal(conv.data.X[1], [[2, 3, 3, 4], [0, 0, 0, 0]])
    padded = load_ts(path, 3, variable="pad", full_scale=4)
    np.testing.assert_array_equal(padded.data.X[1, 0], [2, 4, 4])
    np.testing.assert_array_equal(padded.data.X[0, 0], [1, 2, 3])  # cut to 3


def test_fill_and_resample_helpers():
    np.testing.assert_array_equal(fill_missing([[np.nan, 1, np.nan, 3, np.nan]]), [[1, 1, 2, 3, 3]])
    np.testing.assert_allclose(to_length(np.array([[0.0, 10.0]]), 3), [[0, 5, 10]])
    with pytest.raises(TinyBNNError, match="variable must be"):
        to_length(np.zeros((1, 2)), 3, variable="stretch")


def test_convert_writes_npz_and_a_test_file_reuses_the_training_scale(tmp_path):
    train = write(tmp_path, EQUAL, "train.ts")
    test = write(tmp_path, EQUAL.replace("1,2,3:4,5,6", "2,4,6:8,10,12"), "test.ts")
    conv = convert(train, tmp_path / "train.npz")
    data = load_dataset(tmp_path / "train.npz")
    np.testing.assert_array_equal(data.X, conv.data.X)
    assert data.class_names == ["walk", "run"]
    test_conv = convert(test, tmp_path / "test.npz", like=train)
    np.testing.assert_array_equal(test_conv.scale, conv.scale)
    assert test_conv.data.X.max() == 32000  # twice the training peak, same scale


MALFORMED = [
    pytest.param("@problemName X\n1,2:run\n", 2, "expected a @tag", id="data_before_header"),
    pytest.param("@classLabel true a b\n@bogus 1\n@data\n", 2, "unknown header tag", id="bad_tag"),
    pytest.param("@classLabel false\n@data\n", 1, "must be 'true'", id="no_labels"),
    pytest.param("@data\n1,2:a\n", 1, "before @classLabel", id="unlabelled"),
    pytest.param("@dimensions two\n", 1, "positive integer", id="bad_dimensions"),
    pytest.param("@classLabel true a b\n@data\n1,2:c\n", 3, "not one of", id="unknown_label"),
    pytest.param("@classLabel true a\n@data\n1,x,3:a\n", 3, "'x' is not a number", id="bad_value"),
    pytest.param(
        "@dimensions 2\n@classLabel true a\n@data\n1,2:3,4:a\n1,2:a\n",
        5,
        "1 dimensions, expected 2",
        id="dimension_count",
    ),
    pytest.param("@classLabel true a\n@data\n1,2:3:a\n", 3, "differ in length", id="ragged_case"),
    pytest.param(
        "@missing false\n@classLabel true a\n@data\n1,?:a\n",
        4,
        "@missing false",
        id="undeclared_missing",
    ),
    pytest.param(
        "@equalLength true\n@seriesLength 3\n@classLabel true a\n@data\n1,2:a\n",
        5,
        "@seriesLength is 3",
        id="wrong_length",
    ),
    pytest.param("@timeStamps true\n", 1, "not supported", id="timestamps"),
]


@pytest.mark.parametrize("text, line, message", MALFORMED)
def test_malformed_files_name_the_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(TinyBNNError, match=rf"d\.ts, line {line}: .*{message}"):
        read_ts(path)


def test_files_without_data(tmp_path):
    with pytest.raises(TinyBNNError, match="no @data"):
        read_ts(write(tmp_path, "@classLabel true a\n"))
    with pytest.raises(TinyBNNError, match="no cases"):
        read_ts(write(tmp_path, "@classLabel true a\n@data\n"))
    with pytest.raises(TinyBNNError, match="cannot read"):
        read_ts(tmp_path / "missing.ts")


@pytest.mark.skipif(aeon_data_dir() is None, reason="aeon is not installed")
def test_basic_motions_shapes():
    root = aeon_data_dir() / "BasicMotions"
    train = load_ts(root / "BasicMotions_TRAIN.ts")
    test = load_ts(root / "BasicMotions_TEST.ts", like=root / "BasicMotions_TRAIN.ts")
    assert train.data.X.shape == test.data.X.shape == (40, 6, 100)
    assert train.data.class_names == ["Standing", "Running", "Walking", "Badminton"]
    assert np.abs(train.data.X).max() == 16000
    assert np.bincount(test.data.y).tolist() == [10, 10, 10, 10]


@pytest.mark.skipif(aeon_data_dir() is None, reason="aeon is not installed")
def test_japanese_vowels_is_resampled_to_the_training_files_longest():
    root = aeon_data_dir() / "JapaneseVowels"
    train = load_ts(root / "JapaneseVowels_TRAIN.ts")
    test = load_ts(root / "JapaneseVowels_TEST.ts", like=root / "JapaneseVowels_TRAIN.ts")
    assert train.data.X.shape == (270, 12, 26) and test.data.X.shape == (370, 12, 26)
    assert train.data.class_names == [str(i) for i in range(1, 10)]


def test_a_test_file_of_another_problem_is_refused(tmp_path):
    train = write(tmp_path, EQUAL, "train.ts")
    other = write(tmp_path, EQUAL.replace("walk run", "sit run").replace("walk", "sit"), "o.ts")
    with pytest.raises(TinyBNNError, match=r"o\.ts: 2 dimensions and classes \['sit', 'run'\]"):
        load_ts(other, like=train)


TSV = "1\t0.5\t1.0\t1.5\tNaN\n-1\t2.0\t-2.0\t4.0\t8.0\n1\t1\t2\tNaN\tNaN\n"


def test_ucr_tsv_reads_labels_in_numeric_order_and_variable_lengths(tmp_path):
    train = tmp_path / "P_TRAIN.tsv"
    train.write_text(TSV)
    f = read_series(train)
    assert (f.problem_name, f.class_names, f.labels.tolist()) == ("P", ["-1", "1"], [1, 0, 1])
    assert [s.shape for s in f.series] == [(1, 3), (1, 4), (1, 2)]
    conv = load_ts(train, full_scale=8)  # largest |x| is 8: scale 1
    assert conv.data.X.shape == (3, 1, 4) and conv.resampled == 2
    assert conv.data.X[1, 0].tolist() == [2, -2, 4, 8]

    test = tmp_path / "P_TEST.tsv"
    test.write_text("1,3,3,3,3\n")  # commas, as older copies of the archive
    t = load_ts(test, like=train, full_scale=8)
    assert t.data.class_names == ["-1", "1"] and t.data.y.tolist() == [1]


@pytest.mark.parametrize(
    "text, fragment",
    [
        pytest.param("1\t2\tx\n", "line 1: not a row of numbers", id="text_value"),
        pytest.param(
            "\n1\n", "line 2: needs a class label and at least one value", id="label_only"
        ),
        pytest.param("1\tNaN\tNaN\n", "line 1: no values", id="all_missing"),
        pytest.param("1\t2\tinf\n", "line 1: an infinite value", id="infinite"),
        pytest.param("\n\n", "no cases", id="empty"),
    ],
)
def test_bad_tsv_is_one_line(tmp_path, text, fragment):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(TinyBNNError, match=fragment):
        read_series(path)


def test_tsv_test_label_unknown_to_the_training_file(tmp_path):
    train, test = tmp_path / "P_TRAIN.tsv", tmp_path / "P_TEST.tsv"
    train.write_text(TSV)
    test.write_text("3\t1\t2\n")
    with pytest.raises(TinyBNNError, match="case 1 has class 3, not one of the training"):
        load_ts(test, like=train)
