"""The streaming API on emulated Cortex-M cores: bit-exact checks and its cost.

`run_stream_on_core` builds `firmware_tests/stream_main.c` with a model compiled with
streaming and a sample stream, runs it under QEMU, and fails, naming the model and the core,
unless every decision's scores equal the numpy streaming reference's
(`tinybnn.compiler.streaming`), pushed in the given chunk sizes.

`profile_stream` measures the same driver: one push of a whole number of decision hops in
steady state (after a first window), counted by the QEMU plugin between markers, against the
windowed model's inference (`profile.profile`, the same core and kernels) run once per
decision at the same decision rate; and the state's RAM. Instruction counts, not cycles.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..compiler import reference, streaming
from ..compiler.api import CompileResult, compile
from ..compiler.codegen import c_array
from ..compiler.targets import core as check_core
from ..errors import TinyBNNError
from ..nn import Sequential
from . import harness as firmware
from .profile import (
    FirmwareCheckFailed,
    ProfileReport,
    _c_dir,
    _directory,
    _run_driver,
    profile,
)

DRIVER = "stream_main.c"
VECTORS_HEADER = "tb_stream_vectors.h"
_PROFILE_DEFINES = ("TB_PROFILE",)


def expected_pushes(program, stream: streaming.StreamPlan, x: np.ndarray, chunks) -> np.ndarray:
    """Per push of `x` [n][C] in `chunks` (cycled) that decides: samples pushed so far, its
    decisions, the latest scores and their class, int64 [P, 3 + K] (the numpy reference)."""
    ref = streaming.StreamReference(program, stream)
    rows, pushed, p = [], 0, 0
    while pushed < len(x):
        n = min(chunks[p % len(chunks)], len(x) - pushed)
        made = ref.push(x[pushed : pushed + n])
        pushed, p = pushed + n, p + 1
        if made:
            scores = made[-1][1]
            rows.append([pushed, len(made), *scores, int(reference.argmax(scores))])
    return np.array(rows, np.int64).reshape(-1, 3 + program.num_classes)


def _header(name: str, x: np.ndarray, chunks, expected: np.ndarray, warm: int, measure: int):
    up = name.upper()
    rows = ",\n".join("    {" + c_array(r) + "}" for r in expected) or "    {0}"
    return (
        f"/* {VECTORS_HEADER} - a sample stream for model {name}, written by tinybnn. */\n"
        "#include <stdint.h>\n\n"
        f'#include "{name}.h"\n\n'
        f"#define TB_STATE_BYTES {up}_STATE_BYTES\n"
        f"#define TB_IN_CHANNELS {up}_IN_CHANNELS\n"
        f"#define TB_NUM_CLASSES {up}_NUM_CLASSES\n"
        f"#define TB_NUM_SAMPLES {len(x)}\n"
        f"#define TB_NUM_CHUNKS {len(chunks)}\n"
        f"#define TB_NUM_EXPECTED {len(expected)}\n"
        f"#define TB_WARM {warm}\n"
        f"#define TB_MEASURE {measure}\n\n"
        f"#if TB_IN_CHANNELS != {x.shape[1]} || TB_NUM_CLASSES != {expected.shape[1] - 3}\n"
        f'#error "{VECTORS_HEADER} was written for another shape of model {name}"\n'
        "#endif\n\n"
        "static const int16_t tb_samples[TB_NUM_SAMPLES * TB_IN_CHANNELS] = {\n    "
        + c_array(x)
        + "\n};\n\n"
        + "static const int32_t tb_chunks[TB_NUM_CHUNKS] = {"
        + ", ".join(str(int(c)) for c in chunks)
        + "};\n\n"
        + f"static const int32_t tb_expected[{max(len(expected), 1)}][TB_NUM_CLASSES + 3] = {{\n"
        + rows
        + "\n};\n"
    )


def _build(c_dir: Path, name: str, core: str, build_dir: Path, header: str, opt: str, profiled):
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / VECTORS_HEADER).write_text(header)
    try:
        return firmware.build(
            [firmware.harness_dir() / DRIVER, c_dir / f"{name}.c"],
            [build_dir, c_dir],
            core,
            build_dir,
            opt=opt,
            defines=[f"TB_NAME={name}", *(_PROFILE_DEFINES if profiled else ())],
            extra_cflags=("-include", "tb_markers.h") if profiled else (),
        )
    except firmware.ToolchainMissing as e:
        raise TinyBNNError(str(e)) from None
    except firmware.BuildError as e:
        raise FirmwareCheckFailed(f"model {name} on {core} ({opt}): {e}") from None


def _measured_span(stream: streaming.StreamPlan) -> tuple[int, int]:
    """(warm, measure): a first window, then at least a window's worth of whole hops."""
    hops = -(-stream.length // stream.hop)
    return stream.length, hops * stream.hop


def run_stream_on_core(
    result: CompileResult,
    name: str,
    core: str,
    x: np.ndarray,
    chunks=(1,),
    opt: str = "-O2",
    timeout_s: float = 120,
    profiled: bool = False,
    build_dir: Path | None = None,
) -> firmware.RunResult:
    """Push samples x int16 [n][C] through the streaming API of `result` (compiled with
    streaming) on `core` in `chunks` (cycled); raises FirmwareCheckFailed unless every
    decision equals the numpy streaming reference's. Returns the run (its counts when
    `profiled`: the measured push, `_measured_span`)."""
    check_core(core)
    c_dir = _c_dir(result, name)
    stream = result.cmodel.stream
    if stream is None:
        raise TinyBNNError(f"model {name} was compiled without streaming")
    x = np.asarray(x, np.int16)
    warm, measure = _measured_span(stream.plan)
    if len(x) < warm + measure:
        raise TinyBNNError(f"the stream needs at least {warm + measure} samples, not {len(x)}")
    want = expected_pushes(result.program, stream.plan, x, list(chunks))
    header = _header(name, x, list(chunks), want, warm, measure)
    with _directory(build_dir, f"tinybnn-stream-{core}-") as wd:
        elf = _build(c_dir, name, core, wd, header, opt, profiled)
        counts = wd / "counts.txt" if profiled else None
        return _run_driver(elf, name, core, opt, timeout_s, counts)


def default_stream(program, samples: int, seed: int = 0) -> np.ndarray:
    """A seeded stream int16 [samples][C]: `profile.default_window`'s kind of signal."""
    from .profile import default_window

    windows = -(-samples // program.length)
    x = np.concatenate([default_window(program, seed + i)[0].T for i in range(windows)])
    return x[:samples]


@dataclass(frozen=True)
class StreamProfile:
    """Measured cost of the streaming API against the windowed loop at the same decisions."""

    name: str
    core: str
    hop: int
    rate_hz: float
    samples: int  # samples of the measured push
    decisions: int  # decisions it made
    instructions: int  # of that push
    state_bytes: int
    stack_bytes: int  # the push's peak stack use
    windowed: ProfileReport  # one windowed inference, same core and kernels

    @property
    def per_decision(self) -> float:
        return self.instructions / self.decisions

    @property
    def per_second(self) -> float:
        return self.instructions / self.samples * self.rate_hz

    @property
    def windowed_per_second(self) -> float:
        return self.windowed.instructions * self.rate_hz / self.hop

    @property
    def gain(self) -> float:
        return self.windowed_per_second / self.per_second

    def format(self) -> str:
        w = self.windowed
        return "\n".join(
            [
                f"model {self.name} streaming on {self.core} ({w.opt}, {w.kernels} kernels), "
                f"a decision every {self.hop} samples at {self.rate_hz:g} Hz",
                f"instructions per decision: streaming {self.per_decision:,.0f}, windowed "
                f"{w.instructions:,} (one inference of the whole window)",
                f"instructions per second of signal: streaming {self.per_second:,.0f}, windowed "
                f"{self.windowed_per_second:,.0f} at the same decision rate: "
                f"{self.gain:.1f}x fewer",
                f"RAM: state {self.state_bytes} B + stack {self.stack_bytes} B (the push); "
                f"windowed: arena {w.arena_bytes} B + stack {w.stack_bytes} B, plus the "
                "caller's window of samples",
                f"measured: one push of {self.samples} samples ({self.decisions} decisions) after "
                "a first window, instructions counted under QEMU (not cycles)",
            ]
        )


def profile_stream(
    model_or_path: Sequential | str | os.PathLike,
    core: str = "cortex-m4",
    opt: str = "-O2",
    name: str = "model",
    hop: int | None = None,
    rate_hz: float = 100.0,
    work_dir: str | os.PathLike | None = None,
    optimize: str = "speed",
    flash_budget: int | None = None,
    timeout_s: float = 300,
) -> StreamProfile:
    """Compile a model with streaming for `core`, measure one steady-state push under QEMU
    (checked exact against the reference) and the windowed inference (`profile.profile`)."""
    check_core(core)
    if not rate_hz > 0:
        raise TinyBNNError(f"sample rate {rate_hz}: give a positive rate in Hz")
    try:
        firmware.find_toolchain()
    except firmware.ToolchainMissing as e:
        raise TinyBNNError(str(e)) from None
    with _directory(work_dir, "tinybnn-profile-stream-") as wd:
        result = compile(
            model_or_path,
            wd / "c",
            name,
            target=core,
            optimize=optimize,
            flash_budget=flash_budget,
            streaming=True,
            hop=hop,
        )
        stream = result.cmodel.stream
        warm, measure = _measured_span(stream.plan)
        x = default_stream(result.program, warm + measure)
        run = run_stream_on_core(
            result, name, core, x, (1,), opt, timeout_s, profiled=True, build_dir=wd / "fw"
        )
        decisions = re.search(r"^MEASURED (\d+)$", run.output, re.MULTILINE)
        stack = re.search(r"^STACK push=(\d+)$", run.output, re.MULTILINE)
        if not run.counts or decisions is None or stack is None:
            raise FirmwareCheckFailed(
                f"model {name} on {core}: no measured push in {run.output.strip()!r}"
            )
        windowed = profile(
            model_or_path,
            core=core,
            opt=opt,
            name=name,
            work_dir=Path(wd) / "windowed",
            optimize=optimize,
            flash_budget=flash_budget,
        )
        return StreamProfile(
            name=name,
            core=core,
            hop=stream.plan.hop,
            rate_hz=rate_hz,
            samples=measure,
            decisions=int(decisions.group(1)),
            instructions=run.counts[0],
            state_bytes=stream.state_bytes,
            stack_bytes=int(stack.group(1)),
            windowed=windowed,
        )
