"""Fit the instruction cost model (`tinybnn.compiler.costs`) on QEMU counts; write its
coefficients and its held-out errors.

    nice .venv/bin/python benchmarks/calibrate_costs.py [--speed 80 20] [--size 60 8]
        [--budget 16 6] [--stress 60 8] [--tight 24 6] [--jobs 2] [--refit | --resume]

Builds seeded, varied `conv_classifier` models (untrained: instruction counts do not need
trained weights) of five kinds (`KINDS`): widths that straddle 32-bit words (4 ... 128),
lengths 16-1500, 1-12 channels, kernel sizes 3/5/7/9, pools 1/2/4/8, binary and int8 first
layers and heads, last convolutions 8, "8a8" and "1a8" (and whole `precision` lists),
codes_into_last, shortcuts, 'same' and 'valid' padding; compiled with optimize="speed", with
optimize="size", or under a flash budget (so every C function `codegen.build` can select
for a conv_classifier is calibrated). Profiles each on every core of
`tinybnn.compiler.targets.CORES` (`tinybnn.firmware.profile.profile`, -O2), fits each (core,
C function)'s coefficients by non-negative least squares on relative error (SciPy) over
the calibration models (functions of one C body together, `costs.SHARED`), and writes

- `tinybnn/compiler/costs.json`: the coefficients, with the tinybnn version, date and QEMU
  version they were fitted on;
- `benchmarks/results/costs_runs.jsonl.gz`: every measured stage with its loop counts, so
  `--refit` fits again without QEMU (e.g. after changing `costs.FEATURES`: the loop counts
  a record lacks are recomputed from its model, rebuilt from its seed), and `--resume`
  profiles only the models it lacks, and those the compiler now builds with other kernels;
- `benchmarks/results/costs.md`: per core, the estimate's error on the held-out models (the
  total's max and mean relative error, per model kind and per C function).

Non-goals: cycles, other -O levels, trained weights (the kernels' counts barely depend on
the data; see the table's note).
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

import tinybnn
from tinybnn.compiler import codegen, costs
from tinybnn.compiler.lowering import lower
from tinybnn.compiler.targets import CORES
from tinybnn.compiler.variants import CONSTANTS, OPTIMIZE
from tinybnn.errors import ModelError, one_line
from tinybnn.firmware.profile import FirmwareCheckFailed, profile
from tinybnn.models import conv_classifier

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "benchmarks/results/costs_runs.jsonl.gz"
TABLE = ROOT / "benchmarks/results/costs.md"
WIDTHS = (8, 24, 31, 32, 33, 48, 64, 96)
WIDE_WIDTHS = (4, 8, 16, 24, 31, 32, 33, 48, 64, 65, 96, 128)  # "size", "budget", "stress"
HIDDEN = (1, 8, 8, "8a8", "8a8", "1a8")  # a hidden convolution's precision
HELD_OUT_SEED = 100_000  # held-out models are seeds HELD_OUT_SEED + i, never calibrated on
# The kinds of model, each a block of seeds (calibration from its offset, held-out from
# HELD_OUT_SEED + its offset): "speed" and "size" draw the same configurations, compiled
# with that optimize; "budget" compiles with optimize="speed" under a flash budget between
# the model's size and speed flash (fit_flash_budget swaps some stages to their size
# kernels); "stress" weights the draw toward the kernels the first fit saw least (a binary
# first layer over many channels, int8 codes in and out, global sums, binary heads).
# "tight" compiles with optimize="speed" under the tightest flash budget the model meets
# (every stage at its fewest constants, variants.CONSTANTS: an int8 first layer takes xq).
KINDS = {"speed": 0, "size": 1000, "budget": 2000, "stress": 3000, "tight": 4000}
COUNTS = {
    "speed": (80, 20),
    "size": (60, 8),
    "budget": (16, 6),
    "stress": (60, 8),
    "tight": (24, 6),
}


def kind_of(seed: int) -> str:
    offset = seed % HELD_OUT_SEED // 1000 * 1000
    return next(k for k, v in KINDS.items() if v == offset)


def _draw(rng: np.random.Generator, widths_from: tuple[int, ...]) -> dict:
    """The first fit's draw: a mode (plain, precision, last_conv, shortcuts) and its sizes."""
    mode = str(rng.choice(["plain", "precision", "last_conv", "shortcuts"]))
    n = int(rng.integers(3 if mode == "shortcuts" else 2 if mode != "plain" else 1, 5))
    widths = tuple(int(w) for w in rng.choice(widths_from, n))
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
    return cfg


def _stress(rng: np.random.Generator) -> dict:
    """A draw weighted toward one under-sampled kernel family (see KINDS)."""
    cfg = _draw(rng, WIDE_WIDTHS)
    cfg["length"] = int(np.exp(rng.uniform(np.log(16), np.log(1500))))
    focus = str(rng.choice(["xn", "codes", "codes", "sum", "head"]))
    n = len(cfg["widths"])
    if focus == "xn":  # binary first layer over more channels than subset tables take
        cfg.update(first_weights="binary", in_channels=int(rng.integers(6, 13)))
        cfg.pop("precision", None)
    elif focus == "codes":  # int8 codes in and out: runs of "8a8"
        hidden = [("8a8", "8a8", "1a8", 8)[rng.integers(4)] for _ in range(max(n, 2) - 1)]
        hidden[-1] = ("8a8", "1a8", 8, 1)[rng.integers(4)]
        if n < 2:
            cfg["widths"] = cfg["widths"] * 2
        cfg["precision"] = [int(rng.choice([1, 8])), *hidden, int(rng.choice([1, 8]))]
        cfg.pop("shortcuts", None), cfg.pop("last_conv", None), cfg.pop("codes_into_last", None)
    elif focus == "sum":  # global sums of bits (short and long) and of codes
        cfg.update(pool=int(rng.choice([1, 1, 2])), last_conv=[1, 1, "8a8", "1a8"][rng.integers(4)])
        cfg.pop("precision", None), cfg.pop("codes_into_last", None)
    else:  # binary heads over counts and codes
        cfg["head"] = "binary"
        if "precision" in cfg:
            cfg["precision"][-1] = 1
    return cfg


def model_config(seed: int) -> dict:
    """A seeded, valid conv_classifier configuration (with `optimize`, `budget` (the flash
    budget's place between the size and the speed flash, or None) and the torch seed)."""
    kind = kind_of(seed)
    rng = np.random.default_rng(seed)
    while True:
        if kind == "speed":
            cfg = _draw(rng, WIDTHS)
        elif kind == "stress" or (kind == "size" and rng.random() < 0.5):
            cfg = _stress(rng)
        else:
            cfg = _draw(rng, WIDE_WIDTHS)
        if kind == "tight" and rng.random() < 0.75:
            cfg["first_weights"] = "int8"
            if "precision" in cfg:
                cfg["precision"][0] = 8
        optimize = "size" if kind == "size" else "speed"
        budget = "tight" if kind == "tight" else None
        if kind == "budget":
            budget = float(rng.uniform(0.05, 0.95))
        cfg_all = dict(cfg, optimize=optimize, seed=seed)
        if budget is not None:
            cfg_all["budget"] = budget
        try:
            build_model(cfg_all)
        except ModelError:
            continue
        return cfg_all


def build_model(cfg: dict):
    torch.manual_seed(cfg["seed"])
    kwargs = {k: v for k, v in cfg.items() if k not in ("optimize", "seed", "budget")}
    return conv_classifier(**kwargs)


def flash_budget(program, cfg: dict, core: str) -> int | None:
    """The model's flash budget on `core`: `cfg["budget"]` of the way from its flash with
    every stage's size kernel to its flash with the speed kernels; "tight": its flash with
    every stage at its fewest constants."""
    if cfg.get("budget") is None:
        return None
    if cfg["budget"] == "tight":
        return codegen.build(program, "model", {}, core, CONSTANTS).flash_bytes
    flash = {o: codegen.build(program, "model", {}, core, o).flash_bytes for o in OPTIMIZE}
    return round(flash["size"] + cfg["budget"] * (flash["speed"] - flash["size"]))


def compiled(cfg: dict, core: str, model=None) -> list:
    """The stages of `cfg`'s model as profile() compiles them on `core`, and its budget."""
    program = lower(model if model is not None else build_model(cfg))
    budget = flash_budget(program, cfg, core)
    cm = codegen.build(program, "model", {}, core, cfg["optimize"], budget)
    return cm.stages, budget


def measure(cfg: dict) -> list[dict]:
    """Profile one model on every core: one record per core, its stages' counts and loop
    counts."""
    model = build_model(cfg)
    out = []
    for core in CORES:
        stages, budget = compiled(cfg, core, model)
        try:
            report = profile(model, core, optimize=cfg["optimize"], flash_budget=budget)
        except FirmwareCheckFailed as e:  # e.g. its arena is over the board's RAM (M0: 16 KB)
            print(f"seed {cfg['seed']} skipped on {core}: {one_line(e)[:160]}", flush=True)
            continue
        out.append(
            dict(
                seed=cfg["seed"],
                config={k: v for k, v in cfg.items() if k != "seed"},
                core=core,
                flash_budget=budget,
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


def refeature(records: list[dict]) -> None:
    """Recompute the stored loop counts of records that lack a feature `costs.FEATURES`
    now names (the model rebuilt from its seed: no QEMU)."""
    cache = {}
    for r in records:
        if all(set(costs.FEATURES[s["function"]]) <= s["features"].keys() for s in r["stages"]):
            continue
        cfg = dict(r["config"], seed=r["seed"])
        key = (r["seed"], r["core"])
        if key not in cache:
            cache[key] = compiled(cfg, r["core"])[0]
        stages = cache[key]
        assert [cs.function for cs in stages] == [s["function"] for s in r["stages"]], key
        for cs, s in zip(stages, r["stages"], strict=True):
            s["features"] = costs.stage_features(cs)


def stale(records: list[dict]) -> set[int]:
    """Seeds of the stored records whose model the compiler now builds with other C functions
    (a variant's `serves` changed): their counts no longer describe what it selects."""
    out = set()
    for r in records:
        cfg = dict(r["config"], seed=r["seed"])
        functions = [cs.function for cs in compiled(cfg, r["core"])[0]]
        if functions != [s["function"] for s in r["stages"]]:
            out.add(r["seed"])
    return out


def _fit_rel(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The non-negative coefficients minimising the squared relative error of a @ coef
    against y (SciPy's NNLS). Every feature counts work the kernel does, so no coefficient
    is below 0; unconstrained least squares traded large coefficients of opposite signs
    between loop counts that move together in the calibration models, which extrapolated
    badly (tb_iconv1d_xq_s16 on M4: -4,921 per call, -774 per output step; 45 % mean error
    on held-out stages)."""
    a_rel = a / y[:, None]  # relative error: (a @ coef - y) / y
    scale = np.abs(a_rel).max(axis=0)
    scale[scale == 0] = 1
    coef, _ = nnls(a_rel / scale, np.ones_like(y))
    return coef / scale


def _fit_group(data: dict[str, list], shared: tuple[str, ...]) -> dict[str, np.ndarray]:
    """One fit over the stages of functions sharing a body: the `shared` features' columns
    common to all, every other feature a column of its function's own. data: function ->
    [(features, instructions)]; returns function -> coef in `costs.FEATURES` order."""
    columns = list(shared) + [(fn, n) for fn in data for n in costs.FEATURES[fn] if n not in shared]
    rows, y = [], []
    for fn, stages in data.items():
        for f, n in stages:
            rows.append([f[c] if isinstance(c, str) else f[c[1]] * (c[0] == fn) for c in columns])
            y.append(n)
    coef = dict(
        zip(
            map(str, columns),
            _fit_rel(np.array(rows, np.float64), np.array(y, np.float64)),
            strict=True,
        )
    )
    return {
        fn: np.array([coef[n] if n in shared else coef[str((fn, n))] for n in costs.FEATURES[fn]])
        for fn in data
    }


def fit(records: list[dict]) -> dict:
    """Per core and C function, the coefficients of `costs.FEATURES` minimising the squared
    relative error over the records' stages (functions of one body, `costs.SHARED`, fitted
    together); the call overhead as its median."""
    rows = defaultdict(list)  # (core, function) -> [(features, instructions)]
    calls = defaultdict(list)
    for r in records:
        calls[r["core"]].append(r["call"])
        for s in r["stages"]:
            rows[r["core"], s["function"]].append((s["features"], s["instructions"]))
    cores: dict[str, dict] = {}
    for core, v in calls.items():
        cores[core] = {costs.CALL: dict(features=["one"], coef=[float(np.median(v))], n=len(v))}
    groups = [(fns, shared) for fns, shared in costs.SHARED.values()]
    grouped = {fn for fns, _ in groups for fn in fns}
    groups += [((fn,), ()) for fn in costs.FEATURES if fn not in grouped]
    for core in cores:
        for fns, shared in groups:
            data = {fn: rows[core, fn] for fn in fns if rows.get((core, fn))}
            if not data:
                continue
            for fn, coef in _fit_group(data, shared).items():
                a = np.array([[f[n] for n in costs.FEATURES[fn]] for f, _ in data[fn]], np.float64)
                y = np.array([n for _, n in data[fn]], np.float64)
                cores[core][fn] = dict(
                    features=list(costs.FEATURES[fn]),
                    coef=[float(c) for c in coef],
                    n=len(y),
                    max_rel_err=float((np.abs(a @ coef - y) / y).max()),
                )
        cores[core] = dict(sorted(cores[core].items()))
    return cores


def qemu_version() -> str:
    out = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True)
    m = re.search(r"version (\S+)", out.stdout)
    return m.group(1) if m else "unknown"


def evaluate(cores: dict, records: list[dict]) -> dict:
    """Per core: relative errors of the total (with the model's kind, `KINDS`) and of each
    stage's C function, over `records`."""
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
        out[r["core"]]["total"].append((kind_of(r["seed"]), (total - r["total"]) / r["total"]))
    return out


def pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def _max_mean(errors: list[float]) -> str:
    v = np.abs(np.array(errors))
    return f"{pct(v.max())} / {pct(v.mean())}" if len(v) else "-"


def write_table(errors: dict, cal: list[dict], held: list[dict], meta: dict) -> str:
    """benchmarks/results/costs.md: the held-out errors per core, model kind and function."""
    stages = defaultdict(int)  # (core, function) -> calibration stages
    shapes = defaultdict(set)  # (core, function) -> distinct loop counts among them
    for r in cal:
        for s in r["stages"]:
            stages[r["core"], s["function"]] += 1
            shapes[r["core"], s["function"]].add(tuple(sorted(s["features"].items())))
    kinds = ", ".join(
        f"{k} {len({r['seed'] for r in cal if kind_of(r['seed']) == k})}"
        f"/{len({r['seed'] for r in held if kind_of(r['seed']) == k})}"
        for k in KINDS
    )
    lines = [
        "# Instruction cost model: held-out errors",
        "",
        f"`benchmarks/calibrate_costs.py` fitted `tinybnn/compiler/costs.json` on "
        f"{len({r['seed'] for r in cal})} seeded `conv_classifier` models and measured the "
        f"estimate (`tinybnn.compiler.costs.estimate`) against QEMU counts "
        f"(`tinybnn.firmware.profile.profile`, -O2) on {len({r['seed'] for r in held})} other "
        f"models (seeds from {HELD_OUT_SEED}), on every core. Models per kind (calibration/"
        f'held-out): {kinds}; "speed" and "size" compile with that optimize, "budget" '
        'with optimize="speed" under a flash budget between the size and the speed flash '
        '(some stages swapped to their size kernels), "stress" draws toward the kernels the '
        'first fit saw least, "tight" compiles under the tightest flash budget the model '
        "meets (mostly int8 first layers: xq) (see KINDS in the script). A model whose arena "
        f"or flash is over a board's is skipped there (M0: 16 KB of RAM). tinybnn {meta['tinybnn']}, QEMU "
        f"{meta['qemu']}, {meta['date']}; profiling took {meta['seconds'] / 60:.1f} min on 2 "
        "cores (the stored runs: `benchmarks/results/costs_runs.jsonl.gz`; `--refit` fits "
        "them again without QEMU).",
        "",
        "Relative error of the estimated instructions per inference (estimate / measured - 1):",
        "",
        "| core | models | total: max abs | total: mean abs | total: mean (bias) | "
        + " | ".join(f"{k}: max / mean" for k in KINDS)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(KINDS),
    ]
    for core, e in errors.items():
        t = np.array([v for _, v in e["total"]])
        name = core
        if e.get("uncovered"):
            name = f"{core} ({e['uncovered']} models refused: uncalibrated kernel)"
        by_kind = [_max_mean([v for k, v in e["total"] if k == kind]) for kind in KINDS]
        lines.append(
            f"| {name} | {len(t)} | {pct(np.abs(t).max())} | {pct(np.abs(t).mean())} | "
            f"{pct(t.mean())} | " + " | ".join(by_kind) + " |"
        )
    functions = sorted(
        {fn.removeprefix("tb_") for _, fn in stages}
        | {k for e in errors.values() for k in e["kinds"]}
    )
    lines += [
        "",
        "Per C function, held-out stages: max / mean absolute relative error (stages); then "
        "the calibration stages and their distinct shapes (loop counts), on each core",
        "",
        "| C function | " + " | ".join(errors) + " |",
        "|---|" + "---|" * len(errors),
    ]
    for k in functions:
        cells = []
        for core, e in errors.items():
            v = e["kinds"].get(k, [])
            held_cell = f"{_max_mean(v)} ({len(v)})" if len(v) else "-"
            n, d = stages[core, f"tb_{k}"], len(shapes[core, f"tb_{k}"])
            cells.append(f"{held_cell}; cal {n}, {d} shapes")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The counts depend a little on the data (carry ripples that stop early, clamps), so no "
        "estimate is exact; the total's error is what `tinybnn search` budgets against.",
        "",
    ]
    return "\n".join(lines)


def read_runs() -> list[dict]:
    if not RUNS.exists():
        return []
    with gzip.open(RUNS, "rt") as f:
        return [json.loads(line) for line in f]


def write_runs(records: list[dict]) -> None:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    with gzip.GzipFile(RUNS, "wb", mtime=0) as f:  # mtime 0: the same bytes for the same runs
        f.write(text.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for kind, (n_cal, n_held) in COUNTS.items():
        parser.add_argument(
            f"--{kind}",
            type=int,
            nargs=2,
            default=(n_cal, n_held),
            metavar=("CAL", "HELD"),
            help=f"{kind} models to fit on and to test on (default {n_cal} {n_held})",
        )
    parser.add_argument("--jobs", type=int, default=2, help="models profiled at once")
    parser.add_argument("--refit", action="store_true", help="refit the stored runs, no QEMU")
    parser.add_argument(
        "--resume", action="store_true", help="keep the stored runs; profile the missing models"
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    seeds = []
    for kind, offset in KINDS.items():
        n_cal, n_held = getattr(args, kind)
        seeds += [offset + i for i in range(n_cal)]
        seeds += [HELD_OUT_SEED + offset + i for i in range(n_held)]
    records = read_runs() if args.refit or args.resume else []
    meta = json.loads(costs.COSTS_FILE.read_text())["meta"] if records else {}
    if args.refit:
        refeature(records)
    else:
        if records:  # resumed: profile again the models the compiler now builds otherwise
            again = stale(records)
            records = [r for r in records if r["seed"] not in again]
            refeature(records)  # the loop counts FEATURES names now that the runs lack
            print(f"{len(again)} stored models are stale (other kernels selected)", flush=True)
        done = {r["seed"] for r in records}
        configs = [model_config(s) for s in seeds if s not in done]
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            for i, recs in enumerate(pool.map(measure, configs)):
                records += recs
                print(
                    f"{i + 1}/{len(configs)} models, {time.monotonic() - start:.0f} s", flush=True
                )
        records.sort(key=lambda r: (r["seed"], list(CORES).index(r["core"])))
        write_runs(records)
        meta = dict(
            tinybnn=tinybnn.__version__,
            date=datetime.date.today().isoformat(),
            qemu=qemu_version(),
            opt="-O2",
            # profiling time, the stored runs' included when resumed
            seconds=meta.get("seconds", 0) + round(time.monotonic() - start),
        )
    meta["calibration_models"] = len({r["seed"] for r in records if r["seed"] < HELD_OUT_SEED})
    meta["held_out_models"] = len({r["seed"] for r in records if r["seed"] >= HELD_OUT_SEED})
    cal = [r for r in records if r["seed"] < HELD_OUT_SEED]
    held = [r for r in records if r["seed"] >= HELD_OUT_SEED]
    cores = fit(cal)
    costs.COSTS_FILE.write_text(json.dumps(dict(meta=meta, cores=cores), indent=1) + "\n")
    errors = evaluate(cores, held)
    text = write_table(errors, cal, held, meta)
    TABLE.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
