"""Compile every layer kind on shapes that straddle 32-bit words, run the C on the host,
and demand exact equality with the integer reference, which must equal PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modelcheck import calibrate, check_model, random_inputs, signals

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

WORD_CHANNELS = [1, 31, 32, 33, 64, 65]


def run_case(layers, in_channels, length, tmp_path, seed=0):
    torch.manual_seed(seed)
    model = Sequential(*layers(), input_shape=(in_channels, length))
    x_real = signals(12, in_channels, length, seed)
    calibrate(model, x_real, seed)
    check_model(model, [x_real, random_inputs(6, in_channels, length, seed + 1)], tmp_path)


def bconv_case(c, k, s, pad, pad_value, t, pool=None, scaling=False):
    def layers():
        out = [
            InputConv1d(3, c, 3),
            BatchNormSign(c),
            BinaryConv1d(c, c + 2, k, stride=s, padding=pad, pad_value=pad_value, scaling=scaling),
        ]
        if pool:
            out.append(MaxPool1d(*pool))
        return out + [BatchNormSign(c + 2), GlobalPool1d("sum"), Int8Linear(c + 2, 3)]

    return layers, t


BCONV_CASES = [
    pytest.param(
        *bconv_case(c, k, s, pad, pv, t), id=f"c{c}_k{k}_s{s}_p{pad}{'m' if pv < 0 else 'p'}_t{t}"
    )
    for c in WORD_CHANNELS
    for (k, s, pad, pv, t) in [(3, 1, 1, 1, 17), (5, 2, 2, -1, 20), (1, 1, 0, 1, 9)]
] + [
    pytest.param(*bconv_case(33, 3, 1, 1, -1, 23, pool=(2, 2)), id="c33_k3_pool2"),
    pytest.param(*bconv_case(32, 5, 2, 0, 1, 31, pool=(3, 1)), id="c32_k5_s2_valid_pool3s1"),
    pytest.param(*bconv_case(65, 3, 1, 1, 1, 15, scaling=True), id="c65_k3_alpha"),
]


@pytest.mark.parametrize("layers,length", BCONV_CASES)
def test_binary_conv1d(layers, length, tmp_path):
    run_case(layers, 3, length, tmp_path)


def iconv_case(
    c_in, c_out, k, s, pad, weights, t, pool=None, scaling=False, rsign=False, rprelu=False
):
    def layers():
        out = [InputConv1d(c_in, c_out, k, stride=s, padding=pad, weights=weights, scaling=scaling)]
        if pool:
            out.append(MaxPool1d(*pool))
        return out + [
            BatchNormSign(c_out, learnable_threshold=rsign, rprelu=rprelu),
            GlobalPool1d("sum"),
            Int8Linear(c_out, 4),
        ]

    return layers, c_in, t


ICONV_CASES = [
    pytest.param(
        *iconv_case(ci, co, k, s, pad, w, t), id=f"in{ci}_out{co}_k{k}_s{s}_p{pad}_{w}_t{t}"
    )
    for (ci, co) in [(1, 31), (3, 32), (6, 33), (33, 64), (2, 65)]
    for (k, s, pad, w, t) in [(5, 1, 2, "binary", 21), (3, 2, 0, "int8", 16)]
] + [
    pytest.param(*iconv_case(6, 32, 5, 1, 2, "binary", 40, pool=(2, 2)), id="in6_pool2_binary"),
    pytest.param(*iconv_case(6, 33, 3, 1, 1, "int8", 41, pool=(4, 3)), id="in6_pool4s3_int8"),
    pytest.param(
        *iconv_case(3, 16, 1, 1, 0, "binary", 7, scaling=True, rsign=True), id="in3_k1_alpha_rsign"
    ),
    pytest.param(
        *iconv_case(6, 33, 5, 1, 2, "int8", 40, pool=(2, 2), rsign=True, rprelu=True),
        id="in6_int8_rprelu_rsign",
    ),
]


@pytest.mark.parametrize("layers,in_channels,length", ICONV_CASES)
def test_input_conv1d(layers, in_channels, length, tmp_path):
    run_case(layers, in_channels, length, tmp_path)


def head_case(c, t, pool_mode, head, flatten=False, hidden=None, scaling=False):
    def layers():
        out = [InputConv1d(4, c, 3, padding=1), BatchNormSign(c, quantizer="approx")]
        f = c * t
        if flatten:
            out.append(Flatten())
        else:
            out.append(GlobalPool1d(pool_mode))
            f = c
        if hidden:
            out += [BinaryLinear(f, hidden, scaling=scaling), BatchNormSign(hidden)]
            f = hidden
        out.append((Int8Linear if head == "int8" else BinaryLinear)(f, 5, bias=True))
        return out

    return layers, t


HEAD_CASES = [
    pytest.param(*head_case(c, 9, mode, head), id=f"c{c}_{mode}_{head}")
    for c in [1, 32, 33, 65]
    for mode in ["sum", "max"]
    for head in ["int8", "binary"]
] + [
    pytest.param(*head_case(33, 7, None, "binary", flatten=True), id="flatten_c33_binary"),
    pytest.param(*head_case(31, 5, None, "int8", flatten=True), id="flatten_c31_int8"),
    pytest.param(
        *head_case(33, 7, None, "int8", flatten=True, hidden=65), id="flatten_dense65_int8"
    ),
    pytest.param(*head_case(64, 5, "max", "binary", hidden=33), id="max_dense33_binary"),
    pytest.param(
        *head_case(33, 7, None, "int8", flatten=True, hidden=65, scaling=True),
        id="flatten_dense65_alpha_int8",
    ),
    pytest.param(
        *head_case(64, 5, "max", "binary", hidden=33, scaling=True), id="max_dense33_alpha_binary"
    ),
]


@pytest.mark.parametrize("layers,length", HEAD_CASES)
def test_pooling_dense_and_classifiers(layers, length, tmp_path):
    run_case(layers, 4, length, tmp_path)


def test_maxpool_on_bits(tmp_path):
    def layers():
        return [
            InputConv1d(2, 40, 3),
            BatchNormSign(40),
            MaxPool1d(3, 2),
            BinaryConv1d(40, 33, 3, padding=1, pad_value=-1),
            BatchNormSign(33),
            MaxPool1d(2),
            GlobalPool1d("sum"),
            Int8Linear(33, 3),
        ]

    run_case(layers, 2, 29, tmp_path)


def random_model(seed: int) -> Sequential:
    """A whole random architecture: widths, kernels, strides, pads, pools and heads by seed."""
    rng = np.random.default_rng(seed)
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    c_in, length = pick([1, 3, 6]), int(rng.integers(24, 70))
    width = pick(WORD_CHANNELS[1:])
    layers = [
        InputConv1d(c_in, width, pick([3, 5]), padding="same", weights=pick(["binary", "int8"]))
    ]
    if rng.random() < 0.5:
        layers.append(MaxPool1d(2))
    layers.append(BatchNormSign(width, learnable_threshold=bool(rng.random() < 0.5)))
    for _ in range(int(rng.integers(1, 3))):
        k, nxt = pick([1, 3, 5]), pick(WORD_CHANNELS[1:])
        layers += [
            BinaryConv1d(
                width,
                nxt,
                k,
                stride=pick([1, 2]),
                padding=k // 2,
                pad_value=pick([-1, 1]),
                scaling=bool(rng.random() < 0.3),
            ),
            BatchNormSign(nxt),
        ]
        width = nxt
    layers += [GlobalPool1d(pick(["sum", "max"])), Int8Linear(width, int(rng.integers(2, 7)))]
    torch.manual_seed(seed)
    return Sequential(*layers, input_shape=(c_in, length))


@pytest.mark.parametrize("seed", range(6))
def test_random_models(seed, tmp_path):
    model = random_model(seed)
    c, t = model.input_shape
    x = signals(16, c, t, seed)
    calibrate(model, x, seed)
    check_model(model, [x, random_inputs(4, c, t, seed)], tmp_path)
