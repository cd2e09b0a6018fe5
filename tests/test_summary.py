"""Summary numbers of small models against counts worked out by hand in the comments."""

from __future__ import annotations

import pytest

from tinybnn.compiler.api import compile
from tinybnn.compiler.summary import COUNTS, summary
from tinybnn.models import conv_classifier
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    Flatten,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
)


def flatten_model() -> Sequential:
    return Sequential(
        InputConv1d(3, 8, 5, weights="int8"),  # [3, 20] -> acc[8, 16]
        BatchNormSign(8),
        BinaryConv1d(8, 40, 3, padding="same"),  # acc[40, 16], |acc| <= 24
        MaxPool1d(2),  # acc[40, 8]
        BatchNormSign(40),
        Flatten(),  # bin[320], packed as 8 steps x 2 words
        BinaryLinear(320, 33),  # |acc| <= 320
        BatchNormSign(33),
        BinaryLinear(33, 4, bias=True),
        input_shape=(3, 20),
    )


# Per row: binary weights, other params, flash bytes, binary MACs, integer MACs.
FLATTEN_ROWS = [
    # int8 8*3*5 = 120 weights + 3 offsets + 3 multipliers; 120 B + 3*(2+2) B; 120 * 16 MACs
    (0, 126, 132, 0, 1920),
    # 8 thresholds, int16 as the compiler chose them (an untrained BatchNorm's fit) + 1 word
    (0, 8, 20, 0, 0),
    # 40*8*3 = 960 bits in 40*3*ceil(8/32) = 120 words + 1 padding word; 960 * 16 steps
    (960, 0, 484, 15360, 0),
    (0, 0, 0, 0, 0),
    # 40 int16 thresholds (24 <= 32767) + 2 words
    (0, 40, 88, 0, 0),
    (0, 0, 0, 0, 0),
    # 33*320 bits in 33 * 8 * ceil(40/32) = 528 words (not 33 * ceil(320/32) = 330)
    (10560, 0, 2112, 10560, 0),
    # 33 int16 thresholds + 2 words
    (0, 33, 74, 0, 0),
    # 4*33 bits in 4 * 2 words + 4 int32 biases
    (132, 4, 48, 132, 0),
]


def count_head_model() -> Sequential:
    return Sequential(
        InputConv1d(33, 4, 3),  # binary weights, [33, 10] -> acc[4, 8]
        BatchNormSign(4),
        GlobalPool1d("sum"),  # count[4]
        BinaryLinear(4, 2, bias=True),  # binary weights times counts: integer MACs
        input_shape=(33, 10),
    )


COUNT_HEAD_ROWS = [
    # 4*33*3 = 396 bits, tap-major in 4*ceil(99/32) = 16 words = 64 B, + 33*4 B normalisation
    (396, 66, 196, 0, 3168),
    # 4 int16 thresholds + 1 word of direction bits
    (0, 4, 12, 0, 0),
    (0, 0, 0, 0, 0),
    # 8 bits in 2 words + 2 int32 biases
    (8, 2, 16, 0, 8),
]


@pytest.mark.parametrize(
    "build, rows",
    [
        pytest.param(flatten_model, FLATTEN_ROWS, id="int8_first_flatten_binary_head"),
        pytest.param(count_head_model, COUNT_HEAD_ROWS, id="binary_first_count_head"),
    ],
)
def test_rows_match_hand_counts(build, rows):
    s = summary(build())
    for row, expected in zip(s.rows, rows, strict=True):
        got = tuple(getattr(row, name) for name in COUNTS)
        assert got == expected, f"layer {row.index} ({row.kind}): {got} != {expected}"


def test_totals_and_table():
    s = summary(flatten_model())
    totals = {name: s.total(name) for name in COUNTS}
    assert totals == dict(
        binary_weights=11652, other_params=211, flash_bytes=2958, binary_macs=26052, int_macs=1920
    )
    assert s.float32_bytes == 4 * (11652 + 211)
    assert s.compression == pytest.approx(47452 / 2958)
    text = str(s)
    assert text.splitlines()[0] == "input int[3, 20], 4 classes: class0, class1, class2, class3"
    assert "6  binary_linear" in text and "acc[33]" in text
    assert text.splitlines()[-1] == (
        "flash 2,958 B (2.9 KiB), float32 equivalent 47,452 B (46.3 KiB), compression 16.0x"
    )


@pytest.mark.parametrize(
    "mean, threshold_bytes",
    [
        pytest.param(0.0, 2, id="thresholds_fit_int16"),
        pytest.param(1e6, 4, id="thresholds_need_int32"),
    ],
)
def test_threshold_width_is_the_compilers(mean, threshold_bytes):
    """The first layer's thresholds lie where its BatchNorm's mean puts them: the summary
    reports the type the compiler stores them in."""
    model = Sequential(
        InputConv1d(1, 1, 1),  # |acc| <= 32767 * 32767 (multiplier 32767 below)
        BatchNormSign(1),
        GlobalPool1d("sum"),
        Int8Linear(1, 2),
        input_shape=(1, 4),
    )
    model.layers[0].multiplier.fill_(32767)
    model.layers[1].bn.running_mean.fill_(mean)
    row = summary(model).rows[1]
    assert row.flash_bytes == threshold_bytes + 4
    assert row.note == f"int{8 * threshold_bytes} thresholds"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(flatten_model, id="int8_first_flatten_binary_head"),
        pytest.param(count_head_model, id="binary_first_count_head"),
        pytest.param(lambda: conv_classifier(6, 64, 3), id="conv_classifier"),
    ],
)
def test_flash_agrees_with_the_compiler(build, tmp_path):
    """Per compiled stage, the summary's flash is the portable C's constants, exactly."""
    model = build().eval()
    rows = summary(model).rows
    stages = compile(model, tmp_path, "m").cmodel.stages
    for cs in stages:
        ours = sum(rows[i].flash_bytes for i in cs.stage.layers)
        assert ours == cs.flash_bytes, f"stage {cs.stage.kind} (layers {cs.stage.layers})"
    compiled = {i for cs in stages for i in cs.stage.layers}
    assert all(r.flash_bytes == 0 for r in rows if r.index not in compiled)
