"""The arithmetic contract: bit packing, and thresholds that reproduce PyTorch's eval-mode
BatchNorm + sign for every integer accumulator a layer can produce."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinybnn import ModelError
from tinybnn.compiler import contract
from tinybnn.nn import BatchNormSign, BinaryConv1d, InputConv1d, sign


@pytest.mark.parametrize("n", [1, 31, 32, 33, 64, 65])
def test_pack_bits_layout_and_round_trip(n):
    rng = np.random.default_rng(n)
    v = rng.choice([-1, 1], size=(3, n)).astype(np.int8)
    packed = contract.pack_bits(v)
    assert packed.shape == (3, contract.words(n))
    for c in range(n):  # channel c -> word c // 32, bit c % 32, bit 1 = -1
        assert np.array_equal((packed[:, c // 32] >> (c % 32)) & 1, (v[:, c] < 0).astype(np.uint32))
    if n % 32:
        assert not (packed[:, -1] >> (n % 32)).any(), "padding bits must be 0"
    assert np.array_equal(contract.unpack_bits(packed, n), v)


def test_dot_is_k_minus_twice_popcount():
    rng = np.random.default_rng(0)
    for n in (1, 33, 65):
        x, w = rng.choice([-1, 1], size=(2, n))
        pc = np.bitwise_count(contract.pack_bits(x) ^ contract.pack_bits(w)).sum()
        assert int(x @ w) == n - 2 * int(pc)


def make_bn(
    c: int, seed: int, k_bits: int, rsign: bool, exact_ties: bool, rprelu: bool = False
) -> BatchNormSign:
    g = torch.Generator().manual_seed(seed)
    bn = BatchNormSign(c, learnable_threshold=rsign, rprelu=rprelu).eval()
    with torch.no_grad():
        bn.bn.running_mean.copy_((torch.rand(c, generator=g) * 2 - 1) * k_bits)
        bn.bn.running_var.copy_(torch.rand(c, generator=g) * k_bits + 0.1)
        bn.bn.weight.copy_(torch.randn(c, generator=g))
        bn.bn.weight[0] = 0.0  # constant output
        bn.bn.weight[1] = -abs(bn.bn.weight[1])  # decreasing
        bn.bn.bias.copy_(torch.randn(c, generator=g))
        if exact_ties:  # f(acc) = 0 exactly at an integer accumulator: sign(0) must be +1
            bn.bn.running_mean.copy_(torch.round(bn.bn.running_mean))
            bn.bn.bias.zero_()
        if rsign:
            bn.rsign.threshold.copy_(torch.randn(c, generator=g) * 0.5)
        if rprelu:  # slopes on both sides of the clamp at 0.01
            bn.rprelu.shift_in.copy_(torch.randn(c, generator=g) * 0.5)
            bn.rprelu.shift_out.copy_(torch.randn(c, generator=g) * 0.5)
            bn.rprelu.slope.copy_(torch.rand(c, generator=g) * 1.2 - 0.2)
    return bn


@pytest.mark.parametrize(
    "rsign,rprelu", [(False, False), (True, False), (False, True), (True, True)]
)
@pytest.mark.parametrize("scaling", [False, True])
@pytest.mark.parametrize("exact_ties", [False, True])
@pytest.mark.parametrize("c_in,k", [(1, 1), (33, 3), (65, 5)])
def test_binary_thresholds_exhaustive(c_in, k, rsign, rprelu, scaling, exact_ties):
    """Every accumulator value in [-K, K] for every channel: threshold == PyTorch."""
    c_out = 40
    torch.manual_seed(c_in * k)
    conv = BinaryConv1d(c_in, c_out, k, scaling=scaling).eval()
    k_bits = c_in * k
    bn = make_bn(c_out, c_in + k, k_bits, rsign, exact_ties, rprelu)
    th = contract.fold_threshold(
        lambda a: bn.eval_preact(conv.to_preact(a)), c_out, -k_bits, k_bits
    )
    check_threshold_range(
        th, lambda a: bn(conv.to_preact(a)), c_out, np.arange(-k_bits, k_bits + 1)
    )
    assert th.neg[1] and not th.neg[0]


def check_threshold_range(th, module_fn, c, accs):
    acc = torch.tensor(np.tile(accs, (c, 1)), dtype=torch.float64)[None]
    with torch.no_grad():
        want = (module_fn(acc)[0] < 0).numpy().T.astype(np.uint8)  # [R][C], 1 = -1
    got = th.bits(np.tile(accs[:, None], (1, c)))
    bad = np.argwhere(got != want)
    assert not len(bad), (
        f"acc {accs[bad[0][0]]}, channel {bad[0][1]}: threshold gives {got[tuple(bad[0])]}"
    )


@pytest.mark.parametrize("weights", ["binary", "int8"])
def test_input_layer_thresholds_exhaustive_on_a_narrow_range(weights):
    """A first layer with an 8-level input range: its whole accumulator range is checked."""
    torch.manual_seed(1)
    conv = InputConv1d(2, 24, 3, weights=weights, input_range=(-8, 7)).eval()
    with torch.no_grad():
        conv.multiplier.copy_(torch.tensor([3, 1]))
        conv.shift.fill_(2)
    wq, scale = conv.integer_weight()
    bound = int((wq.abs().detach() * torch.tensor([15 * 3, 15])[None, :, None]).sum((1, 2)).max())
    bn = make_bn(24, 3, bound // 4, rsign=True, exact_ties=False)
    with torch.no_grad():  # centre the BN on this layer's pre-activation scale
        bn.bn.running_mean.mul_(scale.mean() / 4)
        bn.bn.running_var.mul_(float(scale.mean()) ** 2 / 4)
    f = lambda a: bn.eval_preact(conv.to_preact(a, scale))  # noqa: E731
    th = contract.fold_threshold(f, 24, -bound, bound)
    check_threshold_range(
        th, lambda a: bn(conv.to_preact(a, scale)), 24, np.arange(-bound, bound + 1)
    )


def test_input_layer_thresholds_wide_range_near_boundaries():
    """Full int16 range: check the accumulators around each threshold and at the ends."""
    torch.manual_seed(2)
    conv = InputConv1d(6, 32, 5).eval()
    with torch.no_grad():
        conv.multiplier.fill_(200)
        conv.shift.fill_(17)
    wq, scale = conv.integer_weight()
    bound = 65535 * 200 * 30
    bn = make_bn(32, 4, 200, rsign=False, exact_ties=False)
    f = lambda a: bn.eval_preact(conv.to_preact(a, scale))  # noqa: E731
    th = contract.fold_threshold(f, 32, -bound, bound)
    accs = np.unique(np.concatenate([th.th + d for d in range(-3, 4)] + [[-bound, bound]]))
    accs = accs[(accs >= -bound) & (accs <= bound)]
    check_threshold_range(th, lambda a: bn(conv.to_preact(a, scale)), 32, accs)
    assert th.ctype == "int32"


def test_sign_of_zero_is_plus_one():
    assert sign(torch.tensor([0.0, -0.0, 1e-30, -1e-30])).tolist() == [1, 1, 1, -1]


def test_nan_batchnorm_is_refused():
    conv = BinaryConv1d(4, 8, 1).eval()
    bn = BatchNormSign(8).eval()
    with torch.no_grad():
        bn.bn.running_var[3] = float("nan")
    with pytest.raises(ModelError, match="NaN"):
        contract.fold_threshold(lambda a: bn.eval_preact(conv.to_preact(a)), 8, -4, 4)
