"""Kernel variants on Cortex-M0, M4 and M7 under QEMU, against the CMSIS-NN int8 estimate.

    .venv/bin/python benchmarks/kernels.py [--opt -O2] [--cores cortex-m0 cortex-m4 cortex-m7]

Compiles the gesture-sized model (`conv_classifier(6, 128, 6)`, as benchmarks/
profile_gesture.py) and a few single-layer shapes twice per core: for the `portable` target
(the reference loops, the specification) and for the core's own target (the fast variants
the compiler picks, `tinybnn.codegen.KERNELS`). Each build runs one seeded window under QEMU,
checked bit-exact against the integer reference, and is measured as `tinybnn.profile` does:
instructions per inference and per layer from the instruction-count plugin, flash and RAM
from the ELF and the painted stack.

The CMSIS-NN figure is an estimate, as issue 6 defines it: its measured instructions per MAC
per layer kind (arm_convolve_s8 / arm_fully_connected_s8, v7.0.0) times this model's MACs
per layer. Where the issue gives a range, the estimate takes its low end (the most
favourable to CMSIS-NN). Pooling and argmax count nothing on the CMSIS-NN side.

Writes benchmarks/results/kernels.md and kernels.png. Non-goals: timing (instructions are
not cycles), and int8/float32 emissions of the same architecture (tinybnn emits neither).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import tinybnn
from tinybnn import profile as tp
from tinybnn import reference
from tinybnn.compiler import compile
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    Flatten,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    Sequential,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from modelcheck import calibrate, signals  # noqa: E402 - the tests' seeded helpers
from profile_gesture import gesture_model, table, tool_version  # noqa: E402

CORES = ["cortex-m0", "cortex-m4", "cortex-m7"]

# Issue 6: CMSIS-NN v7.0.0 instructions per MAC (low end of each range); M7 = M4 (within 0.5%).
CMSIS = {
    "cortex-m0": {"first": 10.1, "conv": 6.7, "fc": 6.4},
    "cortex-m4": {"first": 3.66, "conv": 1.93, "fc": 2.08},
    "cortex-m7": {"first": 3.66, "conv": 1.93, "fc": 2.08},
}
# The goal: binary layers (instr / binary MAC) and the whole model (x fewer than CMSIS).
GOAL = {"cortex-m0": (0.4, 10.0), "cortex-m4": (0.25, 5.0), "cortex-m7": (0.25, 5.0)}
CMSIS_KIND = {"iconv1d": "first", "bconv1d": "conv", "bdense": "fc", "classifier": "fc"}


def shape_models() -> dict[str, Sequential]:
    """Single layers worth measuring, each inside the smallest model that compiles."""

    def conv(c: int, t: int) -> Sequential:
        return Sequential(
            InputConv1d(6, c, 3, padding=1),
            BatchNormSign(c),
            BinaryConv1d(c, c, 3, padding=1),
            BatchNormSign(c),
            GlobalPool1d("sum"),
            Int8Linear(c, 4),
            input_shape=(6, t),
        )

    return {
        "bconv 32->32 k3 T64": conv(32, 64),
        "bconv 64->64 k3 T64": conv(64, 64),
        "bconv 128->128 k3 T32": conv(128, 32),
        "bdense 256->64": Sequential(
            InputConv1d(6, 32, 3, padding=1),
            BatchNormSign(32),
            Flatten(),
            BinaryLinear(256, 64),
            BatchNormSign(64),
            Int8Linear(64, 4),
            input_shape=(6, 8),
        ),
        "iconv 3ch->32 k5 T128 binary": Sequential(
            InputConv1d(3, 32, 5, padding=2),
            BatchNormSign(32),
            GlobalPool1d("sum"),
            Int8Linear(32, 4),
            input_shape=(3, 128),
        ),
        "iconv 6ch->32 k5 T128 int8": Sequential(
            InputConv1d(6, 32, 5, padding=2, weights="int8"),
            BatchNormSign(32),
            GlobalPool1d("sum"),
            Int8Linear(32, 4),
            input_shape=(6, 128),
        ),
    }


def measure(
    model: Sequential, core: str, target: str, opt: str
) -> tuple[tp.ProfileReport, list[str]]:
    """`tinybnn.profile.profile`, compiled for `target` (the profile compiles for portable)."""
    name = "bench"
    with tempfile.TemporaryDirectory(prefix="tinybnn-kernels-") as tmp:
        wd = Path(tmp)
        result = compile(model, wd / "c", name, target=target)
        x = tp.default_window(result.program)
        scores = reference.run(result.program, x)
        c_dir = result.files[0].parent
        plain = tp._build_driver(c_dir, name, core, wd / "plain", x, scores, opt, False)
        output = tp._run_driver(plain, name, core, opt, 120).output
        marked = tp._build_driver(c_dir, name, core, wd / "marked", x, scores, opt, True)
        counts = tp._run_driver(marked, name, core, opt, 120, wd / "counts.txt").counts
        report = tp._measure(result.cmodel, plain, output, counts or [], core, opt)
        variants = [s.variant for s in result.cmodel.stages]
    return report, variants


def cmsis_estimate(report: tp.ProfileReport, core: str) -> float:
    rates = CMSIS[core]
    return sum(
        (s.binary_macs + s.int_macs) * rates[CMSIS_KIND[s.kernel]]
        for s in report.stages
        if s.kernel in CMSIS_KIND
    )


def per_mac(n: int, macs: int) -> str:
    return f"{n / macs:.3f}" if macs else "-"


def markdown(gesture: dict, shapes: dict, opt: str) -> str:
    lines = [
        "# Kernel variants against CMSIS-NN int8",
        "",
        f"Measured by `benchmarks/kernels.py` (tinybnn {tinybnn.__version__}, "
        f"{tool_version('arm-none-eabi-gcc')} `{opt}`, {tool_version('qemu-system-arm')}). "
        "One inference on a seeded window per build; scores checked bit-exact against the "
        "integer reference. Instruction counts are guest instructions under QEMU, **not "
        "cycles**.",
        "",
        "`portable` is the reference loops (`--target` default); `fast` is the same model "
        "compiled for the core (`--target cortex-mN`). CMSIS-NN is the estimate of issue 6: "
        "its measured instructions per MAC per layer kind (low end of each range) times this "
        "model's MACs per layer.",
        "",
        "## Gesture model, conv_classifier(6, 128, 6): per inference",
        "",
    ]
    rows = []
    for core, (port, fast, _) in gesture.items():
        est = cmsis_estimate(fast, core)
        goal = GOAL[core][1]
        rows.append(
            [
                core,
                f"{port.instructions:,}",
                f"{fast.instructions:,}",
                f"{port.instructions / fast.instructions:.2f}x",
                f"{est:,.0f}",
                f"**{est / fast.instructions:.2f}x** (goal {goal:g}x)",
                f"{port.flash_bytes} / {fast.flash_bytes}",
                f"{port.ram_bytes} / {fast.ram_bytes}",
                f"{port.arena_bytes} / {fast.arena_bytes}",
            ]
        )
    lines += table(
        [
            "core",
            "portable instr",
            "fast instr",
            "speed-up",
            "CMSIS-NN est.",
            "fewer than CMSIS-NN",
            "flash B port/fast",
            "RAM B port/fast",
            "arena B port/fast",
        ],
        rows,
    )
    first = next(iter(gesture.values()))
    lines += [
        "",
        "Fast variants chosen: "
        + ", ".join(
            f"L{s.index} {s.kernel}/{v}" for s, v in zip(first[1].stages, first[2], strict=True)
        )
        + ". Flash = code + constants + descriptors; RAM = arena + data + bss + stack.",
        "",
        "## Gesture model: instructions per MAC per layer (portable -> fast; CMSIS-NN)",
        "",
    ]
    rows = []
    for i, stage in enumerate(first[0].stages):
        macs = stage.binary_macs + stage.int_macs
        kind = "binary" if stage.binary_macs else "int" if stage.int_macs else "-"
        row = [f"L{i} {stage.kernel}", f"{macs:,} {kind}"]
        for core, (port, fast, _) in gesture.items():
            a, b = port.stages[i].instructions, fast.stages[i].instructions
            cm = CMSIS[core].get(CMSIS_KIND.get(stage.kernel, ""), None)
            cell = f"{per_mac(a, macs)} -> **{per_mac(b, macs)}**" if macs else f"{a:,} -> {b:,}"
            if macs and cm:
                cell += f"; {cm:g}"
            row.append(cell)
        rows.append(row)
    lines += table(["layer", "MACs"] + list(gesture), rows)
    lines += [
        "",
        "## Layer shapes: instructions per MAC of the measured layer (portable -> fast)",
        "",
    ]
    rows = []
    for label, per_core in shapes.items():
        row = [label]
        for port, fast, variants, index in per_core.values():
            s_port, s_fast = port.stages[index], fast.stages[index]
            macs = s_port.binary_macs + s_port.int_macs
            row.append(
                f"{per_mac(s_port.instructions, macs)} -> **{per_mac(s_fast.instructions, macs)}**"
                f" ({variants[index]})"
            )
        rows.append(row)
    lines += table(["layer"] + list(next(iter(shapes.values()))), rows)
    lines += [
        "",
        "Goals of issue 6: binary layers <= 0.25 instructions per binary MAC on M4 and <= 0.4 "
        "on M0; the whole model >= 5x fewer instructions than CMSIS-NN on M4 and >= 10x on M0.",
        "",
    ]
    return "\n".join(lines)


def plot(gesture: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cores = list(gesture)
    port = [gesture[c][0].instructions for c in cores]
    fast = [gesture[c][1].instructions for c in cores]
    est = [cmsis_estimate(gesture[c][1], c) for c in cores]
    x = np.arange(len(cores))
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, (vals, label) in enumerate(
        [(est, "CMSIS-NN int8 (estimate)"), (port, "tinybnn portable"), (fast, "tinybnn fast")]
    ):
        ax.bar(x + (k - 1) * 0.27, vals, 0.27, label=label)
    ax.set_xticks(x, cores)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e5)
    ax.set_ylabel("instructions per inference (QEMU)")
    ax.set_title("conv_classifier(6, 128, 6): one inference")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt", choices=tp.OPT_LEVELS, default="-O2")
    parser.add_argument("--cores", nargs="+", default=CORES, choices=CORES)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "kernels")
    args = parser.parse_args(argv)
    model = gesture_model()
    gesture = {}
    for core in args.cores:
        port, _ = measure(model, core, "portable", args.opt)
        fast, variants = measure(model, core, core, args.opt)
        gesture[core] = (port, fast, variants)
        print(f"gesture {core}: {port.instructions:,} -> {fast.instructions:,}", flush=True)
    shapes: dict[str, dict] = {}
    torch.manual_seed(0)
    for label, shape in shape_models().items():
        c, t = shape.input_shape
        calibrate(shape, signals(12, c, t, 0), 0)
        index = 0 if label.startswith("iconv") else 1
        shapes[label] = {}
        for core in args.cores:
            port, _ = measure(shape, core, "portable", args.opt)
            fast, variants = measure(shape, core, core, args.opt)
            shapes[label][core] = (port, fast, variants, index)
        print(f"{label}: done", flush=True)
    text = markdown(gesture, shapes, args.opt)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    plot(gesture, args.out.with_suffix(".png"))
    print(text)
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
