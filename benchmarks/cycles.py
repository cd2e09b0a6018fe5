"""Estimated cycles, time and current of the earbud demo's architecture on Cortex-M cores.

    .venv/bin/python benchmarks/cycles.py [--opt -O2] [--ua-per-mhz 58]

Profiles the earbud demo's architecture (`benchmarks/kernels.py`'s `earbud_model`: seeded
weights, calibrated statistics), compiled as the demo compiles it (`--flash-budget 12288`),
on Cortex-M0, M0+, M3 and M4 under QEMU: one seeded window, checked bit-exact against the
integer reference, counted per instruction class by the plugin. Then prices the counts with
each core's published timings (`tinybnn.firmware.cycles`): with zero wait states, the
M0/M0+ small multiplier, and 1 and 2 flash wait states with no prefetch or cache (an upper
bound). Time at 64 MHz; current at `--ua-per-mhz` (the datasheet's active current) and 20
windows per second, the demo's hop.

Writes benchmarks/results/cycles.md and prints it. These are estimates from published
timings, not measurements (docs/cycles.md lists the assumptions).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tinybnn
from tinybnn.compiler.targets import CORES
from tinybnn.firmware import cycles
from tinybnn.firmware.profile import OPT_LEVELS, profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from kernels import earbud_model  # noqa: E402
from profile_gesture import table, tool_version  # noqa: E402

MODEL_CORES = ["cortex-m0", "cortex-m0plus", "cortex-m3", "cortex-m4"]
FLASH_BUDGET = 12 * 1024  # as examples/earbud_gesture/demo.py
CLOCK_MHZ = 64.0


def fmt(c: cycles.Cycles) -> str:
    return f"{c.assumed:,}" + (f" ({c.least:,}-{c.most:,})" if c.least != c.most else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opt", choices=OPT_LEVELS, default="-O2")
    ap.add_argument("--ua-per-mhz", type=float, default=58.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cycles.md")
    args = ap.parse_args(argv)
    model = earbud_model()
    rows = []
    for core in MODEL_CORES:
        report = profile(model, core=core, opt=args.opt, flash_budget=FLASH_BUDGET)
        record = CORES[core]
        base = cycles.estimate(report.classes, record)
        small = (
            fmt(cycles.estimate(report.classes, record, cycles.Options(multiplier="small")))
            if record.timing.small_mul
            else "-"
        )
        waits = [
            cycles.estimate(report.classes, record, cycles.Options(wait_states=w)) for w in (1, 2)
        ]
        active = args.ua_per_mhz * CLOCK_MHZ
        ua = active * base.assumed * cycles.DEFAULT_RATE_HZ / (CLOCK_MHZ * 1e6)
        rows.append(
            [
                core,
                f"{report.instructions:,}",
                fmt(base),
                f"{base.assumed / report.instructions:.2f}",
                f"{base.assumed / CLOCK_MHZ:,.0f}",
                small,
                *(fmt(w) for w in waits),
                f"{ua:,.0f}",
            ]
        )
        print(core, rows[-1], flush=True)
    header = [
        "core",
        "instructions",
        "est. cycles (range)",
        "cycles / instr.",
        "us at 64 MHz",
        "small multiplier",
        "1 wait state",
        "2 wait states",
        f"uA at {args.ua_per_mhz:g} uA/MHz, 20/s",
    ]
    lines = [
        "# Estimated cycles: the earbud demo's architecture",
        "",
        f"Written by `benchmarks/cycles.py` (tinybnn {tinybnn.__version__}, "
        f"{tool_version('arm-none-eabi-gcc')} `{args.opt}`, {tool_version('qemu-system-arm')}). "
        '`conv_classifier(5, 128, 6, widths=(16, 32, 48, 64), first_weights="int8")` with '
        "seeded weights, compiled for each core with `--flash-budget 12288` as the demo; one "
        "seeded window, bit-exact against the reference. Instructions are counted under "
        "QEMU; cycles are **estimates**: the counted instruction classes priced with each "
        "core's Technical Reference Manual timings (docs/cycles.md), zero wait states unless "
        "said, the range where the manual gives one (M3/M4: pipeline refill P of 1-3, "
        "divides 2-12). Wait-state columns assume no prefetch and no cache: an upper bound. "
        "The M0+ runs on QEMU's M0 board (same ARMv6-M code); its timings are its own.",
        "",
        *table(header, rows),
        "",
        f"Current: the inference alone, {args.ua_per_mhz:g} uA/MHz at 64 MHz while it runs "
        "and 20 windows per second (the demo's 50 ms hop); the part's sleep current and the "
        "sensors come on top.",
        "",
    ]
    text = "\n".join(lines)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
