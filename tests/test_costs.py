"""The instruction cost model (`tinybnn.compiler.costs`): its structure without a toolchain,
its refusals, and its estimate against fresh QEMU counts on models it was not fitted on."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn import firmware
from tinybnn.compiler import codegen, costs
from tinybnn.compiler.lowering import lower
from tinybnn.compiler.targets import CORES
from tinybnn.compiler.variants import OPTIMIZE
from tinybnn.errors import ModelError, TinyBNNError
from tinybnn.models import conv_classifier

# The estimate's error against QEMU, from the held-out models of
# benchmarks/results/costs.md (the largest over the cores, rounded up): speed kernels at most
# 9.8 % (M0; 8.6 % on M3, 6.8 % on M4-M33), the size kernels and budget mixes at most 20.1 %
# (M3's size kernels). The goal is 10 % (15 % on M0): the second is not met yet.
TOLERANCE = {"speed": 0.10, "size": 0.21, "budget": 0.21}

# Models no calibration run used (its models are seeded conv_classifiers of other sizes),
# with widths across word boundaries: name -> conv_classifier arguments.
MODELS = {
    "c3_w31_33_k5_pool2": dict(in_channels=3, length=100, widths=(31, 33), kernel_size=5),
    "c6_int8_w32_64_8a8": dict(
        in_channels=6, length=90, widths=(24, 32, 64), first_weights="int8", last_conv="8a8"
    ),
    "c1_w33x3_shortcuts_binary_head": dict(
        in_channels=1, length=150, widths=(16, 33, 33), kernel_size=7, shortcuts=True, head="binary"
    ),
    "c10_valid_w8_65_1a8_pool4": dict(
        in_channels=10,
        length=70,
        widths=(8, 65, 40),
        kernel_size=3,
        pool=4,
        padding="valid",
        precision=[8, "1a8", 8, 8],
    ),
}


def model(name: str):
    torch.manual_seed(7)
    return conv_classifier(num_classes=4, **MODELS[name])


@pytest.mark.parametrize("core", list(CORES))
def test_estimate_structure_without_toolchain(core):
    m = model("c6_int8_w32_64_8a8")
    est = costs.estimate(m, core)
    program = lower(m)
    assert est.core == core and est.optimize == "speed"
    assert [s.kernel for s in est.stages] == [s.kernel for s in program.stages]
    assert [s.index for s in est.stages] == list(range(len(program.stages)))
    assert all(s.instructions > 0 for s in est.stages)
    assert est.call_instructions >= 0
    assert est.instructions == est.call_instructions + sum(s.instructions for s in est.stages)
    assert costs.estimate(program, core) == est  # a Program as well as a model


def test_coefficients_file_matches_features():
    data = costs.coefficients()
    assert {"tinybnn", "date", "qemu"} <= set(data["meta"])
    assert set(data["cores"]) == set(CORES)
    for core, table in data["cores"].items():
        assert costs.CALL in table, core
        for function, fit in table.items():
            if function != costs.CALL:
                assert fit["features"] == list(costs.FEATURES[function]), (core, function)
            assert len(fit["coef"]) == len(fit["features"]), (core, function)


def test_coefficients_are_not_negative():
    """Every feature counts work a kernel does: the fit (non-negative least squares) keeps
    each coefficient at 0 or above, so no shape the calibration did not see is estimated
    below its parts (or below zero)."""
    for core, table in costs.coefficients()["cores"].items():
        for function, fit in table.items():
            assert min(fit["coef"]) >= 0, (core, function, fit["coef"])


def test_unknown_core_is_one_line():
    with pytest.raises(TinyBNNError, match="unknown core 'cortex-m99'") as e:
        costs.estimate(model("c3_w31_33_k5_pool2"), "cortex-m99")
    assert "\n" not in str(e.value)


def test_uncalibrated_kernel_names_layer_and_core(tmp_path):
    data = costs.coefficients()
    table = dict(data["cores"]["cortex-m4"])
    del table["tb_bconv1d_vst_b32"]
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(dict(meta=data["meta"], cores={"cortex-m4": table})))
    with pytest.raises(TinyBNNError) as e:
        costs.estimate(model("c3_w31_33_k5_pool2"), "cortex-m4", costs=path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "L1 bconv1d (layers 3-5, tb_bconv1d_vst_b32)" in msg and "cortex-m4" in msg
    with pytest.raises(TinyBNNError, match="no cost coefficients for core cortex-m0"):
        costs.estimate(model("c3_w31_33_k5_pool2"), "cortex-m0", costs=path)


@settings(max_examples=200)  # no toolchain: a build and an estimate, ~20 ms each
@given(
    channels=st.integers(1, 12),
    length=st.integers(16, 1500),
    widths=st.lists(
        st.sampled_from([4, 8, 16, 24, 31, 32, 33, 48, 64, 65, 96, 128]), min_size=1, max_size=4
    ),
    kernel_size=st.integers(3, 9),
    pool=st.sampled_from([1, 2, 4, 8]),
    first=st.sampled_from(["binary", "int8"]),
    head=st.sampled_from(["binary", "int8"]),
    last_conv=st.sampled_from([1, 8, "8a8", "1a8"]),
    codes_into_last=st.booleans(),
    shortcuts=st.booleans(),
    padding=st.sampled_from(["same", "valid"]),
    core=st.sampled_from(list(CORES)),
    optimize=st.sampled_from(["speed", "size"]),
    budget=st.none() | st.floats(0.0, 1.2),
)
def test_every_conv_classifier_stage_has_a_cost(
    channels,
    length,
    widths,
    kernel_size,
    pool,
    first,
    head,
    last_conv,
    codes_into_last,
    shortcuts,
    padding,
    core,
    optimize,
    budget,
):
    """Every stage conv_classifier makes has coefficients on every core, with the speed or
    the size kernels or under a flash budget (`budget` of the speed flash: some stages
    swapped to their size kernels, as `tinybnn search` compiles), and its estimate is
    positive: no toolchain."""
    torch.manual_seed(0)
    try:
        m = conv_classifier(
            channels,
            length,
            3,
            widths=tuple(widths),
            kernel_size=kernel_size,
            pool=pool,
            first_weights=first,
            head=head,
            last_conv=last_conv,
            codes_into_last=codes_into_last,
            shortcuts=shortcuts,
            padding=padding,
        )
    except ModelError:
        return
    program = lower(m)
    flash = None
    if budget is not None:
        flash = round(budget * codegen.build(program, "model", {}, core, optimize).flash_bytes)
    try:
        cm = codegen.build(program, "model", {}, core, optimize, flash)
    except TinyBNNError as e:  # a budget even the size kernels cannot meet
        assert "over the budget" in str(e)
        return
    est = costs.estimate(cm)
    assert est.core == core and est.optimize == optimize
    assert all(s.instructions > 0 for s in est.stages)


try:
    firmware.find_toolchain()
    HAVE_TOOLCHAIN = True
except firmware.ToolchainMissing:
    HAVE_TOOLCHAIN = False


# (model, optimize, flash budget: its place between the size and the speed flash) -> cores.
# Speed kernels on M4 and M0 (the two instruction sets' ends), the size kernels and a
# budget's mix on the other cores.
QEMU_CASES = [
    *(
        pytest.param(name, "speed", None, core, id=f"{name}-{core}")
        for name in MODELS
        for core in ("cortex-m4", "cortex-m0")
    ),
    pytest.param("c3_w31_33_k5_pool2", "size", None, "cortex-m3", id="c3_w31_33-size-m3"),
    pytest.param("c6_int8_w32_64_8a8", "size", None, "cortex-m33", id="c6_int8_8a8-size-m33"),
    pytest.param(
        "c1_w33x3_shortcuts_binary_head", "size", None, "cortex-m0", id="c1_w33x3-size-m0"
    ),
    pytest.param("c10_valid_w8_65_1a8_pool4", "speed", 0.5, "cortex-m7", id="c10_w8_65-budget-m7"),
]


@pytest.mark.skipif(not HAVE_TOOLCHAIN, reason="no firmware toolchain (arm-none-eabi-gcc, QEMU)")
@pytest.mark.parametrize("name, optimize, budget, core", QEMU_CASES)
def test_estimate_against_qemu(name, optimize, budget, core):
    from tinybnn.firmware.profile import profile

    m = model(name)
    program = lower(m)
    flash = None
    if budget is not None:
        size, speed = (codegen.build(program, "model", {}, core, o).flash_bytes for o in OPTIMIZE)
        flash = round(size + budget * (speed - size))
    cm = codegen.build(program, "model", {}, core, optimize, flash)
    est = costs.estimate(cm)
    report = profile(m, core, optimize=optimize, flash_budget=flash)
    assert [s.function for s in est.stages] == [s.function for s in cm.stages]
    assert [s.kernel for s in est.stages] == [s.kernel for s in report.stages]
    err = est.instructions / report.instructions - 1
    per_stage = ", ".join(
        f"L{e.index} {e.function} {e.instructions} vs {r.instructions}"
        for e, r in zip(est.stages, report.stages, strict=True)
    )
    assert abs(err) <= TOLERANCE[optimize if budget is None else "budget"], (
        f"{name} ({optimize}, budget {flash}) on {core}: estimate {est.instructions}, QEMU "
        f"{report.instructions} ({100 * err:+.1f} %): {per_stage}"
    )
