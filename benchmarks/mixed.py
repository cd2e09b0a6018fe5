"""Mixed precision chosen by `tinybnn importance` on the development panel: the all-binary
default, the mix it suggests and the float twin, with flash and Cortex-M4 instructions.

    .venv/bin/python benchmarks/mixed.py [--sets GunPoint] [--seeds 2] [--fine-tune 50]

Per set and seed: the default model (`tinybnn.train(train, seed=s)`, as benchmarks/panel.py),
its float twin (`twin=True`), then `importance` on the same recipe trained on four fifths
of the training windows: each binary layer raised alone to int8 and fine-tuned
`--fine-tune` epochs from the trained weights, scored on the fifth held out per class
(`data.split`; the test split is used for nothing but the figures), priced on cortex-m4 under QEMU, within a flash budget of the model's own
flash (so the mix takes at most 2x). The suggested change is then trained from scratch as
`tinybnn.train(train, seed=s, precision=...)`. Threads: 1, as every training run here.

Writes benchmarks/results/mixed.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import tinybnn
from tinybnn.compiler.summary import summary, weight_precision
from tinybnn.firmware.profile import profile
from tinybnn.training.data import split
from tinybnn.training.importance import importance
from tinybnn.training.tsfile import load_ts

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from panel import accuracy, files  # noqa: E402
from profile_gesture import table  # noqa: E402


def precision_of(model) -> list[int]:
    return [r.bits for r in summary(model).rows if r.bits]


def costs(model) -> tuple[int, int]:
    report = profile(model, core="cortex-m4")
    return report.flash_bytes, report.instructions


def run(name: str, seed: int, fine_tune: int, arch: dict) -> dict:
    train_file, test_file = files(name)
    train = load_ts(train_file).data
    test = load_ts(test_file, like=train_file).data
    bnn = tinybnn.train(train, seed=seed, threads=1, progress=False, **arch).model
    twin = tinybnn.train(train, seed=seed, threads=1, progress=False, twin=True, **arch).model
    base_flash, base_instr = costs(bnn)
    # importance scores on windows its model has not seen: the same default recipe trained
    # on four fifths of the training windows, scored on the fifth held out
    fit, held = split(train, 0.2, seed)
    probe = tinybnn.train(fit, seed=seed, threads=1, progress=False, **arch).model
    imp = importance(
        probe,
        fit,
        val_data=held,
        core="cortex-m4",
        epochs=fine_tune,
        seed=seed,
        flash_budget=base_flash,
    )
    print(imp.format(), flush=True)
    best = imp.suggestion()
    row = dict(
        name=name,
        seed=seed,
        binary=accuracy(bnn, test.X, test.y),
        twin=accuracy(twin, test.X, test.y),
        flash=base_flash,
        instructions=base_instr,
        precision=precision_of(bnn),
        mix=None,
        mix_acc=None,
        mix_flash=None,
        mix_instr=None,
    )
    if best is not None:
        bits = [
            8 if (i == best.layer) else weight_precision(m)
            for i, m in enumerate(probe.layers)
            if weight_precision(m)
        ]
        mixed = tinybnn.train(
            train, seed=seed, threads=1, progress=False, precision=tuple(bits), **arch
        ).model
        flash, instr = costs(mixed)
        row.update(
            mix=best.what,
            precision_mix=bits,
            mix_acc=accuracy(mixed, test.X, test.y),
            mix_flash=flash,
            mix_instr=instr,
        )
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["GunPoint"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--fine-tune", type=int, default=50)
    parser.add_argument("--widths", help="override the default widths, e.g. 16,32,32 (half)")
    parser.add_argument("--out", default="benchmarks/results/mixed.md")
    args = parser.parse_args(argv)
    # the all-binary default this benchmark starts from (the defaults now take an int8 last
    # convolution where it fits: last_conv=1 keeps it binary)
    arch = {"last_conv": 1}
    if args.widths:
        arch["widths"] = tuple(int(w) for w in args.widths.split(","))
    rows = [run(n, s, args.fine_tune, arch) for n in args.sets for s in range(args.seeds)]
    body = []
    for r in rows:
        body.append(
            [
                r["name"],
                r["seed"],
                f"{r['binary']:.1f}",
                r["mix"] or "none suggested",
                f"{r['mix_acc']:.1f}" if r["mix_acc"] is not None else "-",
                f"{r['twin']:.1f}",
                f"{r['flash']:,}",
                f"{r['mix_flash']:,}" if r["mix_flash"] else "-",
                f"{r['instructions']:,}",
                f"{r['mix_instr']:,}" if r["mix_instr"] else "-",
            ]
        )
    gaps = [r["twin"] - r["binary"] for r in rows]
    closed = [r["mix_acc"] - r["binary"] for r in rows if r["mix_acc"] is not None]
    text = "\n".join(
        [
            "# Mixed precision by layer importance",
            "",
            f"Written by benchmarks/mixed.py (widths {args.widths or 'default'}, fine-tune "
            f"{args.fine_tune} epochs, cortex-m4 under "
            "QEMU, flash budget = the model's own flash; test accuracy %).",
            "",
            *table(
                [
                    "set",
                    "seed",
                    "all-binary default",
                    "suggested change",
                    "mix",
                    "float twin",
                    "flash B default",
                    "flash B mix",
                    "M4 instr default",
                    "M4 instr mix",
                ],
                body,
            ),
            "",
            f"Mean gap to the twin: {statistics.mean(gaps):.1f} points; mean change from the mix: "
            + (f"{statistics.mean(closed):+.1f} points" if closed else "no mix suggested"),
            "",
        ]
    )
    out = ROOT / args.out
    out.write_text(text)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
