"""Profile a gesture-sized model on Cortex-M0, M4 and M7 under QEMU; write a markdown table.

    .venv/bin/python benchmarks/profile_gesture.py [MODEL.pt] [--opt -O2]

Without MODEL it profiles the model the firmware tests profile: `conv_classifier(6, 128, 6)`
(6 IMU channels x 128 samples, widths 32, 64, 64) with statistics from the tests' seeded
`calibrate`. The figures are measured (`tinybnn.firmware.profile`): flash and RAM from the ELF and
the painted stack, instructions per inference and per layer from QEMU's instruction-count
plugin on one seeded window, checked bit-exact against the integer reference. Writes
`benchmarks/results/profile_gesture.md` (or --out) and prints it.

Non-goal: timing. Instruction counts are not cycles.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

import tinybnn
from tinybnn import models
from tinybnn.firmware.profile import OPT_LEVELS, ProfileReport, profile

ROOT = Path(__file__).resolve().parent.parent
CORES = ["cortex-m0", "cortex-m4", "cortex-m7"]


def gesture_model() -> tinybnn.nn.Sequential:
    """The tests' gesture-sized model: seeded weights, calibrated statistics."""
    sys.path.insert(0, str(ROOT / "tests"))
    from modelcheck import calibrate, signals  # the tests' seeded helpers

    torch.manual_seed(0)
    return calibrate(models.conv_classifier(6, 128, 6), signals(16, 6, 128, 0), 0)


def tool_version(cmd: str) -> str:
    out = subprocess.run([cmd, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else cmd


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return lines


def markdown(reports: dict[str, ProfileReport], source: str, opt: str) -> str:
    first = next(iter(reports.values()))
    lines = [
        f"# Profile: {source}",
        "",
        f"Measured by `benchmarks/profile_gesture.py` (tinybnn {tinybnn.__version__}, "
        f"{tool_version('arm-none-eabi-gcc')} `{opt}`, {tool_version('qemu-system-arm')}). "
        "One inference on a seeded window; scores checked bit-exact against the reference.",
        "",
        "Instruction counts are guest instructions executed under QEMU, **not cycles**: QEMU "
        "models no pipeline, cache or flash wait states. The M0+ runs the M0's code, so "
        "it is not listed.",
        "",
        "## Per inference",
        "",
    ]
    lines += table(
        [
            "core",
            "flash B",
            "code B",
            "constants B",
            "RAM B",
            "arena B",
            "stack B",
            "instructions",
            "instructions / MAC",
        ],
        [
            [
                core,
                r.flash_bytes,
                r.code_bytes,
                r.constants_bytes + r.folded_bytes,
                r.ram_bytes,
                r.arena_bytes,
                r.stack_bytes,
                f"{r.instructions:,}",
                f"{r.instructions / r.macs:.2f}",
            ]
            for core, r in reports.items()
        ],
    )
    folded = sorted({a for r in reports.values() for a in r.folded_arrays})
    lines += [
        "",
        f"Flash = code (the model's functions and the kernels not inlined) + constants "
        f"(weights, thresholds: {first.constants_estimate} B, as the compiler counts) + "
        f"descriptors + data; "
        + (
            f"GCC folded {', '.join(folded)} into instructions, so those bytes are in the code. "
            if folded
            else ""
        )
        + "RAM = arena + data + bss + the stack of one inference (painted and measured).",
        "",
        "## Per layer: instructions (instructions per MAC)",
        "",
    ]
    cores = list(reports)
    rows = []
    for i, stage in enumerate(first.stages):
        macs = stage.binary_macs + stage.int_macs
        kind = "binary" if stage.binary_macs else "int" if stage.int_macs else "-"
        row = [f"L{stage.index} {stage.kernel}", stage.output, f"{macs:,} {kind}"]
        for core in cores:
            n = reports[core].stages[i].instructions
            row.append(f"{n:,} ({n / macs:.2f})" if macs else f"{n:,}")
        rows.append(row)
    rows.append(["call", "", ""] + [f"{reports[c].call_instructions:,}" for c in cores])
    lines += table(["layer", "output", "MACs"] + cores, rows)
    lines += ["", "The last layer's count includes the argmax and the return.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, help="a tinybnn model file")
    parser.add_argument("--opt", choices=OPT_LEVELS, default="-O2")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "profile_gesture.md"
    )
    args = parser.parse_args(argv)
    try:
        model = tinybnn.load(args.model) if args.model else gesture_model()
        source = args.model.name if args.model else "conv_classifier(6, 128, 6), 6 classes"
        reports = {core: profile(model, core, opt=args.opt, name="gesture") for core in CORES}
    except tinybnn.TinyBNNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    text = markdown(reports, source, args.opt)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
