"""Fit the instruction cost model (`tinybnn.compiler.costs`) on QEMU counts; write its
coefficients and its held-out errors.

    nice .venv/bin/python benchmarks/calibrate_costs.py [--calibration 80] [--held-out 20]
        [--jobs 2] [--refit]

Builds seeded, varied `conv_classifier` models (untrained: instruction counts do not need
trained weights): widths that straddle 32-bit words (8 ... 96), lengths 26-1250, 1-12
channels, kernel sizes 3/5/7/9, pools 1/2/4/8, binary and int8 first layers and heads, last
convolutions 8, "8a8" and "1a8" (and whole `precision` lists), codes_into_last, shortcuts,
'same' and 'valid' padding, compiled with optimize="speed" (the default). Profiles each on every core of
`tinybnn.compiler.targets.CORES` (`tinybnn.firmware.profile.profile`, -O2), fits each (core,
C function)'s coefficients by least squares on relative error (numpy) over the calibration
models, and writes

- `tinybnn/compiler/costs.json`: the coefficients, with the tinybnn version, date and QEMU
  version they were fitted on;
- `benchmarks/results/costs_runs.jsonl`: every measured stage with all its loop counts, so
  `--refit` fits again (e.g. after changing `costs.FEATURES`) without QEMU;
- `benchmarks/results/costs.md`: per core, the estimate's error on the held-out models (the
  total's max and mean relative error, and per stage kind).

Non-goals: cycles, other -O levels, trained weights (the kernels' counts barely depend on
the data; see the table's note).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

import tinybnn
from tinybnn.compiler import costs
from tinybnn.compiler.targets import CORES
from tinybnn.errors import ModelError, one_line
from tinybnn.firmware.profile import FirmwareCheckFailed, profile
from tinybnn.models import conv_classifier

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "benchmarks/results/costs_runs.jsonl"
TABLE = ROOT / "benchmarks/results/costs.md"
WIDTHS = (8, 24, 31, 32, 33, 48, 64, 96)
HIDDEN = (1, 8, 8, "8a8", "8a8", "1a8")  # a hidden convolution's precision
HELD_OUT_SEED = 100_000  # held-out models are seeds HELD_OUT_SEED + i, never calibrated on


def model_config(seed: int) -> dict:
    """A seeded, valid conv_classifier configuration (with `optimize` and the torch seed)."""
    rng = np.random.default_rng(seed)
    while True:
        mode = str(rng.choice(["plain", "precision", "last_conv", "shortcuts"]))
        n = int(rng.integers(3 if mode == "shortcuts" else 2 if mode != "plain" else 1, 5))
        widths = tuple(int(w) for w in rng.choice(WIDTHS, n))
        if mode == "shortcuts":  # equal neighbours from the third layer: residual blocks
            widths = widths[:2] + (widths[1],) * (n - 2)
        cfg = dict(
            in_channels=int(rng.integers(1, 13)),
            length=int(np.exp(rng.uniform(np.log(26), np.log(1250)))),
            num_classes=int(rng.integers(2, 11)),
            widths=widths,
            kernel_size=int(rng.choice([3, 5, 7, 9])),
            pool=int(rng.choice([1, 2, 2, 4, 8])),
            first_weights=str(rng.choice(["binary", "int8"])),
            head=str(rng.choice(["int8", "binary"])),
            padding="same" if mode == "shortcuts" else str(rng.choice(["same", "same", "valid"])),
        )
        if mode == "precision":  # int8 hidden convolutions, codes between them
            hidden = [HIDDEN[int(i)] for i in rng.integers(len(HIDDEN), size=n - 1)]
            first, head = (1 if w == "binary" else 8 for w in (cfg["first_weights"], cfg["head"]))
            cfg["precision"] = [first, *hidden, head]
        elif mode == "last_conv":
            cfg["last_conv"] = [8, "8a8", "1a8"][int(rng.integers(3))]
            if n >= 3 and cfg["last_conv"] in (8, "8a8") and rng.random() < 0.5:
                cfg["codes_into_last"] = True
        elif mode == "shortcuts":
            cfg["shortcuts"] = True
        cfg_all = dict(cfg, optimize="speed", seed=seed)
        try:
            build_model(cfg_all)
        except ModelError:
            continue
        return cfg_all


def build_model(cfg: dict):
    torch.manual_seed(cfg["seed"])
    kwargs = {k: v for k, v in cfg.items() if k not in ("optimize", "seed")}
    return conv_classifier(**kwargs)


def measure(cfg: dict) -> list[dict]:
    """Profile one model on every core: one record per core, its stages' counts and loop
    counts."""
    model = build_model(cfg)
    out = []
    for core in CORES:
        try:
            report = profile(model, core, optimize=cfg["optimize"])
        except FirmwareCheckFailed as e:  # e.g. its arena is over the board's RAM (M0: 16 KB)
            print(f"seed {cfg['seed']} skipped on {core}: {one_line(e)[:160]}", flush=True)
            continue
        stages = costs.compiled_stages(model, core, cfg["optimize"])
        out.append(
            dict(
                seed=cfg["seed"],
                config={k: v for k, v in cfg.items() if k != "seed"},
                core=core,
                call=report.call_instructions,
                total=report.instructions,
                stages=[
                    dict(
                        kernel=cs.kernel,
                        function=cs.function,
                        instructions=sp.instructions,
                        features=costs.stage_features(cs),
                    )
                    for cs, sp in zip(stages, report.stages, strict=True)
                ],
            )
        )
    return out


def fit(records: list[dict]) -> dict:
    """Per core and C function, the coefficients of `costs.FEATURES` minimising the squared
    relative error over the records' stages; the call overhead as its median."""
    rows = defaultdict(list)  # (core, function) -> [(features, instructions)]
    calls = defaultdict(list)
    for r in records:
        calls[r["core"]].append(r["call"])
        for s in r["stages"]:
            rows[r["core"], s["function"]].append((s["features"], s["instructions"]))
    cores: dict[str, dict] = {c: {costs.CALL: dict(features=["one"], coef=[0.0])} for c in calls}
    for core, v in calls.items():
        cores[core][costs.CALL] = dict(features=["one"], coef=[float(np.median(v))], n=len(v))
    for (core, function), data in sorted(rows.items()):
        names = list(costs.FEATURES[function])
        a = np.array([[f[n] for n in names] for f, _ in data], np.float64)
        y = np.array([n for _, n in data], np.float64)
        a_rel = a / y[:, None]  # relative error: (a @ coef - y) / y
        scale = np.abs(a_rel).max(axis=0)
        scale[scale == 0] = 1
        coef, *_ = np.linalg.lstsq(a_rel / scale, np.ones_like(y), rcond=None)
        coef = coef / scale
        rel = np.abs(a @ coef - y) / y
        cores[core][function] = dict(
            features=names,
            coef=[float(c) for c in coef],
            n=len(y),
            max_rel_err=float(rel.max()),
        )
    return cores


def qemu_version() -> str:
    out = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True)
    m = re.search(r"version (\S+)", out.stdout)
    return m.group(1) if m else "unknown"


def evaluate(cores: dict, records: list[dict]) -> dict:
    """Per core: relative errors of the total and of each stage kind, over `records`."""
    out: dict[str, dict] = defaultdict(lambda: dict(total=[], kinds=defaultdict(list)))
    for r in records:
        table = cores[r["core"]]
        if any(s["function"] not in table for s in r["stages"]):
            out[r["core"]]["uncovered"] = out[r["core"]].get("uncovered", 0) + 1
            continue  # estimate() refuses it: a kernel no calibration model used
        total = costs.predict(table[costs.CALL], {"one": 1})
        for s in r["stages"]:
            e = costs.predict(table[s["function"]], s["features"])
            total += e
            kind = s["function"].removeprefix("tb_")
            out[r["core"]]["kinds"][kind].append((e - s["instructions"]) / s["instructions"])
        out[r["core"]]["total"].append((total - r["total"]) / r["total"])
    return out


def pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def write_table(errors: dict, n_cal: int, n_held: int, seconds: float, meta: dict) -> str:
    lines = [
        "# Instruction cost model: held-out errors",
        "",
        f"`benchmarks/calibrate_costs.py` fitted `tinybnn/compiler/costs.json` on {n_cal} seeded "
        f"`conv_classifier` models and measured the estimate (`tinybnn.compiler.costs.estimate`) "
        f"against QEMU counts (`tinybnn.firmware.profile.profile`, -O2) on {n_held} other "
        f"models (seeds from {HELD_OUT_SEED}), on every core. tinybnn {meta['tinybnn']}, QEMU "
        f"{meta['qemu']}, {meta['date']}; the run took {seconds / 60:.1f} min on 2 cores.",
        "",
        "Relative error of the estimated instructions per inference (estimate / measured - 1):",
        "",
        "| core | models | total: max abs | total: mean abs | total: mean (bias) |",
        "|---|---|---|---|---|",
    ]
    for core, e in errors.items():
        t = np.array(e["total"])
        if e.get("uncovered"):
            core = f"{core} ({e['uncovered']} models refused: uncalibrated kernel)"
        lines.append(
            f"| {core} | {len(t)} | {pct(np.abs(t).max())} | {pct(np.abs(t).mean())} | "
            f"{pct(t.mean())} |"
        )
    lines += [
        "",
        "Per stage kind (C function), held-out stages: max and mean absolute relative error",
        "",
        "| C function | " + " | ".join(errors) + " |",
        "|---|" + "---|" * len(errors),
    ]
    kinds = sorted({k for e in errors.values() for k in e["kinds"]})
    for k in kinds:
        cells = []
        for e in errors.values():
            v = np.abs(np.array(e["kinds"].get(k, [])))
            cells.append(f"{pct(v.max())} / {pct(v.mean())} ({len(v)})" if len(v) else "-")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Cells: max / mean (stages). A stage kind absent from the held-out models shows -. The "
        "counts depend a little on the data (carry ripples that stop early, clamps), so no "
        "estimate is exact; the total's error is what `tinybnn search` budgets against.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, default=80, help="models to fit on")
    parser.add_argument("--held-out", type=int, default=20, help="models to test on")
    parser.add_argument("--jobs", type=int, default=2, help="models profiled at once")
    parser.add_argument("--refit", action="store_true", help="refit costs_runs.jsonl, no QEMU")
    args = parser.parse_args(argv)
    start = time.monotonic()
    cal_seeds = list(range(args.calibration))
    held_seeds = [HELD_OUT_SEED + i for i in range(args.held_out)]
    if args.refit:
        records = [json.loads(line) for line in RUNS.read_text().splitlines()]
        meta = json.loads(costs.COSTS_FILE.read_text())["meta"]
    else:
        configs = [model_config(s) for s in cal_seeds + held_seeds]
        records = []
        with ProcessPoolExecutor(args.jobs) as pool:
            for i, recs in enumerate(pool.map(measure, configs)):
                records += recs
                print(
                    f"{i + 1}/{len(configs)} models, {time.monotonic() - start:.0f} s", flush=True
                )
        RUNS.write_text("".join(json.dumps(r) + "\n" for r in records))
        meta = dict(
            tinybnn=tinybnn.__version__,
            date=datetime.date.today().isoformat(),
            qemu=qemu_version(),
            opt="-O2",
            calibration_models=len(cal_seeds),
            held_out_models=len(held_seeds),
            seconds=round(time.monotonic() - start),
        )
    cal = [r for r in records if r["seed"] < HELD_OUT_SEED]
    held = [r for r in records if r["seed"] >= HELD_OUT_SEED]
    cores = fit(cal)
    costs.COSTS_FILE.write_text(json.dumps(dict(meta=meta, cores=cores), indent=1) + "\n")
    errors = evaluate(cores, held)
    text = write_table(
        errors, len({r["seed"] for r in cal}), len({r["seed"] for r in held}), meta["seconds"], meta
    )
    TABLE.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
