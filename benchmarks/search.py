"""`tinybnn search` against the defaults on the development panel, under the earbud budget.

    .venv/bin/python benchmarks/search.py [--sets ECG5000 CBF ...] [--trials 40] [--seeds 3]
                                          [--ray] [--select defaults|cheapest]
                                          [--runs search_runs.jsonl]
                                          [--out benchmarks/results/search.md]

Per set: `tinybnn.search(TRAIN, Budget("cortex-m4", flash=16 KiB, ram=4 KiB,
instructions=<the defaults' measured count>), trials, seed=0)` on the official TRAIN file
only, so the search may not spend more instructions than the defaults (seed 0), built for
the Cortex-M4 within 16 KiB, take under QEMU (the search prices candidates with the cost
model, then measures the one it writes, and scores its best trials again on new folds at
the full schedule before it chooses by `--select`); its wall time. The
defaults' CV is the search's trial 0, or where the defaults were over budget before
training, the defaults scored as a trial is (the same folds and steps). Then
the best candidate and the defaults are each trained on the whole TRAIN file with seeds
0.. (`tinybnn.train(..., **candidate options)` / `tinybnn.train(...)`) and scored on TEST,
which nothing else reads; and both are profiled once under QEMU on the Cortex-M4
(instructions per inference, flash = code + constants, RAM = arena + data + stack).
With `--ray` the same search also runs on a local 2-CPU Ray instance, for the goal that its
written model is within 1 point of the in-process one's (both trained on TRAIN, seed 0, and
scored on TEST).

Each finished set is appended to `--runs` (one JSON line) and not run again; the table is
written from every line for the sets asked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import optuna
import panel

import tinybnn
from tinybnn.compiler import codegen
from tinybnn.compiler.costs import estimate
from tinybnn.compiler.lowering import lower
from tinybnn.errors import TinyBNNError
from tinybnn.firmware.profile import profile
from tinybnn.search import Budget, search
from tinybnn.search.run import SELECT, SELECT_DEFAULT, evaluate
from tinybnn.search.space import default_params, suggest
from tinybnn.training.tsfile import load_ts

ROOT = Path(__file__).resolve().parent.parent
FLASH, RAM, TARGET = 16 * 1024, 4 * 1024, "cortex-m4"


def run_set(
    name: str, trials: int, seeds: int, ray: bool, work: Path, select: str = SELECT_DEFAULT
) -> dict:
    train_path, test_path = panel.files(name)
    train = load_ts(train_path).data
    test = load_ts(test_path, like=train_path).data
    defaults, compiled, default_budget, p_base = the_defaults(train)
    budget = Budget(TARGET, flash=FLASH, ram=RAM, instructions=p_base.instructions)
    resumed = (work / name / "study.journal").exists()
    if resumed and not same_budget(work / name, budget):  # the defaults measure otherwise now
        (work / name).rename(work / f"{name}-{time.strftime('%Y%m%d%H%M%S')}")
        resumed = False
    start = time.monotonic()
    r = search(train, work / name, budget, trials=trials, seed=0, measure=False, select=select)
    seconds = time.monotonic() - start
    first = next((t for t in r.trials if t.defaults and t.folds), None)
    # the search's own trial 0 where it was trained (the same options, folds and steps)
    default_cv = first.accuracy if first is not None else defaults_cv(train, r.settings)
    row = dict(
        set=name,
        code=code_version(),
        windows=len(train),
        trials=trials,
        search_seconds=round(seconds),
        resumed=resumed,
        select=select,
        contenders=[
            dict(trial=t.number, defaults=t.defaults, cv=t.accuracy, second=t.confirmed_accuracy)
            for t in r.contenders
        ],
        best_trial=r.best.number,
        best_cv=r.best.accuracy,
        defaults_cv=default_cv,
        defaults_trial=next((t.over or "trained" for t in r.trials if t.number == 0), None),
        candidate=r.best.candidate.describe(),
        budget_instructions=p_base.instructions,
        defaults_estimate=estimate(compiled).instructions,
        passed_over=r.passed_over,
        defaults_fit=default_budget is not None,
        defaults_constants=compiled.flash_bytes,
    )
    options = r.best.candidate.options()
    p_found = profile(tinybnn.load(r.model_path), TARGET, flash_budget=FLASH)
    # the seeds' trainings, two at a time (one thread each, as the search's trials)
    jobs = [(name, s, options) for s in range(seeds)] + [(name, s, {}) for s in range(1, seeds)]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        accs = list(pool.map(test_accuracy, *zip(*jobs, strict=True)))
    found = accs[:seeds]
    base = [panel.accuracy(defaults.model, test.X, test.y), *accs[seeds:]]
    row.update(
        found=found,
        defaults=base,
        found_instructions=p_found.instructions,
        defaults_instructions=p_base.instructions,
        found_flash=p_found.flash_bytes,
        defaults_flash=p_base.flash_bytes,
        found_ram=p_found.ram_bytes,
        defaults_ram=p_base.ram_bytes,
    )
    if ray:  # the in-process search is this row's: its time is the one measured above
        row.update(run_ray(name, trials, work, budget, None if resumed else row["search_seconds"]))
    return row


def code_version() -> str:
    """The commit the benchmark runs (with "+changes" if `tinybnn/` differs from it) and the
    cost model's file, whose estimates steer a search's trials: a row's search is that of
    this code."""
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run([*git, "status", "--porcelain", "tinybnn"], capture_output=True)
    costs = hashlib.sha256((ROOT / "tinybnn/compiler/costs.json").read_bytes()).hexdigest()
    return (
        f"{commit.stdout.strip() or 'unknown'}{'+changes' if changed.stdout.strip() else ''}"
        f", costs.json {costs[:8]}"
    )


def the_defaults(train):
    """`tinybnn.train(train, seed=0)`; its build for the target within the flash budget
    (tables dropped where they do not fit), the build the measured figures are of, or where
    the target's layout of the default model is over the budget even with the fewest
    constants, its build without a budget; that budget (or None); and its QEMU profile.
    The budget of a search against the defaults is that profile's instructions."""
    defaults = tinybnn.train(train, seed=0, threads=1, progress=False)
    try:
        compiled = codegen.build(lower(defaults.model), "model", {}, TARGET, "speed", FLASH)
        default_budget = FLASH
    except TinyBNNError:
        compiled = codegen.build(lower(defaults.model), "model", {}, TARGET, "speed")
        default_budget = None
    p_base = profile(defaults.model, TARGET, flash_budget=default_budget)
    return defaults, compiled, default_budget, p_base


def same_budget(out: Path, budget: Budget) -> bool:
    """Whether the study in `out` was started with `budget`'s instructions."""
    from tinybnn.search.run import STUDY, storage_for

    study = optuna.load_study(study_name=STUDY, storage=storage_for(out, None))
    return study.user_attrs.get("settings", {}).get("instructions") == budget.instructions


def test_accuracy(name: str, seed: int, options: dict) -> float:
    """TEST accuracy (%) of `tinybnn.train(TRAIN, seed=seed, **options)`."""
    train_path, test_path = panel.files(name)
    train = load_ts(train_path).data
    test = load_ts(test_path, like=train_path).data
    model = tinybnn.train(train, seed=seed, threads=1, progress=False, **options).model
    return panel.accuracy(model, test.X, test.y)


def run_ray(
    name: str, trials: int, work: Path, budget: Budget, local_seconds: int | None = None
) -> dict:
    """The same search on a local 2-CPU Ray instance; both searches' written models (trained
    on all of TRAIN, seed 0) scored on TEST. `local_seconds`: the in-process search's time
    where it was just run (it is resumed here); else it is timed here if it starts afresh,
    and not given (None) if it resumes a study run before."""
    train_path, test_path = panel.files(name)
    train = load_ts(train_path).data
    test = load_ts(test_path, like=train_path).data
    resumed = (work / name / "study.journal").exists()
    start = time.monotonic()
    local = search(train, work / name, budget, trials=trials, seed=0, measure=False)
    if local_seconds is None and not resumed:
        local_seconds = time.monotonic() - start
    start = time.monotonic()
    rr = search(
        train, work / f"{name}-ray", budget, trials=trials, seed=0, ray="local", measure=False
    )
    return dict(
        # the in-process search run here, beside the Ray one under the same code (the row's
        # own search may have been run by an earlier version, or resumed)
        local_best_cv=local.best.accuracy,
        local_best_trial=local.best.number,
        local_candidate=local.best.candidate.describe(),
        local_seconds=None if local_seconds is None else round(local_seconds),
        ray_seconds=round(time.monotonic() - start),
        ray_best_cv=rr.best.accuracy,
        ray_best_trial=rr.best.number,
        ray_candidate=rr.best.candidate.describe(),
        ray_model_test=panel.accuracy(tinybnn.load(rr.model_path), test.X, test.y),
        local_model_test=panel.accuracy(tinybnn.load(local.model_path), test.X, test.y),
    )


def defaults_cv(train, settings) -> float:
    """The defaults scored as the search's trial 0 is: the same options (the recipe's own
    for the whole training file), folds and steps."""
    params = default_params(settings.shape, FLASH)
    options = suggest(optuna.trial.FixedTrial(params), settings.shape).options()
    accs, _, _ = evaluate(options, train, settings.folds, settings.seed, settings.trial_steps)
    return statistics.mean(accs)


def seconds(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def mean_sd(v: list[float]) -> str:
    return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"


# The goals: at least as accurate as the defaults (TEST, mean over the seeds) for at
# most their instructions (measured) on every set; strictly better on at least half of them,
# by at least GAIN points or at most FEWER of the defaults' instructions at no loss.
GAIN, FEWER = 1.0, Fraction(7, 10)


def difference(r: dict) -> float:
    """The search's TEST % less the defaults', means over the seeds (of the same windows:
    equal models score equal lists, so their difference is exactly 0)."""
    return statistics.mean(r["found"]) - statistics.mean(r["defaults"])


def goals(rows: list[dict]) -> list[str]:
    """The table's rows counted against the goals (the sets that meet each, named)."""
    as_good, better = [], []
    for r in rows:
        d = round(difference(r), 9)  # k of n windows: no real difference is within 1e-9
        if d < 0 or r["found_instructions"] > r["budget_instructions"]:
            continue
        as_good.append(r["set"])
        if d >= GAIN or r["found_instructions"] <= FEWER * r["defaults_instructions"]:
            better.append(r["set"])
    n, misses = len(rows), [r["set"] for r in rows if r["set"] not in as_good]
    return [
        "",
        f"Against the goals, {n} sets: at least as accurate (test % difference ≥ 0) for at most "
        f"the defaults' instructions: {len(as_good)} of {n}"
        + (f" (not: {', '.join(misses)})" if misses else "")
        + f"; strictly better (≥ {GAIN:.0f} point, or ≤ {float(FEWER):.0%} of the "
        f"instructions at no loss): {len(better)} of {n}"
        + (f" ({', '.join(better)})" if better else "")
        + f", against a goal of at least {math.ceil(n / 2)}.",
    ]


def render(rows: list[dict]) -> str:
    rules = sorted({r.get("select", "defaults") for r in rows})
    lines = [
        "# tinybnn search against the defaults",
        "",
        "Written by `benchmarks/search.py`: per set, `tinybnn search` on the official TRAIN "
        f"file under the earbud budget ({TARGET}, {FLASH:,} B of constants, {RAM:,} B of "
        "arena, and no more instructions than the defaults take, measured), seed 0; the best "
        "candidate and the defaults then trained on TRAIN with seeds 0.. and scored on TEST "
        "(read by nothing else); instructions per inference, flash (code + constants) and RAM "
        "measured once under QEMU on the Cortex-M4 (-O2), both built within the flash budget "
        "(the defaults without it where their M4 layout is over it even without tables: "
        "marked *). "
        "'defaults as trial 0': whether the search's first trial, the defaults, fitted the "
        "budget before training (the check takes thresholds at their widest); 'passed over': "
        "trials ranked above the written one whose measured instructions were over the budget; "
        "'scored again': the contenders' trial CV → their second score (new folds, the "
        "defaults' 2,000 steps), in the order they ranked on it, d = the defaults; 'resumed': "
        "the search's trials were run before (the time is the second scores' and the final "
        "training's); 'code': the commit and cost model the search ran (the cost model's "
        "estimates decide which candidates are trained, so a new one leads a search "
        "elsewhere; rows recorded before this was kept name the commit that recorded them). "
        f"The written model was chosen by `--select {' / '.join(rules)}`"
        + (" (per set, after its name)." if len(rules) > 1 else "."),
        "",
        "| set | windows | search s | CV % defaults / best | test % defaults | test % search | "
        "difference | instructions defaults / search | flash B | RAM B | best candidate | "
        "defaults as trial 0 | passed over | scored again | code |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rule = r.get("select", "defaults")
        diff = difference(r)
        cv = r["defaults_cv"]
        again = ", ".join(
            f"{'d' if c['defaults'] else c['trial']}: {c['cv']:.1f} → {c['second']:.1f}"
            for c in r.get("contenders", [])
        )
        lines.append(
            f"| {r['set']}{f' ({rule})' if len(rules) > 1 else ''} | {r['windows']} | "
            f"{r['search_seconds']}"
            f"{' (resumed)' if r.get('resumed') else ''} | "
            f"{'-' if cv is None else f'{cv:.1f}'} / {r['best_cv']:.1f} | "
            f"{mean_sd(r['defaults'])} | {mean_sd(r['found'])} | {diff:+.1f} | "
            f"{r['defaults_instructions']:,}{'' if r.get('defaults_fit', True) else '*'} / "
            f"{r['found_instructions']:,} "
            f"({r['found_instructions'] / r['defaults_instructions']:.2f}x) | "
            f"{r['defaults_flash']:,} / {r['found_flash']:,} | "
            f"{r['defaults_ram']:,} / {r['found_ram']:,} | {r['candidate']} | "
            f"{r.get('defaults_trial') or '-'} | "
            f"{', '.join(f'{n} ({i:,})' for n, i in r.get('passed_over', {}).items()) or '-'} | "
            f"{again or '-'} | {r.get('code', '-')} |"
        )
    lines += goals(rows)
    ray = [r for r in rows if "ray_best_cv" in r]
    if ray:
        lines += [
            "",
            "The same search (seed 0, the same trials and budget) in-process and on a local "
            "2-CPU Ray instance through Ray Tune, run one after the other by the same code; "
            "'written' is the trial each search wrote, its CV % the trial's score; test % is "
            "of that model (the candidate trained on all of TRAIN, seed 0). The time is the "
            "wall-clock of each whole search (trials, second scores, final training).",
            "",
            "| set | written, CV % in-process | written, CV % Ray | test % in-process / Ray "
            "| seconds in-process / Ray | in-process candidate | Ray's candidate |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['set']} | {r['local_best_trial']}: {r['local_best_cv']:.1f} | "
            f"{r['ray_best_trial']}: {r['ray_best_cv']:.1f} | "
            f"{r['local_model_test']:.1f} / {r['ray_model_test']:.1f} | "
            f"{seconds(r['local_seconds'])} / {r['ray_seconds']:,} | {r['local_candidate']} | "
            f"{r['ray_candidate']} |"
            for r in ray
        ]
    return "\n".join(lines) + "\n"


def read_runs(path: Path) -> dict[str, dict]:
    """Set name -> its finished row, from a runs file (one JSON line per set), or {}."""
    if not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["set"]: r for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(panel.PANEL))
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ray", action="store_true")
    ap.add_argument("--select", choices=SELECT, default=SELECT_DEFAULT)
    ap.add_argument("--runs", type=Path, default=Path("search_runs.jsonl"))
    ap.add_argument("--work", type=Path, default=Path("search_work"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/search.md")
    a = ap.parse_args()
    done = read_runs(a.runs)
    for name in a.sets:
        if name in done and (not a.ray or "ray_best_cv" in done[name]):
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        if name in done:  # searched before without Ray: only the Ray half
            r = done[name]
            budget = Budget(TARGET, flash=FLASH, ram=RAM, instructions=r["budget_instructions"])
            done[name] = {**r, **run_ray(name, r["trials"], a.work, budget)}
        else:
            done[name] = run_set(name, a.trials, a.seeds, a.ray, a.work, a.select)
        a.runs.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    a.out.write_text(render([done[n] for n in a.sets if n in done]))
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
