"""Streaming against windowed inference on Cortex-M cores under QEMU; writes a markdown table.

    .venv/bin/python benchmarks/streaming.py [STREAMING.pt WINDOWED.pt] [--cores ...]

Without model files it measures the earbud demo's architecture (5 channels x 128 samples at
100 Hz, int8 first layer, widths 16/32/48/64, pool 2) with the tests' seeded `calibrate`
statistics: once with padding "valid", streamed (`tinybnn.firmware.streaming.profile_stream`:
one push of whole hops after a first window, exact against the reference), and once as
today's demo builds it (padding "same"), windowed (`profile.profile`), run every 5 samples
as the demo's firmware loop does. Both with the demo's --flash-budget 12288. Writes
`benchmarks/results/streaming.md` (or --out) and prints it.

Non-goal: timing. Instruction counts are not cycles.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from tinybnn import models
from tinybnn.firmware.profile import profile
from tinybnn.firmware.streaming import profile_stream

ROOT = Path(__file__).resolve().parent.parent
RATE_HZ = 100.0
TODAY_HOP = 5  # the demo's windowed loop: a window every 50 ms
FLASH_BUDGET = 12 * 1024


def earbud(padding: str):
    """The demo's architecture with seeded weights and calibrated statistics."""
    sys.path.insert(0, str(ROOT / "tests"))
    from modelcheck import calibrate, signals  # the tests' seeded helpers

    torch.manual_seed(0)
    model = models.conv_classifier(
        5, 128, 6, widths=(16, 32, 48, 64), first_weights="int8", padding=padding
    )
    return calibrate(model, signals(16, 5, 128, 0), 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="streaming and windowed model")
    parser.add_argument("--cores", nargs="+", default=["cortex-m0", "cortex-m4", "cortex-m7"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/streaming.md")
    args = parser.parse_args(argv)
    if args.models and len(args.models) != 2:
        parser.error("give both model files (streaming, windowed), or none")
    streamed, windowed = args.models or (earbud("valid"), earbud("same"))
    what = (
        f"{args.models[0]} streamed, {args.models[1]} windowed"
        if args.models
        else "the earbud demo's architecture, seeded (benchmarks/streaming.py)"
    )
    rows = []
    for core in args.cores:
        s = profile_stream(
            streamed, core, name="gesture", rate_hz=RATE_HZ, flash_budget=FLASH_BUDGET
        )
        w = profile(windowed, core, name="gesture", flash_budget=FLASH_BUDGET)
        today = w.instructions * RATE_HZ / TODAY_HOP
        rows.append(
            f"| {core} | {s.hop} | {s.per_decision:,.0f} | {s.per_second:,.0f} | "
            f"{s.windowed_per_second:,.0f} ({s.gain:.1f}x) | {w.instructions:,} | "
            f"{today:,.0f} | **{today / s.per_second:.1f}x** | {s.state_bytes} + "
            f"{s.stack_bytes} | {w.arena_bytes} + {w.stack_bytes} + 1,280 |"
        )
        print(core, "done", file=sys.stderr)
    text = "\n".join(
        [
            "# Streaming against windowed inference",
            "",
            f"Model: {what}. Sample rate {RATE_HZ:g} Hz; arm-none-eabi-gcc -O2, each core's "
            f"kernels, --flash-budget {FLASH_BUDGET}. Instructions executed under QEMU "
            "(not cycles), every run checked exact against the integer reference.",
            "",
            "- streaming: the padding-'valid' model's streaming API, a decision every hop "
            "(its total stride); per decision and per second of signal, measured on one push "
            "of whole hops after a first window;",
            "- windowed at the same hop: the same model's one inference times the decisions "
            "per second;",
            f"- today's loop: the padding-'same' model (as the demo trained it) classifying "
            f"the whole window every {TODAY_HOP} samples (50 ms), as "
            "examples/earbud_gesture/firmware/detector.c did.",
            "",
            "| core | hop | streaming instr. / decision | streaming instr. / s | windowed "
            "at the same hop, instr. / s | today's instr. / window | today's instr. / s | "
            "today / streaming | streaming RAM: state + stack, B | windowed RAM: arena + "
            "stack + window of samples, B |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
