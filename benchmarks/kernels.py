"""Kernel variants on Cortex-M0, M4 and M7 under QEMU, against the CMSIS-NN int8 estimate
and the same architecture emitted as plain int8 and float32 C.

    .venv/bin/python benchmarks/kernels.py [--opt -O2] [--cores cortex-m0 cortex-m4 cortex-m7]

Three whole models: the gesture model of issue 6 (`conv_classifier(6, 128, 6)`, as
benchmarks/profile_gesture.py), the earbud demo's architecture (`conv_classifier(5, 128,
6, widths=(16, 32, 48, 64), first_weights="int8")`) and the same with ternary first-layer
weights (issue 18), all with the tests' seeded weights and calibrated statistics; and a few
single-layer shapes. Each is compiled three times per core:
`portable` (the reference loops, the specification), `size` (the core's target, optimize=
"size": the fastest variants whose tables cost no more flash than the packed weights) and
`speed` (the core's target, the default optimize="speed"), `tinybnn.compiler.variants`. Each
build runs one seeded window under QEMU, checked bit-exact against the integer reference,
and is measured as `tinybnn.firmware.profile` does: instructions per inference and per layer from
the instruction-count plugin, flash and RAM from the ELF and the painted stack.

The CMSIS-NN figure is an estimate, as issue 6 defines it: its measured instructions per MAC
per layer kind (arm_convolve_s8 / arm_fully_connected_s8, v7.0.0) times this model's MACs
per layer. Where the issue gives a range, the estimate takes its low end (the most
favourable to CMSIS-NN). Pooling and argmax count nothing on the CMSIS-NN side. The int8
and float32 C of the same architecture are measured by benchmarks/baselines.py
(`measure_baselines`, plain TFLM-style loops); a network too big for the M0 board's RAM is
marked "does not fit" (it ran the same code on the M3 board).

Writes benchmarks/results/kernels.md and kernels.png. Non-goal: timing (instructions are
not cycles).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import tinybnn
from tinybnn import models
from tinybnn.compiler import reference
from tinybnn.compiler.api import compile
from tinybnn.firmware import profile as tp
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from baselines import KINDS, BaselineReport, LayerCount, measure_baselines  # noqa: E402
from modelcheck import calibrate, signals  # noqa: E402 - the tests' seeded helpers
from profile_gesture import gesture_model, table, tool_version  # noqa: E402

CORES = ["cortex-m0", "cortex-m4", "cortex-m7"]
# The three tinybnn builds: name -> (target, optimize); None is the core's own target.
BUILDS = {"portable": ("portable", "speed"), "size": (None, "size"), "speed": (None, "speed")}
KIND_LABEL = {"int8": "int8 C", "float32": "float32 C"}

# Issue 6: CMSIS-NN v7.0.0 instructions per MAC (low end of each range); M7 = M4 (within 0.5%).
CMSIS = {
    "cortex-m0": {"first": 10.1, "conv": 6.7, "fc": 6.4},
    "cortex-m4": {"first": 3.66, "conv": 1.93, "fc": 2.08},
    "cortex-m7": {"first": 3.66, "conv": 1.93, "fc": 2.08},
}
# The goal: binary layers (instr / binary MAC) and the whole model (x fewer than CMSIS).
GOAL = {"cortex-m0": (0.4, 10.0), "cortex-m4": (0.25, 5.0), "cortex-m7": (0.25, 5.0)}
CMSIS_KIND = {"iconv1d": "first", "bconv1d": "conv", "bdense": "fc", "classifier": "fc"}


def earbud_model(first_weights: str = "int8") -> Sequential:
    """The earbud demo's architecture: seeded weights, calibrated statistics."""
    torch.manual_seed(0)
    model = models.conv_classifier(5, 128, 6, widths=(16, 32, 48, 64), first_weights=first_weights)
    return calibrate(model, signals(16, 5, 128, 0), 0)


# name -> (architecture, the seeded and calibrated model)
WHOLE_MODELS = {
    "Gesture model": ("conv_classifier(6, 128, 6)", gesture_model),
    "Earbud demo": (
        'conv_classifier(5, 128, 6, widths=(16, 32, 48, 64), first_weights="int8")',
        earbud_model,
    ),
    # issue 18: the same with ternary first-layer weights (sso); its accuracy against int8's
    # on the demo's data is in benchmarks/results/first_layer.md
    "Earbud demo, ternary first layer": (
        'conv_classifier(5, 128, 6, widths=(16, 32, 48, 64), first_weights="ternary")',
        lambda: earbud_model("ternary"),
    ),
}


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
        **{
            f"iconv 5ch->16 k5 T128 pool2 {w}": Sequential(
                InputConv1d(5, 16, 5, padding=2, weights=w),
                MaxPool1d(2),
                BatchNormSign(16),
                GlobalPool1d("sum"),
                Int8Linear(16, 4),
                input_shape=(5, 128),
            )
            for w in ("binary", "ternary", "int8")
        },
        "iconv 6ch->32 k5 T128 int8": Sequential(
            InputConv1d(6, 32, 5, padding=2, weights="int8"),
            BatchNormSign(32),
            GlobalPool1d("sum"),
            Int8Linear(32, 4),
            input_shape=(6, 128),
        ),
    }


@dataclass(frozen=True)
class Build:
    """One tinybnn build measured on one core, and the variant of each stage."""

    report: tp.ProfileReport
    variants: list[str]


@dataclass(frozen=True)
class CoreRun:
    """A whole model on one core: the tinybnn builds (BUILDS) and the baselines (KINDS)."""

    builds: dict[str, Build]
    baselines: dict[str, BaselineReport]


def measure(model: Sequential, core: str, target: str, optimize: str, opt: str) -> Build:
    """`tinybnn.firmware.profile.profile`, compiled for `target` favouring `optimize`, with the
    variant of each stage (which the profile does not report)."""
    name = "bench"
    with tempfile.TemporaryDirectory(prefix="tinybnn-kernels-") as tmp:
        wd = Path(tmp)
        result = compile(model, wd / "c", name, target=target, optimize=optimize)
        x = tp.default_window(result.program)
        scores = reference.run(result.program, x)
        c_dir = result.files[0].parent
        plain = tp._build_driver(c_dir, name, core, wd / "plain", x, scores, opt, False)
        output = tp._run_driver(plain, name, core, opt, 120).output
        marked = tp._build_driver(c_dir, name, core, wd / "marked", x, scores, opt, True)
        counts = tp._run_driver(marked, name, core, opt, 120, wd / "counts.txt").counts
        report = tp._measure(result.cmodel, plain, output, counts or [], core, opt)
        return Build(report, [s.variant.name for s in result.cmodel.stages])


def measure_builds(model: Sequential, core: str, opt: str) -> dict[str, Build]:
    return {
        build: measure(model, core, target or core, optimize, opt)
        for build, (target, optimize) in BUILDS.items()
    }


def cmsis_estimate(report: tp.ProfileReport, core: str) -> float:
    rates = CMSIS[core]
    return sum(
        stage_macs(s) * rates[CMSIS_KIND[s.kernel]] for s in report.stages if s.kernel in CMSIS_KIND
    )


def per_mac(n: int, macs: int) -> str:
    return f"{n / macs:.3f}" if macs else "-"


def stage_macs(stage: tp.StageProfile) -> int:
    return stage.binary_macs + stage.int_macs


def fit_note(r: BaselineReport, value: str) -> str:
    return value if r.fits else f"{value} (does not fit)"


def matching_layers(report: tp.ProfileReport, layers: list[LayerCount]) -> list:
    """The baseline layer of each stage: for the stages with MACs, the next baseline layer
    with the same MAC count, in order; None for the rest (pooling, nothing to match)."""
    rest = iter(layers)
    matched = []
    for stage in report.stages:
        macs = stage_macs(stage)
        if not macs:
            matched.append(None)
            continue
        layer = next((a for a in rest if a.macs == macs), None)
        if layer is None:
            raise ValueError(f"L{stage.index} {stage.kernel}: no baseline layer of {macs} MACs")
        matched.append(layer)
    return matched


def arrows(builds: dict[str, Build], i: int | None = None, per: int = 0) -> str:
    """portable -> size -> **speed**: instructions per inference, or of stage i (per MAC
    when `per`)."""
    values = []
    for b in builds.values():
        n = b.report.instructions if i is None else b.report.stages[i].instructions
        values.append(per_mac(n, per) if per else f"{n:,}")
    return " -> ".join(values[:-1] + [f"**{values[-1]}**"])


def variant_pair(builds: dict[str, Build], i: int) -> str:
    return f"{builds['size'].variants[i]} / {builds['speed'].variants[i]}"


def per_inference(runs: dict[str, CoreRun]) -> list[str]:
    """Two tables: instructions and ratios; flash and RAM."""
    rows = []
    for core, run in runs.items():
        b, bl = run.builds, run.baselines
        est = cmsis_estimate(b["speed"].report, core)
        speed, size = b["speed"].report.instructions, b["size"].report.instructions
        rows.append(
            [core]
            + [f"{b[k].report.instructions:,}" for k in BUILDS]
            + [
                f"{est:,.0f}",
                f"**{est / speed:.2f}x** (goal {GOAL[core][1]:g}x)",
                f"{est / size:.2f}x",
            ]
            + [fit_note(bl[k], f"{bl[k].instructions:,}") for k in KINDS]
            + [f"{bl['int8'].instructions / speed:.1f}x"]
        )
    lines = table(
        ["core"]
        + [f"{k} instr" for k in BUILDS]
        + [
            "CMSIS-NN est.",
            "speed: fewer than CMSIS-NN",
            "size: fewer than CMSIS-NN",
            "int8 C instr",
            "float32 C instr",
            "speed: fewer than int8 C",
        ],
        rows,
    )
    rows = [
        [core]
        + [run.builds[k].report.flash_bytes for k in BUILDS]
        + [run.baselines[k].flash_bytes for k in KINDS]
        + [run.builds[k].report.ram_bytes for k in BUILDS]
        + [fit_note(run.baselines[k], str(run.baselines[k].ram_bytes)) for k in KINDS]
        for core, run in runs.items()
    ]
    kinds = list(BUILDS) + [KIND_LABEL[k] for k in KINDS]
    return (
        lines
        + [""]
        + table(["core"] + [f"flash B {k}" for k in kinds] + [f"RAM B {k}" for k in kinds], rows)
    )


def per_layer_rows(runs: dict[str, CoreRun]) -> list[list[str]]:
    """One row per stage and core: per MAC portable -> size -> speed, CMSIS-NN, int8 C,
    float32 C (instructions for a stage without MACs)."""
    first = next(iter(runs.values())).builds["portable"].report
    matched = {
        core: {k: matching_layers(first, run.baselines[k].layers) for k in KINDS}
        for core, run in runs.items()
    }
    rows = []
    for i, stage in enumerate(first.stages):
        macs = stage_macs(stage)
        kind = "binary" if stage.binary_macs else "int" if stage.int_macs else "-"
        for core, run in runs.items():
            cms = CMSIS[core].get(CMSIS_KIND.get(stage.kernel, ""))
            layers = [matched[core][k][i] for k in KINDS]
            rows.append(
                [f"L{stage.index} {stage.kernel}", f"{macs:,} {kind}", core]
                + [variant_pair(run.builds, i), arrows(run.builds, i, macs)]
                + [f"{cms:g}" if macs and cms else "-"]
                + [per_mac(a.instructions, macs) if a else "-" for a in layers]
            )
    return rows


def variant_note(runs: dict[str, CoreRun]) -> str:
    chosen = {
        core: ", ".join(
            f"L{i} {variant_pair(run.builds, i)}" for i in range(len(run.builds["size"].variants))
        )
        for core, run in runs.items()
    }
    if len(set(chosen.values())) == 1:
        return f"Variants chosen (size / speed), on every core: {next(iter(chosen.values()))}."
    return "Variants chosen (size / speed): " + "; ".join(
        f"{core}: {v}" for core, v in chosen.items()
    )


def model_section(name: str, runs: dict[str, CoreRun]) -> list[str]:
    lines = [f"## {name}, {WHOLE_MODELS[name][0]}", "", "### Per inference", ""]
    lines += per_inference(runs)
    lines += [
        "",
        "Flash = code + constants + descriptors; RAM = arena + data + bss + stack. "
        "`fewer than` = the other's instructions / tinybnn's.",
        "",
        "### Per layer: instructions per MAC (portable -> size -> speed)",
        "",
    ]
    lines += table(
        [
            "layer",
            "MACs",
            "core",
            "variant size / speed",
            "portable -> size -> speed",
            "CMSIS-NN",
            "int8 C",
            "float32 C",
        ],
        per_layer_rows(runs),
    )
    lines += [
        "",
        variant_note(runs) + " A stage without MACs shows instructions. The int8 C and "
        "float32 C layers include their folded BatchNorm and ReLU; their pooling layers are "
        "not matched.",
        "",
    ]
    return lines


def shapes_section(shapes: dict[str, dict[str, dict[str, Build]]]) -> list[str]:
    lines = [
        "## Layer shapes: instructions per MAC of the measured layer (portable -> size -> speed)",
        "",
    ]
    rows = []
    for label, per_core in shapes.items():
        row = [label]
        for builds in per_core.values():
            index = shape_index(label)
            macs = stage_macs(builds["portable"].report.stages[index])
            row.append(f"{arrows(builds, index, macs)} ({variant_pair(builds, index)})")
        rows.append(row)
    lines += table(["layer"] + list(next(iter(shapes.values()))), rows)
    return lines + ["", "In brackets: the variant of size / speed.", ""]


def shape_index(label: str) -> int:
    """The measured stage of a shape model: the first layer, or the one after it."""
    return 0 if label.startswith("iconv") else 1


def gain(run: CoreRun, attr: str, build: str, base: str) -> int:
    """How many more bytes (`attr` of the report) build `build` takes than `base`."""
    return getattr(run.builds[build].report, attr) - getattr(run.builds[base].report, attr)


def table_constants(run: CoreRun) -> str:
    """The constants of the stages whose size and speed variants differ, size -> speed."""
    size, speed = run.builds["size"], run.builds["speed"]
    pairs = zip(size.variants, speed.variants, strict=True)
    differ = [i for i, (a, b) in enumerate(pairs) if a != b]
    small = sum(size.report.stages[i].constants_bytes for i in differ)
    big = sum(speed.report.stages[i].constants_bytes for i in differ)
    stages = ", ".join(f"L{i}" for i in differ) or "none"
    return f"{stages}: {small:,} -> {big:,} B" + (f" ({big / small:.1f}x)" if small else "")


def cost_section(whole: dict[str, dict[str, CoreRun]]) -> list[str]:
    """speed's flash over size's, and the fast builds' arena over portable's."""
    lines = ["## Flash and RAM cost of the variants", ""]
    for name, runs in whole.items():
        flash = ", ".join(
            f"{core} {gain(run, 'flash_bytes', 'speed', 'size'):+,} B" for core, run in runs.items()
        )
        constants = "; ".join(dict.fromkeys(table_constants(run) for run in runs.values()))
        arena = ", ".join(
            f"{core} {gain(run, 'arena_bytes', 'size', 'portable'):+,} / "
            f"{gain(run, 'arena_bytes', 'speed', 'portable'):+,} B"
            for core, run in runs.items()
        )
        first = dict.fromkeys(variant_pair(run.builds, 0) for run in runs.values())
        lines += [
            f"- {name}: flash of speed minus size: {flash}; constants of the stages whose "
            f"variant differs, size -> speed: {constants}. Arena of size / speed minus "
            f"portable (L0 {', '.join(first)}): {arena}."
        ]
    return lines + [
        "",
        "The subset tables of `vst` hold 16 words per 3 input bits and 32 output channels, "
        "5.3x the packed weights, in flash; `size` keeps the table-free `vsl`. The first "
        "layer's fast variants keep their tables in the RAM arena (`sst`: the subset sums, "
        "`xn`, `xq`, `xs`: the ring of input steps), and size and speed both choose them.",
        "",
    ]


def layer_miss(where: str, stage: tp.StageProfile, core: str) -> list[str]:
    """[what is missed] when a binary stage's speed build runs above the core's goal."""
    goal = GOAL[core][0]
    if not stage.binary_macs or stage.instructions / stage.binary_macs <= goal:
        return []
    rate = stage.instructions / stage.binary_macs
    return [f"{where} on {core}: {rate:.3f} instr / binary MAC (goal <= {goal:g})"]


def missed_goals(
    whole: dict[str, dict[str, CoreRun]], shapes: dict[str, dict[str, dict[str, Build]]]
) -> list[str]:
    """Every binary layer above its core's goal (speed build), every whole model below its."""
    missed = []
    for name, runs in whole.items():
        for core, run in runs.items():
            report = run.builds["speed"].report
            for stage in report.stages:
                missed += layer_miss(f"{name}, L{stage.index} {stage.kernel}", stage, core)
            ratio = cmsis_estimate(report, core) / report.instructions
            if ratio < GOAL[core][1]:
                missed.append(
                    f"{name}, whole model on {core}: {ratio:.2f}x fewer than CMSIS-NN "
                    f"(goal >= {GOAL[core][1]:g}x)"
                )
    for label, per_core in shapes.items():
        for core, builds in per_core.items():
            stage = builds["speed"].report.stages[shape_index(label)]
            missed += layer_miss(f"Layer shape {label}", stage, core)
    lines = ["## Where the goals are missed", ""]
    return lines + ([f"- {m}" for m in missed] or ["None: every goal is met."]) + [""] + WHY


# Why the misses above happen: mechanisms, read off the generated code (the figures are the
# tables'). Kept next to the list it explains; revisit when a kernel changes.
WHY = [
    "Why:",
    "",
    "- **Binary layers on Cortex-M0.** `vst` spends per 3 input bits one table lookup and "
    "two words of carry-save adders over 4 count slices. ARMv6-M has 8 low registers and "
    "two-operand logic: the 4 slices, the input word, the table pointer and the 4 loaded "
    "words do not fit, so GCC spills slices to the stack on every group, and each "
    "carry-save adder costs 7 instructions instead of 5. Reordering the loads, pairs "
    "without quads and ARMv6-M address forms were tried and measured slower.",
    "- **Output widths that are not a multiple of 32** (the earbud's 48) leave lanes of "
    "the last bit-sliced word idle: 48 channels cost as much as 64. Packing that word's "
    "two count bits of 16 channels into one table word (one word per lookup instead of "
    "two) measured no faster on M0 or M4: the lookups, not the adds, cost, and there are "
    "as many. Inputs of 16 or 48 channels end a row on a group of one valid bit.",
    "- **An int8 first layer** (the earbud's) multiplies: `xs` needs one `SMLAD` per two "
    "MACs and a load per weight pair per output (about 1 instruction per MAC at best on "
    "M4, where the rest goes to the sample ring and the sign bits). ARMv6-M has no "
    "`SMLAD` nor a multiply-accumulate: `xm` keeps four sums in high registers and loads "
    "the four weights of a sample with one `LDM`, so a MAC is a `MULS` and an `ADD` plus a "
    "quarter of a load each for the weights and the sample, 2.5 instructions; with the "
    "ring of x', the bias and the sign bits the earbud's first layer is about 3.2. "
    "Subset-sum tables over weight bits or nibbles and bit-serial input planes need "
    "several lookups (about 3 instructions each) per MAC of an int8 weight and a 16-bit "
    "sample, and interpolation (Toom-Cook, Winograd) beyond three points divides by even "
    "numbers, which the earbud's accumulator bound leaves no int32 headroom for.",
    "- **Binary or ternary first-layer weights** (issue 18) run `sso`: one table lookup "
    "per tap and output channel (two for ternary) shared by the two pooling positions. On "
    "the demo's own data and recipe (benchmarks/results/first_layer.md, 3 seeds) binary "
    "weights lose about 4 points of window accuracy against int8 and ternary weights about "
    "0.7, and ternary finds fewer of the field test's gestures than int8 on every seed, so "
    "the demo keeps its int8 first layer and the whole-model goals for it stay missed; "
    "the ternary model above is the same architecture with `sso` in its first layer.",
    "",
]


def markdown(whole: dict, shapes: dict, opt: str) -> str:
    lines = [
        "# Kernel variants against CMSIS-NN int8",
        "",
        f"Measured by `benchmarks/kernels.py` (tinybnn {tinybnn.__version__}, "
        f"{tool_version('arm-none-eabi-gcc')} `{opt}`, {tool_version('qemu-system-arm')}). "
        "One inference on a seeded window per build; scores checked bit-exact against the "
        "integer reference (int8 C bit for bit, float32 C exactly against numpy). Instruction "
        "counts are guest instructions under QEMU, **not cycles**.",
        "",
        "`portable` is the reference loops (`--target` default); `size` and `speed` are the "
        "same model compiled for the core (`--target cortex-mN --optimize size|speed`). "
        "CMSIS-NN is the estimate of issue 6: its measured instructions per MAC per layer "
        "kind (low end of each range) times this model's MACs per layer. int8 C and float32 "
        "C are the same architecture as plain TFLM-style loops (benchmarks/baselines.py); "
        '"does not fit": too big for the M0 board\'s 16 KiB of RAM, run as the same code on '
        "the M3 board.",
        "",
        "Goals of issue 6: binary layers <= 0.25 instructions per binary MAC on M4 and <= 0.4 "
        "on M0; the whole model >= 5x fewer instructions than CMSIS-NN on M4 and >= 10x on M0.",
        "",
    ]
    for name, runs in whole.items():
        lines += model_section(name, runs)
    lines += shapes_section(shapes)
    lines += cost_section(whole)
    lines += missed_goals(whole, shapes)
    return "\n".join(lines)


def plot_series(runs: dict[str, CoreRun]) -> list[tuple[str, list[float]]]:
    """(label, instructions per core) of each bar: CMSIS-NN, the baselines, the builds."""
    series = [
        (
            "CMSIS-NN int8 (estimate)",
            [cmsis_estimate(r.builds["speed"].report, c) for c, r in runs.items()],
        )
    ]
    series += [(KIND_LABEL[k], [r.baselines[k].instructions for r in runs.values()]) for k in KINDS]
    return series + [
        (f"tinybnn {b}", [r.builds[b].report.instructions for r in runs.values()]) for b in BUILDS
    ]


def plot(whole: dict[str, dict[str, CoreRun]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(whole), figsize=(6 * len(whole), 4.5), squeeze=False)
    for ax, (name, runs) in zip(axes[0], whole.items(), strict=True):
        series = plot_series(runs)
        x = np.arange(len(runs))
        width = 0.8 / len(series)
        for k, (label, values) in enumerate(series):
            ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=label)
        ax.set_xticks(x, list(runs))
        ax.set_yscale("log")
        ax.set_ylabel("instructions per inference (QEMU)")
        ax.set_title(f"{name}: one inference")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def measure_whole(cores: list[str], opt: str) -> dict[str, dict[str, CoreRun]]:
    whole = {}
    for name, (_, make) in WHOLE_MODELS.items():
        model = make()
        whole[name] = {}
        for core in cores:
            run = CoreRun(measure_builds(model, core, opt), measure_baselines(model, core, opt))
            whole[name][core] = run
            print(f"{name} {core}: {arrows(run.builds)}", flush=True)
    return whole


def measure_shapes(cores: list[str], opt: str) -> dict[str, dict[str, dict[str, Build]]]:
    shapes: dict[str, dict] = {}
    torch.manual_seed(0)
    for label, shape in shape_models().items():
        c, t = shape.input_shape
        calibrate(shape, signals(12, c, t, 0), 0)
        shapes[label] = {core: measure_builds(shape, core, opt) for core in cores}
        print(f"{label}: done", flush=True)
    return shapes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt", choices=tp.OPT_LEVELS, default="-O2")
    parser.add_argument("--cores", nargs="+", default=CORES, choices=CORES)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "kernels")
    args = parser.parse_args(argv)
    whole = measure_whole(args.cores, args.opt)
    shapes = measure_shapes(args.cores, args.opt)
    text = markdown(whole, shapes, args.opt)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    plot(whole, args.out.with_suffix(".png"))
    print(text)
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
