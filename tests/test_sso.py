"""The first layer's subset-sum variant read at precomputed offsets (`sso`,
`tb_iconv1d_sso_s16`), for binary and ternary weights, and the ternary weights themselves.

PyTorch == the integer reference (test_compile's helper), and the C with `sso` == the
reference, exactly: on the host (gcc with sanitizers, clang) on shapes that straddle 32-bit
words (1, 3, 5, 6 input channels; 1, 16, 31, 32, 33, 64, 65 outputs; odd lengths, strides,
pooling, both paddings), under QEMU on every core, and where its folded sums could leave
int32 it steps aside for `sst` (binary) or the int8 kernels (ternary).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modelcheck import random_inputs, signals
from test_compile import check_model, iconv_case, run_case
from test_kernels import check_variants, seeded, toolchain  # noqa: F401 - a fixture
from test_validation import bound_model

from tinybnn import firmware, models, summary
from tinybnn.compiler import reference, targets
from tinybnn.compiler.api import compile
from tinybnn.compiler.lowering import lower
from tinybnn.firmware.profile import run_on_core
from tinybnn.nn import InputConv1d, Sequential
from tinybnn.ops.input_conv import quantize_ternary

# (c_in, c_out, k, stride, padding, length, pool)
SHAPES = [
    (5, 16, 5, 1, 0, 33, (2, 2)),  # the earbud demo's first layer, valid padding
    (1, 31, 5, 1, 2, 21, None),
    (3, 32, 3, 2, 1, 17, None),
    (6, 33, 5, 1, 2, 40, (2, 2)),
    (5, 64, 1, 1, 0, 9, None),
    (2, 65, 7, 3, 3, 31, (3, 2)),
    (4, 1, 3, 1, 0, 6, None),
]
CASES = [
    pytest.param(
        *iconv_case(ci, co, k, s, pad, w, t, pool=pool, rsign=w == "ternary"),
        id=f"{w}_in{ci}_out{co}_k{k}_s{s}_p{pad}_t{t}{'_pool' if pool else ''}",
    )
    for w in ("binary", "ternary")
    for (ci, co, k, s, pad, t, pool) in SHAPES
]


@pytest.mark.parametrize("layers,in_channels,length", CASES)
def test_pytorch_equals_reference(layers, in_channels, length, tmp_path):
    run_case(layers, in_channels, length, tmp_path)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("layers,in_channels,length", CASES)
def test_sso_on_host(layers, in_channels, length, cc, tmp_path):
    model = seeded(layers, in_channels, length)
    assert check_variants(model, "host", tmp_path, cc=cc)[0] == "sso"


@pytest.mark.parametrize("core", list(firmware.CORES))
def test_sso_under_qemu(core, toolchain, tmp_path):  # noqa: F811 - the fixture
    """Every case on `core`, bit-exact: 6 realistic and 2 extreme windows each; on
    Cortex-M0 the earbud shapes again at -O0 and -Os, where the C replaces the assembly."""
    for i, p in enumerate(CASES):
        layers, c, t = p.values
        model = seeded(layers, c, t)
        x = np.concatenate([signals(6, c, t, 5), random_inputs(2, c, t, 6)])
        result = compile(model, tmp_path / str(i), "m", target=core)
        want = "sso" if c <= targets.TARGETS[core].sst_max_in else None
        if want:
            assert result.cmodel.stages[0].variant.name == want, p.id
        run_on_core(result, "m", core, x, reference.run(result.program, x))
        if core == "cortex-m0" and i % len(SHAPES) == 0:  # ARMv6-M: the C beside the assembly
            for opt in ("-O0", "-Os"):
                run_on_core(result, "m", core, x, reference.run(result.program, x), opt=opt)


def test_ternary_quantizer():
    """q = 0 where |w| <= 0.7 mean|w| of the channel, else sign(w); straight-through
    gradient inside the clamp."""
    w = torch.tensor([[[1.0, -1.0, 0.2, -0.2, 4.0]]], requires_grad=True)  # mean |w| 1.28
    q, delta = quantize_ternary(w)
    assert q.tolist() == [[[1.0, -1.0, 0.0, 0.0, 1.0]]]
    assert delta.tolist() == pytest.approx([2 * 0.7 * 1.28])
    q.sum().backward()
    g = 1 / delta.item()
    assert w.grad.tolist() == [[[pytest.approx(g)] * 4 + [0.0]]]  # 4 / delta = 2.23 > 1.5


def edge_model(bound: int, weights: str) -> Sequential:
    """tests/test_validation.py's bound_model (four channels: increasing, decreasing, always
    -1 with th = bound + 1, always +1), all weights +1, with offsets and multipliers that put
    its accumulator bound at `bound` = 65535 * m0 + (32768 + offset_1) * m1."""
    m0, m1, o1 = next(
        (m0, m1, (bound - 65535 * m0) // m1 - 32768)
        for m0 in range(min(bound // 65535, 32767), 0, -1)
        for m1 in range(1, 5)
        if (bound - 65535 * m0) % m1 == 0 and 0 <= (bound - 65535 * m0) // m1 - 32768 <= 32767
    )
    model = bound_model(1)
    model.layers[0] = InputConv1d(2, 4, 1, weights=weights)
    conv = model.layers[0]
    with torch.no_grad():
        conv.weight.fill_(0.5)  # sign +1; ternary: 0.5 / (1.4 * 0.5) rounds to +1
        conv.offset.copy_(torch.tensor([32767, o1]))
        conv.multiplier.copy_(torch.tensor([m0, m1]))
        conv.shift.fill_(20)
    return model.eval()


@pytest.mark.parametrize(
    "weights,bound,want",
    [
        ("binary", 2**30 - 2, "sso"),
        ("binary", 2**30 - 1, "sst"),
        ("ternary", 2**29 - 2, "sso"),
        ("ternary", 2**29 - 1, "xs"),
    ],
)
def test_sums_past_int32_step_aside(weights, bound, want, tmp_path):
    """sso's sums reach planes * (|acc| + |th| + 1) = planes * (2 * bound + 2) here (1 plane
    for binary weights, 2 for ternary): one step past 2^31 - 1 and the layer takes sst
    (binary) or the int8 kernels (ternary) instead; exact at the extreme accumulators
    either way."""
    model = edge_model(bound, weights)
    st = lower(model).stages[0]
    assert st.acc_bound == bound
    assert st.acc_bound + int(np.abs(st.threshold.th).max()) == 2 * bound + 1
    assert check_variants(model, "host", tmp_path)[0] == want
    x = random_inputs(6, 2, 9, seed=3)
    x[1], x[2] = -32768, 32767
    check_model(model, [x], tmp_path / "exact")


def test_ternary_weights_cost_two_bits():
    model = models.conv_classifier(5, 32, 6, widths=(16, 32), first_weights="ternary")
    assert summary(model).rows[0].bits == 2
