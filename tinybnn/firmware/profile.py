"""Run compiled models on emulated Cortex-M cores: bit-exact checks, flash, RAM, instructions.

`run_on_core` builds the firmware driver `firmware_tests/model_main.c` with a compiled model
and test vectors for one core (`tinybnn.firmware.CORES`), runs it under QEMU, and fails,
naming the model and the core, unless every score and class equals the expected one.

`profile` compiles a model, builds the same driver twice (as it ships, and with a marker
at each stage's start) and measures one inference:

- flash, in the build as it ships: the ELF's sized symbols of the model (`<name>_classify`,
  the descriptors `<name>_l<i>`, the arrays `<name>_l<i>_<key>`), the kernel functions of
  `tinybnn_kernels.h` that were not inlined, and the libgcc helpers they call. Each array
  must be in .rodata at exactly the size the compiler counts (`CModel.flash_bytes`), or be
  gone because GCC folded its few loads into instructions (the report lists those); else
  `ProfileMismatch`. Not counted: `<name>_class_names` and its strings, which the linker
  drops unless the firmware uses them (the driver does not), and the harness's `memset`.
- RAM: the arena (the driver's static one, `<NAME>_ARENA_BYTES` rounded to words), the
  model's .data and .bss, and the stack the call used, measured by painting.
- instructions: guest instructions executed between markers, counted by the QEMU plugin
  (`firmware_tests/icount_plugin.c`): the call overhead up to the first stage, each stage
  (the last one includes the argmax and the return), and their total. They depend a little
  on the data (clamping and sign branches); the window is seeded, so runs repeat exactly.

The same run counts the inference's instructions per class (`ProfileReport.classes`), from
which `tinybnn.firmware.cycles` estimates cycles with the core's published timings.

Non-goals: measured cycles (QEMU models no pipeline, cache or flash wait states, so
instruction counts are a proxy, and cycles an estimate), real boards, and profiling
firmware other than the driver.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..compiler import reference
from ..compiler.api import CompileResult, compile
from ..compiler.codegen import CModel, c_array
from ..compiler.kernels import KERNELS_HEADER, template_dir
from ..compiler.program import Program
from ..compiler.targets import core as check_core
from ..errors import TinyBNNError, one_line
from ..nn import Sequential
from ..table import format_table
from . import cycles
from . import harness as firmware

DRIVER = "model_main.c"
VECTORS_HEADER = "tb_vectors.h"
ARENA_SYMBOL = "tb_main_arena"
OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3", "-Os")

# The driver's mode switches; see the header comment of model_main.c.
_PROFILE_DEFINES = ("TB_PROFILE", "TB_STAGE_BEGIN(index)=TB_MARK()")
_PROFILE_CFLAGS = ("-include", "tb_markers.h")

_VECTORS_H = """\
/* {header} - test vectors for model {name}, written by tinybnn.profile. */
#ifndef TB_VECTORS_H
#define TB_VECTORS_H

#include <stdint.h>

#include "{name}.h"

#define TB_ARENA_BYTES {NAME}_ARENA_BYTES
#define TB_IN_LENGTH {NAME}_IN_LENGTH
#define TB_IN_CHANNELS {NAME}_IN_CHANNELS
#define TB_NUM_CLASSES {NAME}_NUM_CLASSES
#define TB_NUM_WINDOWS {n}

#if TB_IN_LENGTH != {t} || TB_IN_CHANNELS != {c} || TB_NUM_CLASSES != {k}
#error "tb_vectors.h was written for another shape of model {name}"
#endif

/* int16 [TB_NUM_WINDOWS][TB_IN_LENGTH][TB_IN_CHANNELS], interleaved */
static const int16_t tb_windows[TB_NUM_WINDOWS][TB_IN_LENGTH * TB_IN_CHANNELS] = {{
{windows}
}};

/* int32 [TB_NUM_WINDOWS][TB_NUM_CLASSES], from tinybnn.reference */
static const int32_t tb_expected_scores[TB_NUM_WINDOWS][TB_NUM_CLASSES] = {{
{scores}
}};

static const int32_t tb_expected_classes[TB_NUM_WINDOWS] = {{
    {classes}
}};

#endif
"""


class FirmwareCheckFailed(TinyBNNError, AssertionError):
    """The firmware's scores differ from the expected ones, or it hung, faulted or did not
    build. `status` is its exit status (1 on a mismatch) when it ran, `output` its console."""

    def __init__(self, message: str, status: int | None = None, output: str = ""):
        super().__init__(message)
        self.status = status
        self.output = output


class ProfileMismatch(TinyBNNError):
    """The ELF's figures contradict the compiler's (a missing array, another size)."""


# ---------------------------------------------------------------------------------------
# Building and running the driver.


def _vectors_header(name: str, x: np.ndarray, scores: np.ndarray) -> str:
    """tb_vectors.h for windows x int16 [N, C, T] and their expected scores [N, K]."""
    n, c, t = x.shape
    k = scores.shape[1]
    windows = x.transpose(0, 2, 1).reshape(n, t * c)  # [T][C] per window, as the C reads it
    return _VECTORS_H.format(
        header=VECTORS_HEADER,
        name=name,
        NAME=name.upper(),
        n=n,
        t=t,
        c=c,
        k=k,
        windows=",\n".join(f"    {{\n    {c_array(w)}\n    }}" for w in windows),
        scores=",\n".join(f"    {{ {c_array(s)} }}" for s in scores.astype(np.int32)),
        classes=c_array(reference.argmax(scores).astype(np.int32)),
    )


def _check_vectors(name: str, x, expected_scores) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    scores = np.asarray(expected_scores)
    if x.ndim == 2:
        x, scores = x[None], scores.reshape(1, -1)
    if x.ndim != 3 or scores.ndim != 2 or len(x) != len(scores) or len(x) == 0:
        raise TinyBNNError(
            f"model {name}: need windows [N, C, T] and expected scores [N, K], "
            f"got {list(x.shape)} and {list(scores.shape)}"
        )
    for what, v, bits in (("windows", x, 16), ("expected scores", scores, 32)):
        if not np.issubdtype(v.dtype, np.integer):
            raise TinyBNNError(f"model {name}: {what} must be integers, not {v.dtype}")
        if v.min(initial=0) < -(2 ** (bits - 1)) or v.max(initial=0) > 2 ** (bits - 1) - 1:
            raise TinyBNNError(f"model {name}: {what} hold values outside int{bits}")
    return x.astype(np.int16), scores.astype(np.int64)


def _c_dir(result_or_out_dir: CompileResult | str | os.PathLike, name: str) -> Path:
    """The directory holding <name>.c, <name>.h and the kernels header."""
    if isinstance(result_or_out_dir, CompileResult):
        if result_or_out_dir.cmodel.name != name:
            raise TinyBNNError(
                f"the compile result is model {result_or_out_dir.cmodel.name!r}, not {name!r}"
            )
        out_dir = result_or_out_dir.files[0].parent
    else:
        out_dir = Path(result_or_out_dir)
    for fname in (f"{name}.c", f"{name}.h", KERNELS_HEADER):
        if not (out_dir / fname).is_file():
            raise TinyBNNError(f"{out_dir / fname}: no such file; compile model {name} first")
    return out_dir


def _build_driver(
    c_dir: Path,
    name: str,
    core: str,
    build_dir: Path,
    x: np.ndarray,
    scores: np.ndarray,
    opt: str,
    profiled: bool,
) -> Path:
    """Write tb_vectors.h into build_dir and build the driver with the model for `core`."""
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / VECTORS_HEADER).write_text(_vectors_header(name, x, scores))
    try:
        return firmware.build(
            [firmware.harness_dir() / DRIVER, c_dir / f"{name}.c"],
            [build_dir, c_dir],
            core,
            build_dir,
            opt=opt,
            defines=[f"TB_NAME={name}", *(_PROFILE_DEFINES if profiled else ())],
            extra_cflags=_PROFILE_CFLAGS if profiled else (),
        )
    except firmware.ToolchainMissing as e:
        raise TinyBNNError(str(e)) from None
    except firmware.BuildError as e:
        raise FirmwareCheckFailed(f"model {name} on {core} ({opt}): {one_line(e)}") from None


def _run_driver(
    elf: Path,
    name: str,
    core: str,
    opt: str,
    timeout_s: float,
    plugin_out: Path | None = None,
    classes: bool = False,
) -> firmware.RunResult:
    """Run the driver; anything but a clean exit 0 is a FirmwareCheckFailed naming model and core."""
    where = f"model {name} on {core} ({opt})"
    try:
        result = firmware.run(
            elf, core, timeout_s=timeout_s, plugin_out=plugin_out, classes=classes
        )
    except firmware.ToolchainMissing as e:
        raise TinyBNNError(str(e)) from None
    except firmware.FirmwareTimeout as e:
        raise FirmwareCheckFailed(f"{where}: hung: {one_line(e)}") from None
    except firmware.FirmwareError as e:  # a fault, a lockup, QEMU failing
        raise FirmwareCheckFailed(f"{where}: {one_line(e)}") from None
    if result.status != 0:
        lines = result.output.strip().splitlines()
        said = next((ln for ln in lines if ln.startswith("MISMATCH")), lines[-1] if lines else "")
        raise FirmwareCheckFailed(
            f"{where}: firmware exited with status {result.status}: {said or '(no output)'}",
            status=result.status,
            output=result.output,
        )
    return result


@contextmanager
def _directory(path: str | os.PathLike | None, prefix: str) -> Iterator[Path]:
    """`path` (created), or a temporary directory removed afterwards."""
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def run_on_core(
    result_or_out_dir: CompileResult | str | os.PathLike,
    name: str,
    core: str,
    x: np.ndarray,
    expected_scores: np.ndarray,
    opt: str = "-O2",
    timeout_s: float = 60,
) -> None:
    """Run compiled model `name` on windows x int16 [N, C, T] on `core` under QEMU.

    Raises `FirmwareCheckFailed` (an AssertionError and a TinyBNNError) naming the model,
    the core and the first differing window and score when the firmware's int32 scores or
    class differ from `expected_scores` [N, K] (and their argmax, ties to the lowest index),
    and when it does not build, hangs or faults.
    """
    check_core(core)
    c_dir = _c_dir(result_or_out_dir, name)
    x, scores = _check_vectors(name, x, expected_scores)
    with tempfile.TemporaryDirectory(prefix=f"tinybnn-{core}-") as tmp:
        elf = _build_driver(c_dir, name, core, Path(tmp), x, scores, opt, profiled=False)
        _run_driver(elf, name, core, opt, timeout_s)


# ---------------------------------------------------------------------------------------
# Profiling.


@dataclass(frozen=True)
class StageProfile:
    """One stage of one inference: its constants in flash and the instructions it ran."""

    index: int
    kernel: str  # e.g. "bconv1d"
    output: str  # e.g. "64x32b" (T x C, b = packed bits)
    constants_bytes: int  # its arrays' bytes in the ELF's .rodata
    instructions: int
    binary_macs: int
    int_macs: int


@dataclass(frozen=True)
class ProfileReport:
    """Measured flash, RAM and instruction counts of one inference on one core."""

    name: str
    core: str
    opt: str
    kernels: str  # whose kernels run: the core's own (and what they favour), or "portable"
    stages: tuple[StageProfile, ...]
    call_instructions: int  # from the marker before the call to the first stage
    code_bytes: int  # .text: <name>_classify, kernels not inlined, libgcc helpers they call
    constants_bytes: int  # .rodata of the model's arrays (weights, thresholds, ...)
    constants_estimate: int  # the compiler's count, CModel.flash_bytes (checked)
    folded_arrays: tuple[str, ...]  # arrays GCC folded into instructions, absent from .rodata
    folded_bytes: int  # their declared bytes: constants + folded == constants_estimate
    descriptors_bytes: int  # .rodata of the layer descriptors and the class-name table
    data_bytes: int  # the model's .data (in flash and in RAM)
    bss_bytes: int
    arena_bytes: int
    stack_bytes: int  # the call's peak stack use, below the caller's frame
    classes: dict[str, int] | None = None  # the inference's instruction classes (cycles.py)

    @property
    def flash_bytes(self) -> int:
        return self.code_bytes + self.constants_bytes + self.descriptors_bytes + self.data_bytes

    @property
    def ram_bytes(self) -> int:
        return self.arena_bytes + self.data_bytes + self.bss_bytes + self.stack_bytes

    @property
    def instructions(self) -> int:
        """Instructions per inference: the call and every stage."""
        return self.call_instructions + sum(s.instructions for s in self.stages)

    @property
    def macs(self) -> int:
        return sum(s.binary_macs + s.int_macs for s in self.stages)

    def format(self) -> str:
        """A readable report: flash and RAM breakdowns, then one row per stage."""
        lines = [
            f"model {self.name} on {self.core} ({self.opt}, arm-none-eabi-gcc, {self.kernels} kernels)",
            f"flash {self.flash_bytes:>8} B = code {self.code_bytes} + constants "
            f"{self.constants_bytes} + descriptors {self.descriptors_bytes} + data "
            f"{self.data_bytes}",
            f"      constants: {self.constants_bytes} B in .rodata"
            + (
                f" + {self.folded_bytes} B folded into code ({', '.join(self.folded_arrays)})"
                if self.folded_arrays
                else ""
            )
            + f" = the compiler's {self.constants_estimate} B",
            f"RAM   {self.ram_bytes:>8} B = arena {self.arena_bytes} + data {self.data_bytes} "
            f"+ bss {self.bss_bytes} + stack {self.stack_bytes} (peak during the inference)",
            f"instructions per inference: {self.instructions} "
            f"(call overhead {self.call_instructions}; {self.macs} MACs)",
            "",
        ]
        rows = [("stage", "output", "const B", "instructions", "share", "binary MACs", "int MACs")]
        for s in self.stages:
            share = f"{100 * s.instructions / self.instructions:.1f}%"
            rows.append(
                (
                    f"L{s.index} {s.kernel}",
                    s.output,
                    s.constants_bytes,
                    s.instructions,
                    share,
                    s.binary_macs,
                    s.int_macs,
                )
            )
        lines.append(format_table(rows, left=(0, 1)))
        lines.append(
            "Instruction counts are guest instructions executed under QEMU, not cycles: QEMU "
            "models no pipeline, cache or flash wait states. The last stage includes the argmax."
        )
        return "\n".join(lines)


def _kernel_functions() -> set[str]:
    """Names of the functions defined in tinybnn_kernels.h."""
    text = (template_dir() / KERNELS_HEADER).read_text()
    return set(re.findall(r"^static\s+inline\s+[\w\s*]*?\b(tb_\w+)\s*\(", text, re.MULTILINE))


def _base(symbol: str) -> str:
    """A symbol without GCC's clone suffixes: tb_bconv1d_acc.constprop.0 -> tb_bconv1d_acc."""
    return symbol.split(".")[0]


_FUNCTION = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
_BRANCH = re.compile(r"\s(?:bl|blx|b|b\.w|b\.n)\s+[0-9a-f]+ <([^>+]+)(?:\+0x[0-9a-f]+)?>")


def _libgcc_helpers(elf: Path, functions: set[str]) -> set[str]:
    """The compiler-runtime helpers (``__aeabi_*``, ``__udivsi3``, ...) that `functions`
    call, directly or through one another, e.g. division on ARMv6-M."""
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump is None:
        raise TinyBNNError(
            "arm-none-eabi-objdump not found; install it with: "
            "sudo apt-get install binutils-arm-none-eabi"
        )
    out = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True, check=True)
    calls: dict[str, set[str]] = {}
    current = None
    for line in out.stdout.splitlines():
        if m := _FUNCTION.match(line):
            current = calls.setdefault(m.group(1), set())
        elif current is not None and (m := _BRANCH.search(line)):
            current.add(m.group(1))
    found: set[str] = set()
    todo = [f for f in functions if f in calls]
    while todo:
        for callee in calls.get(todo.pop(), ()):
            if callee.startswith("__") and callee not in found:
                found.add(callee)
                todo.append(callee)
    return found


def default_window(program: Program, seed: int = 0) -> np.ndarray:
    """One seeded, smooth, in-range window int16 [1, C, T]: per-channel offset, a sine and
    noise, like a sensor at rest with some motion."""
    rng = np.random.default_rng(seed)
    c, t = program.in_channels, program.length
    lo, hi = program.input_range
    mid, span = (lo + hi) / 2, (hi - lo) / 2
    steps = np.arange(t)
    x = (
        mid
        + span * rng.uniform(-0.3, 0.3, (c, 1))
        + span * 0.2 * np.sin(2 * np.pi * rng.uniform(0.01, 0.1, (c, 1)) * steps)
        + span * 0.02 * rng.normal(size=(c, t))
    )
    return np.clip(np.round(x), lo, hi).astype(np.int16)[None]


def _measure(
    cm: CModel,
    elf: Path,
    output: str,
    counts: list[int],
    core: str,
    opt: str,
    classes: list[dict[str, int]] | None = None,
) -> ProfileReport:
    """A checked report from the plain build's ELF and console output and the marked
    build's instruction counts."""
    name = cm.name
    where = f"model {name} on {core} ({opt})"
    own = re.compile(rf"{re.escape(name)}_(classify(_static)?|class_names|l\d+(_\w+)?)\Z")
    kernels = _kernel_functions()
    model_syms = []
    arena = None
    syms = firmware.symbols(elf)
    for s in syms:
        base = _base(s.name)
        if own.match(base) or (s.section == "text" and base in kernels):
            model_syms.append(s)
        elif s.name == ARENA_SYMBOL:
            arena = s.size
    helpers = _libgcc_helpers(elf, {s.name for s in model_syms if s.section == "text"})
    model_syms += [s for s in syms if s.name in helpers and s.section == "text"]
    by_name = {s.name: s for s in model_syms}

    def total(section: str) -> int:
        return sum(s.size for s in model_syms if s.section == section)

    # Each array is in the ELF at exactly its declared size, or gone: GCC folds the loads
    # of a small array read at indices it can prove (e.g. the one word of direction bits
    # of a 32-channel layer) into instructions and drops it. Anything else is a mismatch.
    arrays = [a for cs in cm.stages for a in cs.arrays]
    folded = []
    for a in arrays:
        got = by_name.get(a.name)
        if got is None:
            folded.append(a)
        elif got.size != a.nbytes or got.section != "rodata":
            raise ProfileMismatch(
                f"{where}: array {a.name} is {got.size} B in .{got.section} in the ELF; "
                f"the compiler counts {a.nbytes} B of rodata"
            )
    constants = sum(by_name[a.name].size for a in arrays if a.name in by_name)
    if constants + sum(a.nbytes for a in folded) != cm.flash_bytes:
        raise ProfileMismatch(
            f"{where}: the model's arrays take {constants} B in the ELF (and "
            f"{sum(a.nbytes for a in folded)} B folded into code), the compiler counts "
            f"{cm.flash_bytes} B"
        )
    if arena is None or arena != 4 * ((cm.arena_bytes + 3) // 4):
        raise ProfileMismatch(
            f"{where}: the driver's arena is {arena} B, the model needs {cm.arena_bytes} B"
        )

    stack = re.search(r"^STACK classify=(\d+) peak=(\d+)$", output, re.MULTILINE)
    n = len(cm.stages)
    if stack is None or len(counts) < n + 1:
        raise FirmwareCheckFailed(
            f"{where}: expected a stack line and {n + 1} instruction counts, got "
            f"{len(counts)} counts and output {output.strip()!r}"
        )
    segments = counts[: n + 1]  # later segments come from the checking loop

    stages = []
    for cs, count in zip(cm.stages, segments[1:], strict=True):
        st = cs.stage
        kind = "b" if st.out_kind == "bin" else f" {st.out_kind}"
        bmacs, imacs = st.macs()
        stages.append(
            StageProfile(
                index=cs.index,
                kernel=cs.kernel,
                output="x".join(str(v) for v in st.out_shape[::-1]) + kind,
                constants_bytes=sum(by_name[a.name].size for a in cs.arrays if a.name in by_name),
                instructions=count,
                binary_macs=bmacs,
                int_macs=imacs,
            )
        )
    return ProfileReport(
        name=name,
        core=core,
        opt=opt,
        kernels=cm.kernels,
        stages=tuple(stages),
        call_instructions=segments[0],
        code_bytes=total("text"),
        constants_bytes=constants,
        constants_estimate=cm.flash_bytes,
        folded_arrays=tuple(a.name for a in folded),
        folded_bytes=sum(a.nbytes for a in folded),
        descriptors_bytes=total("rodata") - constants,
        data_bytes=total("data"),
        bss_bytes=total("bss"),
        arena_bytes=cm.arena_bytes,
        stack_bytes=int(stack.group(1)),
        classes=cycles.add(classes[: n + 1]) if classes else None,
    )


def profile(
    model_or_path: Sequential | str | os.PathLike,
    core: str = "cortex-m4",
    opt: str = "-O2",
    name: str = "model",
    work_dir: str | os.PathLike | None = None,
    x: np.ndarray | None = None,
    timeout_s: float = 120,
    portable: bool = False,
    optimize: str = "speed",
    flash_budget: int | None = None,
) -> ProfileReport:
    """Compile a model, run one inference on `core` under QEMU, and measure it.

    Flash, RAM and stack come from the firmware as it ships (no markers); instruction counts
    from a second build whose stage hooks are checkpoints. `x` is the window profiled (int16 [C, T] or [1, C, T]; default `default_window`); its
    scores are checked against the reference too. The model is compiled for `core` (its fast
    kernels, with `optimize` and `flash_budget` as `tinybnn.compile`), or with the portable reference
    loops when `portable`. The generated C and the firmware go to
    `work_dir` (default: a temporary directory). Raises TinyBNNError: one line for a bad
    model file or a missing toolchain, `FirmwareCheckFailed` when the firmware computes
    something else, hangs or faults, `ProfileMismatch` when the ELF contradicts the compiler.
    """
    check_core(core)
    try:
        firmware.find_toolchain()
    except firmware.ToolchainMissing as e:
        raise TinyBNNError(str(e)) from None
    with _directory(work_dir, "tinybnn-profile-") as wd:
        target = "portable" if portable else core
        result = compile(
            model_or_path,
            wd / "c",
            name,
            target=target,
            optimize=optimize,
            flash_budget=flash_budget,
        )
        program = result.program
        x = default_window(program) if x is None else reference.check_input(program, x)[:1]
        scores = reference.run(program, x)
        c_dir, build = result.files[0].parent, wd / f"firmware-{core}{opt}"
        # Sizes and stack from the build that ships; counts from one with stage markers.
        plain = _build_driver(c_dir, name, core, build / "plain", x, scores, opt, False)
        output = _run_driver(plain, name, core, opt, timeout_s).output
        marked = _build_driver(c_dir, name, core, build / "marked", x, scores, opt, True)
        run = _run_driver(marked, name, core, opt, timeout_s, build / "counts.txt", classes=True)
        return _measure(result.cmodel, plain, output, run.counts or [], core, opt, run.classes)
