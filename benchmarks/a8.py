"""The cost of "1a8" on a CricketX-shaped model: flash, RAM and instructions under QEMU of
conv_classifier(1 channel, T = 300, 12 classes, pool 4, kernel 9, int8 first layer, widths
32-64-64, int8 head) with precision [8, 1, 1, 8] against [8, 1, "1a8", 8].

    .venv/bin/python benchmarks/a8.py [--cores cortex-m0 cortex-m4] [--seeds 0 1 2]

The models are the architecture the recipe builds for CricketX, calibrated (not trained) on
seeded synthetic windows: the input normalisation and the BatchNorm statistics and the codes'
range from one training-mode pass. The instruction counts of these kernels do not depend on
the weights (popcounts, the requantisation's clamp, multiply and shift, the sums), so a
trained model runs the same counts; `tinybnn profile` measures a model file the same way.
Each profile runs one window under QEMU, checked bit-exact against the reference.

Accuracy: `tinybnn.train(train, seed=s, threads=1, precision=[8, 1, "1a8", 8])` on CricketX
(the panel's files, benchmarks/panel.py) per seed, its test accuracy beside the default's
of the same seed from benchmarks/results/panel_runs.jsonl (the same recipe without the
precision option); `--seeds` with no value skips it.

Writes its section of benchmarks/results/int8_act.md (the rest of the file is left as it is).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

import tinybnn
from tinybnn.firmware.profile import profile
from tinybnn.models import conv_classifier

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from modelcheck import signals  # noqa: E402
from panel import accuracy, files  # noqa: E402
from profile_gesture import table  # noqa: E402

HEADING = "## A binary convolution with int8 codes out (1a8): a CricketX-shaped model"
PRECISIONS = ((8, 1, 1, 8), (8, 1, "1a8", 8))
LENGTH, CLASSES = 300, 12


@torch.no_grad()
def cricket_model(precision) -> torch.nn.Module:
    torch.manual_seed(0)
    model = conv_classifier(
        1, LENGTH, CLASSES, widths=(32, 64, 64), kernel_size=9, pool=4, precision=precision
    )
    x = torch.tensor(signals(64, 1, LENGTH, 0), dtype=torch.float32)
    model.layers[0].fit_normalization(x)
    model.train()
    model(x)
    return model.eval()


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace the section that starts with `heading` (up to the next "## " or the end), or
    append it."""
    text = path.read_text() if path.exists() else ""
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + body + (text[end + 1 :] if end >= 0 else "")
    path.write_text(text)


def accuracy_rows(seeds: list[int]) -> list[list[str]]:
    """Per seed: CricketX test accuracy of precision 8,1,1a8,8 and of the default (the
    panel's runs file), then the means."""
    from tinybnn.training.tsfile import load_ts

    runs = ROOT / "benchmarks" / "results" / "panel_runs.jsonl"
    default = {
        r["seed"]: r["bnn"]
        for r in map(json.loads, runs.read_text().splitlines())
        if r["name"] == "CricketX"
    }
    train_file, test_file = files("CricketX")
    train = load_ts(train_file).data
    test = load_ts(test_file, like=train_file).data
    rows, ours, theirs = [], [], []
    for seed in seeds:
        r = tinybnn.train(train, seed=seed, threads=1, progress=False, precision=[8, 1, "1a8", 8])
        a = accuracy(r.model, test.X, test.y)
        ours.append(a)
        base = default.get(seed)
        theirs += [base] if base is not None else []
        rows.append([str(seed), f"{a:.1f}", "-" if base is None else f"{base:.1f}"])
        print(" | ".join(rows[-1]), flush=True)
    if ours:
        rows.append(["mean", f"{statistics.mean(ours):.1f}", f"{statistics.mean(theirs):.1f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", nargs="+", default=["cortex-m0", "cortex-m4"])
    ap.add_argument("--opt", default="-O2")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    args = ap.parse_args(argv)
    acc = accuracy_rows(args.seeds)
    rows, stage_rows = [], []
    for core in args.cores:
        for optimize in ("speed", "size"):
            for precision in PRECISIONS:
                spelled = ",".join(str(b) for b in precision)
                model = cricket_model(list(precision))
                r = profile(model, core=core, opt=args.opt, optimize=optimize)
                cells = [core, optimize, spelled, f"{r.flash_bytes:,}", f"{r.constants_bytes:,}"]
                cells += [f"{r.arena_bytes:,}", f"{r.ram_bytes:,}", f"{r.instructions:,}"]
                rows.append(cells)
                print(" | ".join(cells), flush=True)
                for s in r.stages[2:]:  # the last convolution, the global pooling, the head
                    stage_rows.append(
                        [core, optimize, spelled, f"L{s.index} {s.kernel}", s.output]
                        + [f"{s.constants_bytes:,}", f"{s.instructions:,}"]
                    )
    head = ["core", "optimize", "precision", "flash B", "constants B", "arena B", "RAM B"]
    head.append("instructions")
    body = "\n".join(
        [
            HEADING,
            "",
            f"Written by benchmarks/a8.py ({args.opt}, `tinybnn.firmware.profile.profile`, as "
            "`tinybnn profile`): conv_classifier(1 channel, T = 300, 12 classes, pool 4, "
            "kernel 9, widths 32-64-64) with precision 8,1,1,8 and 8,1,1a8,8, each core's "
            "kernels with --optimize speed (the binary convolutions: subset tables, `vst`) and "
            "size (bit-sliced, `vsl`); the codes: `tb_bconv1d_q8_vst_b32` (speed) and "
            "`tb_bconv1d_q8_lanes_b32` (size). One window under QEMU, bit-exact. Flash: code + constants + descriptors + data (arm-none-eabi-size "
            "sections); RAM: arena + data + bss + peak stack. The models are calibrated, not "
            "trained: these kernels run the same instructions whatever the weights.",
            "",
            *table(head, rows),
            "",
            "The stages that differ (the last convolution with its pool, the global pooling, "
            "the classifier):",
            "",
            *table(
                ["core", "optimize", "precision", "stage", "output", "const B", "instructions"],
                stage_rows,
            ),
            "",
        ]
    )
    if acc:
        body += "\n".join(
            [
                "",
                "CricketX test accuracy (%, 390 test windows), `tinybnn.train(train, seed=s, "
                "threads=1, precision=[8, 1, '1a8', 8])` against the default recipe of the same "
                "seed (benchmarks/results/panel_runs.jsonl):",
                "",
                *table(["seed", "8,1,1a8,8", "default (8,1,1,8)"], acc),
                "",
            ]
        )
    out = ROOT / "benchmarks" / "results" / "int8_act.md"
    write_section(out, HEADING, body)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
