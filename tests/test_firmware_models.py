"""Compiled models on every Cortex-M core under QEMU: the same vectors as the host tests,
bit-exact against the integer reference; a corrupted weight is caught; profiles are
consistent with the compiler's figures and repeat exactly.

Models are compiled once per module; each firmware run checks 8 windows (6 realistic
signals and the 2 extreme-valued windows of the host tests' `random_inputs`).
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from modelcheck import calibrate, random_inputs, signals
from test_codegen import golden_model
from test_compile import bound_model, random_model, residual_case

import tinybnn
from tinybnn import firmware, models
from tinybnn.cli import tinybnn as cli
from tinybnn.compiler import reference
from tinybnn.compiler.api import CompileResult, compile
from tinybnn.compiler.contract import words
from tinybnn.errors import TinyBNNError
from tinybnn.firmware.profile import FirmwareCheckFailed, profile, run_on_core
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
from tinybnn.ops.binary_conv import BinConv, BinConvSum
from tinybnn.ops.dense import BinDense, Classifier
from tinybnn.ops.input_conv import InputConv
from tinybnn.ops.pool import GlobalSum, MaxPoolBits
from tinybnn.ops.residual import Residual

try:
    firmware.find_toolchain()
except firmware.ToolchainMissing as exc:
    pytest.skip(f"no firmware toolchain: {exc}", allow_module_level=True)

CORES = list(firmware.CORES)


def kinds_a() -> Sequential:
    """Binary first layer with pooling on accumulators; binary convs padding -1 (stride 2)
    and +1; pooling on bits; global sum; binary classifier on counts."""
    return Sequential(
        InputConv1d(6, 33, 5, padding=2, weights="binary"),
        MaxPool1d(2),
        BatchNormSign(33),
        BinaryConv1d(33, 40, 3, stride=2, padding=1, pad_value=-1),
        BatchNormSign(40),
        MaxPool1d(2),
        BinaryConv1d(40, 32, 3, padding=1, pad_value=1),
        BatchNormSign(32),
        GlobalPool1d("sum"),
        BinaryLinear(32, 5, bias=True),
        input_shape=(6, 50),
    )


def kinds_b() -> Sequential:
    """int8 first layer with stride 2; binary conv k=5 stride 2 padding +1 with an
    overlapping pool on accumulators; global max; binary dense; binary classifier on bits."""
    return Sequential(
        InputConv1d(3, 31, 3, stride=2, padding=1, weights="int8"),
        BatchNormSign(31),
        BinaryConv1d(31, 65, 5, stride=2, padding=2, pad_value=1),
        MaxPool1d(3, 2),
        BatchNormSign(65),
        GlobalPool1d("max"),
        BinaryLinear(65, 40),
        BatchNormSign(40),
        BinaryLinear(40, 4, bias=True),
        input_shape=(3, 61),
    )


def kinds_c() -> Sequential:
    """int8 first layer, valid padding, pooled; binary conv padding -1 stride 2; flatten;
    binary dense; int8 classifier on bits."""
    return Sequential(
        InputConv1d(1, 32, 3, padding=0, weights="int8"),
        MaxPool1d(2),
        BatchNormSign(32),
        BinaryConv1d(32, 33, 3, stride=2, padding=1, pad_value=-1),
        BatchNormSign(33),
        Flatten(),
        BinaryLinear(33 * 9, 40),
        BatchNormSign(40),
        Int8Linear(40, 3, bias=True),
        input_shape=(1, 38),
    )


def shortcuts() -> Sequential:
    """Shortcuts on 33 channels: a binary conv keeping its sums, pooled; residual blocks of
    k=3 (pad +1) and k=5 (pad -1), the second giving bits through its pool and sign."""
    layers, t = residual_case(33, 23, (3, 5), pool=(2, 2), last_pool=(2, 2))
    return Sequential(*layers(), input_shape=(3, t))


KINDS = ["kinds_a", "kinds_b", "kinds_c"]
# name -> (builder, seed of its calibration and vectors; None: the model is fixed as built)
MODELS = {
    **{f"random{s}": (lambda s=s: random_model(s), s) for s in range(3)},
    "kinds_a": (kinds_a, 7),
    "kinds_b": (kinds_b, 8),
    "kinds_c": (kinds_c, 9),
    "golden": (golden_model, None),
    "shortcuts": (shortcuts, 10),
    "sums_bound": (bound_model, None),  # every sum at +-TB_SUM_MAX
}


def build_model(name: str) -> tuple[Sequential, np.ndarray]:
    """The model, calibrated as the host tests calibrate theirs, and its vectors int16
    [8, C, T]: the host tests' first 6 signals and their 2 extreme random windows."""
    build, seed = MODELS[name]
    torch.manual_seed(seed or 0)
    model = build()
    c, t = model.input_shape
    x = signals(16, c, t, seed or 0)
    if seed is not None:
        calibrate(model, x, seed)
    return model, np.concatenate([x[:6], random_inputs(4, c, t, seed or 0)[[0, -1]]])


class Compiled:
    """Models compiled on first use, once per module."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[str, tuple[CompileResult, np.ndarray, np.ndarray]] = {}

    def __call__(self, name: str) -> tuple[CompileResult, np.ndarray, np.ndarray]:
        if name not in self.cache:
            model, x = build_model(name)
            result = compile(model, self.root / name, name)
            self.cache[name] = (result, x, reference.run(result.program, x))
        return self.cache[name]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Compiled:
    return Compiled(tmp_path_factory.mktemp("models"))


CASES = [
    pytest.param(name, core, "-O2", id=f"{name}-{core}") for name in MODELS for core in CORES
] + [pytest.param(name, core, "-Os", id=f"{name}-{core}-Os") for name in KINDS for core in CORES]


@pytest.mark.parametrize("name, core, opt", CASES)
def test_bit_exact_on_core(compiled: Compiled, name: str, core: str, opt: str) -> None:
    """Builds with -Wall -Wextra -Werror for the core and matches the reference exactly."""
    result, x, want = compiled(name)
    run_on_core(result, name, core, x, want, opt=opt)


def features(result: CompileResult) -> set[str]:
    """What a compiled model exercises, in the words of the layer list above."""
    found = set(result.program.layer_kinds)
    for st in result.program.stages:
        if isinstance(st, InputConv):
            found.add(f"iconv {'binary' if st.binary else 'int8'}")
        if isinstance(st, BinConv):
            found.add(f"bconv pad {st.pad_value:+d}" if st.pad else "bconv valid")
            found.update({"bconv stride 2"} if st.stride == 2 else set())
        if isinstance(st, (InputConv, BinConv)) and st.pool_k > 1:
            found.add("pool on accumulators")
        if isinstance(st, BinConvSum):
            found.add("bconv to sums")
        if isinstance(st, Residual):
            found.add(f"shortcut to {'bits' if st.out_kind == 'bin' else 'sums'}")
        if isinstance(st, MaxPoolBits):
            found.add("pool on bits" if len(st.out_shape) == 2 else "global max")
        if isinstance(st, BinDense):
            found.add("binary dense")
        if isinstance(st, GlobalSum):
            found.add("global sum")
        if isinstance(st, Classifier):
            w = "binary" if st.binary_weights else "int8"
            found.add(f"{w} classifier on {'bits' if st.binary_input else 'counts'}")
    return found


def test_every_kind_is_covered(compiled: Compiled) -> None:
    covered = set().union(*(features(compiled(name)[0]) for name in MODELS))
    wanted = {
        "iconv binary",
        "iconv int8",
        "bconv pad +1",
        "bconv pad -1",
        "bconv stride 2",
        "pool on accumulators",
        "pool on bits",
        "flatten",
        "binary dense",
        "global sum",
        "global max",
        "binary classifier on bits",
        "binary classifier on counts",
        "int8 classifier on bits",
        "int8 classifier on counts",
        "bconv to sums",
        "shortcut to sums",
        "shortcut to bits",
    }
    assert wanted <= covered, f"not covered: {sorted(wanted - covered)}"


def corrupt_first_effective_word(result: CompileResult, x: np.ndarray, c_file: Path) -> str:
    """Flip the lowest hex digit (input channels 0-3 of tap 0) of the first binary conv's
    weight word for the first output channel where, by the reference, that changes a score
    on x; patch that digit in c_file. Returns a description of the change."""
    i, st = next((i, s) for i, s in enumerate(result.program.stages) if isinstance(s, BinConv))
    o_count, k, _ = st.weight.shape
    want = reference.run(result.program, x)
    for o in range(o_count):
        program = copy.deepcopy(result.program)
        program.stages[i].weight[o, 0, :4] *= -1
        if not np.array_equal(reference.run(program, x), want):
            break
    else:
        raise AssertionError("no single flip of 4 weights changes a score; pick other vectors")
    name = f"{result.cmodel.stages[i].prefix}_w"
    text = c_file.read_text()
    body = re.search(rf"{name}\[\d+\] = {{(.*?)}};", text, re.DOTALL)
    hexes = list(re.finditer(r"0x[0-9a-f]{7}([0-9a-f])u", body.group(1)))
    digit = hexes[o * k * words(st.in_shape[0])].start(1) + body.start(1)  # [o][0][0]
    text = text[:digit] + f"{int(text[digit], 16) ^ 0xF:x}" + text[digit + 1 :]
    c_file.write_text(text)
    return f"{name}, output channel {o}"


def test_corrupted_weight_is_caught(compiled: Compiled, tmp_path: Path) -> None:
    """A weight digit flipped in the generated C, where the reference says it matters:
    the firmware must exit 1 and name the first wrong score."""
    result, x, want = compiled("kinds_a")
    for f in result.files:
        shutil.copy(f, tmp_path / f.name)
    what = corrupt_first_effective_word(result, x, tmp_path / "kinds_a.c")

    with pytest.raises(FirmwareCheckFailed) as info:
        run_on_core(tmp_path, "kinds_a", "cortex-m4", x, want)
    assert info.value.status == 1, what
    assert re.search(
        r"model kinds_a on cortex-m4 \(-O2\): firmware exited with status 1: "
        r"MISMATCH window \d+ (score \d+|class): got -?\d+ expected -?\d+$",
        str(info.value),
    ), str(info.value)


# ---------------------------------------------------------------------------------------
# Profiling a gesture-sized model.


@pytest.fixture(scope="module")
def gesture() -> Sequential:
    torch.manual_seed(0)
    model = models.conv_classifier(6, 128, 6)
    return calibrate(model, signals(16, 6, 128, 0), 0)


@pytest.mark.parametrize("core", ["cortex-m0", "cortex-m4", "cortex-m7"])
def test_profile_gesture(gesture: Sequential, core: str, tmp_path: Path) -> None:
    cm = compile(gesture, tmp_path / "c", "gesture", target=core).cmodel  # what profile builds
    report = profile(gesture, core, name="gesture", work_dir=tmp_path / "run1")

    # Flash: every array is in .rodata at its declared size, or folded into code by GCC.
    assert report.constants_estimate == cm.flash_bytes
    assert report.constants_bytes + report.folded_bytes == cm.flash_bytes
    declared = {a.name: a.nbytes for s in cm.stages for a in s.arrays}
    # (small arrays only: the first layer's offsets and multipliers, 2 * c_in bytes each,
    # fold into sso's unrolled table fill)
    assert all(declared[a] <= 12 for a in report.folded_arrays), report.folded_arrays
    # (M0: 4,316 B since the first layer's sso, whose table fill is unrolled)
    assert 200 < report.code_bytes < 5120
    assert report.flash_bytes > cm.flash_bytes - report.folded_bytes
    # RAM: the arena the compiler planned, and a modest measured stack.
    assert report.arena_bytes == cm.arena_bytes
    assert 0 < report.stack_bytes < 1024
    assert report.ram_bytes == report.arena_bytes + report.data_bytes + report.bss_bytes + (
        report.stack_bytes
    )
    # Instructions: every stage runs some; the stages are part of the total.
    counts = [s.instructions for s in report.stages]
    assert len(counts) == len(cm.stages) and min(counts) > 0
    assert sum(counts) <= report.instructions
    assert report.instructions == report.call_instructions + sum(counts)
    assert 0 < report.call_instructions < 100
    binary_conv = [s for s in report.stages if s.kernel == "bconv1d"]
    assert all(s.instructions < 4 * s.binary_macs for s in binary_conv)  # XNOR-popcount pays
    assert "not cycles" in report.format()

    again = profile(gesture, core, name="gesture", work_dir=tmp_path / "run2")
    assert again == report  # identical counts, sizes and stack, from a fresh build


def test_profile_command(gesture: Sequential, tmp_path: Path) -> None:
    path = tmp_path / "gesture.pt"
    tinybnn.save(gesture, path)
    args = ["profile", str(path), "--target", "cortex-m0", "--target", "cortex-m33", "--opt", "-Os"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "model model on cortex-m0 (-Os" in result.output
    assert "model model on cortex-m33 (-Os" in result.output

    bad = tmp_path / "bad.pt"
    bad.write_text("not a model")
    result = CliRunner().invoke(cli, ["profile", str(bad)])
    assert isinstance(result.exception, TinyBNNError)
    assert "not a tinybnn model file" in str(result.exception)
    assert "\n" not in str(result.exception)


def test_missing_toolchain_is_one_line(gesture: Sequential, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(TinyBNNError, match=r"^arm-none-eabi-gcc not found; install it with: "):
        profile(gesture, "cortex-m4")
