"""The earbud demo's first layer: int8 weights against binary ones, on the demo's own data and
recipe, over several training seeds.

    .venv/bin/python benchmarks/first_layer.py [--seeds 0 1 2] [--variants int8 binary]

Issue 18 asks whether a first layer with binary weights (int16 samples times +-1: its kernels
run about half the instructions of the int8 ones) keeps the demo's accuracy; ternary
weights ({-1, 0, +1}: two table lookups per tap, `sso`) are measured beside it. Each variant is
the demo's recipe (`examples/earbud_gesture/demo.py`: its data, users split 60 / 8 / 12,
20 epochs, widths (16, 32, 48, 64), padding "valid", batch 64, threads 1) with the training
options below changed, trained once per seed on the same simulated users (the demo's data
seed, 0). Per run: window accuracy on the 12 unseen users, and the demo's field test
(10 fresh users x 120 s, seeds 5000-5009) of the streaming loop compiled for the host.
Runs append to benchmarks/results/first_layer_runs.jsonl (one JSON object per run, a run
already there is not repeated); the table is benchmarks/results/first_layer.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

import tinybnn
from tinybnn.training.train import evaluate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "earbud_gesture"))
import demo  # noqa: E402
import simulator as sim  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "first_layer_runs.jsonl"

# variant -> (what it is, the options that differ from the demo's recipe)
VARIANTS = {
    "int8": ("int8 first layer (the demo's)", dict(first_weights="int8")),
    "binary": ("binary first layer", dict(first_weights="binary")),
    "binary-scaled": (
        "binary, XNOR-Net scaling factors (folded into the thresholds)",
        dict(first_weights="binary", scaling=True),
    ),
    "ternary": (
        "ternary first layer, weights in {-1, 0, +1} (`quantize_ternary`)",
        dict(first_weights="ternary"),
    ),
    "ternary-e30": (
        "ternary, 30 epochs instead of 20",
        dict(first_weights="ternary", epochs=30),
    ),
    "int8-e30": ("int8, 30 epochs instead of 20", dict(first_weights="int8", epochs=30)),
    "binary-32": (
        "binary, first layer 32 wide",
        dict(first_weights="binary", widths=(32, 32, 48, 64)),
    ),
}


def recipe(cfg: demo.Config, val: Path, seed: int, options: dict) -> dict:
    """The demo's training options (demo.main) with `options` on top."""
    base = dict(
        val_data=val, epochs=cfg.epochs, widths=cfg.widths, first_weights="int8",
        batch_size=64, seed=seed, progress=False, padding="valid", threads=1,
    )  # fmt: skip
    return {**base, **options}


def field(model_path: Path, work: Path, streams: list) -> dict:
    """The demo's field test of the streaming loop (host build) on `streams`."""
    c_dir = work / "c"
    tinybnn.compile(model_path, c_dir, demo.NAME, target="host", streaming=True)
    exe = demo.build_host(c_dir)
    scores = [demo.score(demo.run_host(exe, x), t, g) for x, t, g in streams]
    minutes = sum(s.none_minutes for s in scores)
    return dict(
        gestures=sum(len(s.matched) for s in scores),
        found=sum(s.found for s in scores),
        wrong=sum(s.wrong for s in scores),
        false_alarms=sum(s.false_alarms for s in scores),
        none_minutes=round(minutes, 3),
    )


def run(variant: str, seed: int, paths: dict, streams: list) -> dict:
    cfg = demo.FULL
    test = np.load(paths["test"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        opts = recipe(cfg, paths["val"], seed, VARIANTS[variant][1])
        tinybnn.train(paths["train"], out=work / "model.pt", **opts)
        model = tinybnn.load(work / "model.pt")
        ev = evaluate(model, test["X"], test["y"])
        row = dict(variant=variant, seed=seed, windows=int(len(test["y"])))
        row["accuracy"] = round(float(ev.accuracy), 5)
        row.update(field(work / "model.pt", work, streams))
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| variant | seeds | window accuracy, 12 unseen users: per seed | mean | "
        "field test: gestures found (streaming loop) | wrong class | false alarms per minute |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, (what, _) in VARIANTS.items():
        mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["seed"])
        if not mine:
            continue
        accs = [r["accuracy"] for r in mine]
        found = ", ".join(f"{r['found']}/{r['gestures']}" for r in mine)
        alarms = ", ".join(f"{r['false_alarms'] / r['none_minutes']:.2f}" for r in mine)
        wrong = ", ".join(str(r["wrong"]) for r in mine)
        per_seed = ", ".join(f"{a:.1%}" for a in accs)
        sd = f" ± {statistics.stdev(accs):.1%}" if len(accs) > 1 else ""
        lines.append(
            f"| {what} | {', '.join(str(r['seed']) for r in mine)} | {per_seed} | "
            f"{statistics.mean(accs):.1%}{sd} | {found} | {wrong} | {alarms} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in RUNS.read_text().splitlines()] if RUNS.exists() else []
    done = {(r["variant"], r["seed"]) for r in rows}
    todo = [(v, s) for s in args.seeds for v in args.variants if (v, s) not in done]
    if todo:
        cfg = demo.FULL
        streams = [
            sim.make_stream(cfg.field_s, seed=s)[:3] for s in demo.FIELD_SEEDS[: cfg.field_users]
        ]
        with tempfile.TemporaryDirectory() as tmp:
            paths = demo.make_data(cfg, Path(tmp))
            for variant, seed in todo:
                row = run(variant, seed, paths, streams)
                print(json.dumps(row), flush=True)
                rows.append(row)
                with RUNS.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    (RESULTS / "first_layer.md").write_text(
        "# The earbud demo's first layer: int8, binary or ternary weights\n\n"
        "Measured by `benchmarks/first_layer.py`: the demo's data and recipe, one training "
        "run per seed and variant, threads 1; window accuracy on the 12 unseen users "
        f"({rows[0]['windows']} windows), and the demo's field test of the streaming loop "
        "(host build, 10 fresh users x 120 s). The instructions each first layer runs are "
        "in benchmarks/results/kernels.md (the shapes `iconv 5ch->16 k5 T128 pool2 ...` and "
        "the earbud model with a ternary first layer).\n\n" + table(rows) + "\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
