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
    BinaryResidual1d,
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


def residual_case(c, t, blocks, pool=None, last_pool=None, k=3, pad_value=1, rsign=False):
    """input conv -> sign -> binary conv keeping its sums [-> pool] -> residual blocks (kernel
    sizes `blocks`, the pad values alternating from `pad_value`) [-> pool] -> sign -> head."""

    def layers():
        out = [
            InputConv1d(3, 8, 3, padding=1),
            BatchNormSign(8),
            BinaryConv1d(8, c, k, padding="same"),
        ]
        if pool:
            out.append(MaxPool1d(*pool))
        for j, kb in enumerate(blocks):
            pv = pad_value if j % 2 == 0 else -pad_value
            out.append(BinaryResidual1d(c, kb, pad_value=pv, learnable_threshold=rsign))
        if last_pool:
            out.append(MaxPool1d(*last_pool))
        return out + [BatchNormSign(c), GlobalPool1d("sum"), Int8Linear(c, 3)]

    return layers, t


RESIDUAL_CASES = [
    pytest.param(*residual_case(c, t, blocks), id=f"c{c}_t{t}_blocks{len(blocks)}")
    for c in WORD_CHANNELS
    for (t, blocks) in [(17, (3,)), (10, (3, 5))]
] + [
    pytest.param(*residual_case(33, 23, (3,), pool=(2, 2)), id="c33_pool2_block"),
    pytest.param(*residual_case(65, 21, (5, 1), last_pool=(3, 2)), id="c65_blocks_pool3s2"),
    pytest.param(
        *residual_case(31, 19, (3, 3, 3), pool=(2, 1), last_pool=(2, 2), pad_value=-1, rsign=True),
        id="c31_three_blocks_pools_rsign",
    ),
    pytest.param(*residual_case(64, 9, (1,), k=1), id="c64_k1"),
]


@pytest.mark.parametrize("layers,length", RESIDUAL_CASES)
def test_binary_residual1d(layers, length, tmp_path):
    run_case(layers, 3, length, tmp_path)


SUM_K, SUM_C = 151, 31  # 7 layers of 151 x 31: sums up to 7 * 4681 = 32767 = TB_SUM_MAX


@torch.no_grad()
def bound_model(blocks: int = 6, length: int = 5) -> Sequential:
    """Sums at the bound: a binary conv and `blocks` residual blocks of k=151 on 31 channels,
    every sign +1 (gamma 0, beta 1) and every tap matching or every tap opposing its weight
    (+1 padding), so channels reach +-4681 per layer: +-32767 = TB_SUM_MAX after 6 blocks.
    The last sign's thresholds sit at the bound: (+-32767 - mean) with mean = +-32767."""
    c, k = SUM_C, SUM_K
    layers = [InputConv1d(1, c, 1), BatchNormSign(c), BinaryConv1d(c, c, k, padding="same")]
    layers += [BinaryResidual1d(c, k) for _ in range(blocks)]
    layers += [BatchNormSign(c), GlobalPool1d("sum"), Int8Linear(c, 3)]
    model = Sequential(*layers, input_shape=(1, length))
    signs = torch.where(torch.arange(c) % 2 == 0, 1.0, -1.0)  # even channels up, odd down
    for m in model.modules():
        if isinstance(m, BinaryConv1d):
            m.weight.copy_(0.5 * signs.view(c, 1, 1).expand_as(m.weight))
        if isinstance(m, BatchNormSign):
            m.bn.weight.zero_()
            m.bn.bias.fill_(1.0)
    last = model.layers[-3]
    last.bn.weight.fill_(1.0)
    last.bn.bias.zero_()
    last.bn.running_mean.copy_(signs * (SUM_K * SUM_C * (blocks + 1)))
    model.layers[-1].bias.copy_(torch.tensor([1.0, -2.0, 3.0]))
    return model.eval()


def test_sums_at_the_bound(tmp_path):
    """Every channel's sums reach exactly +-TB_SUM_MAX, in PyTorch, the reference and the C."""
    from tinybnn.compiler.kernels import LIMITS

    model = bound_model()
    x = random_inputs(4, 1, 5, 0)
    with torch.no_grad():
        sums = model.activations(torch.tensor(x, dtype=torch.float64))[-4]
    assert sums.abs().max() == LIMITS["TB_SUM_MAX"] == SUM_K * SUM_C * 7
    check_model(model, [x], tmp_path)


def test_sums_past_the_bound_are_refused(tmp_path):
    from tinybnn.compiler.api import compile
    from tinybnn.errors import ModelError

    with pytest.raises(ModelError) as e:
        compile(bound_model(blocks=7), tmp_path, "m")
    assert str(e.value) == (
        "layer 9 (binary_residual1d): its sums reach +-37448, beyond the +-32767 (TB_SUM_MAX) "
        "that the int16 buffers of a shortcut hold"
    )
    assert not list(tmp_path.iterdir())  # nothing half-written


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
