"""Training time of the defaults on the panel's sets of at most 500 windows, one at a time.

    .venv/bin/python benchmarks/train_time.py [--sets CBF ...] [--threads 1] [--seed 0]
                                              [--out benchmarks/results/train_time.md]

The accuracy issue's goal: a set of at most 500 training windows trains in at most 60 s on
2 cores. `benchmarks/panel.py` records each run's time too, but it runs several processes
side by side, so its times include waiting for the cores. Here each set is trained alone,
one after the other, by `tinybnn.train(train_set, seed=seed, threads=threads)` with no
other option (the defaults, as `tinybnn train data.npz` runs them; one thread by default),
timed from the call to its return (the model built, trained and kept; not Python's start
nor the data's reading). Run it on an otherwise idle machine. The steps are the recipe's
(epochs x batches per epoch); the test accuracy shows the model is the panel's for that
seed. Non-goal: a timed test; this is a measurement.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

import tinybnn
from tinybnn.training.tsfile import load_ts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from panel import PANEL, accuracy, files  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MAX_WINDOWS = 500


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=PANEL, help="default: every set of <= 500")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/train_time.md")
    args = parser.parse_args(argv)
    rows = []
    for name in args.sets or PANEL:
        train_file, test_file = files(name)
        train = load_ts(train_file).data
        if args.sets is None and len(train.y) > MAX_WINDOWS:
            continue
        test = load_ts(test_file, like=train_file).data
        t0 = time.perf_counter()
        result = tinybnn.train(train, seed=args.seed, threads=args.threads, progress=False)
        seconds = time.perf_counter() - t0
        recipe = result.recipe
        steps = recipe.epochs * math.ceil(len(train.y) / recipe.batch_size)
        acc = accuracy(result.model, test.X, test.y)
        n, c, t = train.X.shape
        rows.append(
            f"| {name} | {n} | {c}x{t} | {steps:,} | {seconds:.1f} | {1000 * seconds / steps:.1f}"
            f" | {acc:.1f} |"
        )
        print(rows[-1], file=sys.stderr)
    text = "\n".join(
        [
            "# Training time of the defaults",
            "",
            f"Written by `benchmarks/train_time.py` (tinybnn {tinybnn.__version__}, torch "
            f"{torch.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs): "
            f"`tinybnn.train(train_set, seed={args.seed}, threads={args.threads})` with no "
            "other option, each set alone on the machine, one after the other; wall time from "
            "the call to its return. Test accuracy (%) for that seed, to tie the run to the "
            "panel's (`real_data.md`).",
            "",
            "| set | windows | channels x length | steps | seconds | ms per step | test % |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
