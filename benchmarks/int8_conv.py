"""The int8 hidden convolution (int8_conv1d) on Cortex-M0, M4 and M7 under QEMU: instructions
per MAC of its stage, against the binary convolution of the same shape and CMSIS-NN's
arm_convolve_s8 rate (issue 6's figures, as benchmarks/kernels.py takes them).

    .venv/bin/python benchmarks/int8_conv.py [--opt -O2] [--cores cortex-m0 cortex-m4 cortex-m7]

Each shape is a k=3 convolution of C -> C channels over T steps ('same' padding), inside the
smallest model that compiles, with seeded weights and calibrated statistics; compiled for
the core's own target (optimize="speed": xs on cores with SMLAD, xm elsewhere) and measured as `tinybnn profile` does (the instruction-count plugin; flash from
the ELF), one window checked bit-exact against the integer reference.

Writes benchmarks/results/int8_conv.md. With `--table act`, int8 activations between layers
instead (int8_conv1d with activation="int8"): the same k=3 shapes as C -> C convolutions
from bits to int8 codes and from codes to codes, requantisation included, in the test
suite's model (tests/test_int8_act.py: bits -> codes -> codes -> bits), written to
benchmarks/results/int8_act.md. Non-goal: timing (instructions are not cycles).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    GlobalPool1d,
    InputConv1d,
    Int8Conv1d,
    Int8Linear,
    Sequential,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from kernels import CMSIS, measure  # noqa: E402
from modelcheck import calibrate, signals  # noqa: E402
from profile_gesture import table  # noqa: E402
from test_int8_act import act_case  # noqa: E402
from test_int8_act import build as act_model  # noqa: E402

CORES = ["cortex-m0", "cortex-m4", "cortex-m7"]
SHAPES = [(32, 64), (48, 64), (64, 64)]  # (channels, steps)
KINDS = {"int8": Int8Conv1d, "binary": BinaryConv1d}


def conv_model(kind: str, c: int, t: int) -> Sequential:
    torch.manual_seed(0)
    model = Sequential(
        InputConv1d(6, c, 3, padding=1),
        BatchNormSign(c),
        KINDS[kind](c, c, 3, padding=1),
        BatchNormSign(c),
        GlobalPool1d("sum"),
        Int8Linear(c, 4),
        input_shape=(6, t),
    )
    return calibrate(model, signals(12, 6, t, 0), 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt", default="-O2")
    parser.add_argument("--cores", nargs="+", default=CORES)
    parser.add_argument("--table", choices=("conv", "act"), default="conv")
    args = parser.parse_args(argv)
    if args.table == "act":
        return act_table(args)
    rows = []
    for core in args.cores:
        for c, t in SHAPES:
            cells = [core, f"{c}->{c} k3 T{t}"]
            for kind in KINDS:
                build = measure(conv_model(kind, c, t), core, core, "speed", args.opt)
                stage = build.report.stages[1]
                macs = stage.binary_macs + stage.int_macs
                cells += [
                    build.variants[1],
                    f"{stage.instructions:,}",
                    f"{stage.instructions / macs:.3f}",
                    f"{stage.constants_bytes:,}",
                ]
            cells.append(f"{CMSIS[core]['conv']}")
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    head = ["core", "shape"]
    for kind in KINDS:
        head += [f"{kind} variant", f"{kind} instr", f"{kind} instr/MAC", f"{kind} flash B"]
    head.append("CMSIS-NN conv instr/MAC")
    text = "\n".join(
        [
            "# int8_conv1d: instructions per MAC under QEMU",
            "",
            f"Written by benchmarks/int8_conv.py ({args.opt}); the hidden conv stage of each "
            "model (its thresholds and pooling included), one seeded window, bit-exact. "
            "Flash: the stage's constants in .rodata.",
            "",
            *table(head, rows),
            "",
        ]
    )
    out = ROOT / "benchmarks" / "results" / "int8_conv.md"
    out.write_text(text)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


ACT_STAGES = {1: "bits->codes", 2: "codes->codes"}  # stage index -> the crossing
ACT_SHAPES = [(32, 32), (48, 32), (64, 32)]  # T = 32: int8 codes and rows fit the M0's 16 KB


def act_table(args) -> int:
    rows = []
    for core in args.cores:
        for c, t in ACT_SHAPES:
            layers, length = act_case(c, 3, 1, 1, t + 2)  # the first layer (k=3) takes 2
            model = act_model(layers, length)
            build = measure(model, core, core, "speed", args.opt)
            ref = measure(model, core, core, "size", args.opt)  # the reference loops
            for i, crossing in ACT_STAGES.items():
                stage, ref_stage = build.report.stages[i], ref.report.stages[i]
                macs = stage.binary_macs + stage.int_macs
                cells = [core, f"{c}->{c} k3 T{t}", crossing, build.variants[i]]
                cells += [f"{stage.instructions:,}", f"{stage.instructions / macs:.3f}"]
                cells += [f"{stage.constants_bytes:,}", f"{ref_stage.instructions / macs:.3f}"]
                cells.append(str(CMSIS.get(core, {}).get("conv", "-")))
                rows.append(cells)
                print(" | ".join(cells), flush=True)
    head = ["core", "shape", "crossing", "variant", "instr", "instr/MAC", "flash B"]
    head += ["reference loop instr/MAC", "CMSIS-NN conv instr/MAC"]
    text = "\n".join(
        [
            "# int8 activations between layers: instructions per MAC under QEMU",
            "",
            f"Written by benchmarks/int8_conv.py --table act ({args.opt}); the int8_conv1d "
            "stages with activation='int8' of tests/test_int8_act.py's model (bits -> codes "
            "-> codes -> bits), requantisation (and its clamp, multiply, shift) included, one "
            "seeded window, bit-exact. Flash: the stage's constants in .rodata (weights as "
            "int16 pairs for xs, and the requantisation's 17 bytes per channel). The "
            "reference loops: the same model built with optimize='size'.",
            "",
            *table(head, rows),
            "",
        ]
    )
    out = ROOT / "benchmarks" / "results" / "int8_act.md"
    old = out.read_text() if out.exists() else ""
    kept = old[old.index("\n## ") :] if "\n## " in old else ""  # others' sections (a8.py)
    out.write_text(text + kept)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
