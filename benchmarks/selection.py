"""Which rule `tinybnn search` should choose its model by, decided on TRAIN alone.

    .venv/bin/python benchmarks/selection.py [--sets GunPoint CBF ...] [--trials 40]
                                             [--seeds 3] [--runs selection_runs.jsonl]
                                             [--out benchmarks/results/selection.md]

`--select defaults` keeps the defaults unless a challenger beats them on the second score
by over a standard error; `--select cheapest` takes the fewest instructions within a
standard error of the best second score (Breiman's one-standard-error rule, with
instructions as the measure of size). Which one generalises is a question about data the
search has not seen, so it is asked of a nested split of the official TRAIN file: per set,
TRAIN is split (stratified, seed 0) into a search part (2/3) and a check part (1/3). On the
search part, as `benchmarks/search.py` does on all of TRAIN: the defaults (seed 0) are
profiled under QEMU on the Cortex-M4 within 16 KiB, and `tinybnn.search` runs under the
earbud budget (16 KiB of constants, 4 KiB of arena, at most those instructions), 40
trials, seed 0, choosing by `defaults`; the same study is then copied and chosen from again
by `cheapest` (its trials are not run again; only the contenders it adds are scored). Each
rule's model is trained on the search part with seeds 0.. and scored on the check part,
window by window; its instructions are measured under QEMU. The TEST file is not read.

The decision, fixed before any set was run: `cheapest` becomes the default if, over every
check window of the sets run (each window's difference averaged over the seeds), its
accuracy is not below `defaults`' by more than one standard error of that paired
difference, no set is below by more than two of its own standard errors, and it cuts the
measured instructions on at least one set. Otherwise `defaults` stays.

Each finished set is appended to `--runs` (one JSON line) and not run again.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import panel
from search import FLASH, RAM, TARGET, mean_sd, read_runs, the_defaults

import tinybnn
from tinybnn.firmware.profile import profile
from tinybnn.search import Budget, search
from tinybnn.search.run import margin_sign
from tinybnn.training.data import split
from tinybnn.training.tsfile import load_ts

ROOT = Path(__file__).resolve().parent.parent
CHECK = 1 / 3  # of TRAIN, held out from the search
RULES = ("defaults", "cheapest")


def parts(name: str):
    """The set's search part and check part of TRAIN."""
    train = load_ts(panel.files(name)[0]).data
    return split(train, CHECK, seed=0)


def check_hits(name: str, seed: int, options: dict) -> str:
    """Per window of the check part, 1 if `tinybnn.train(search part, seed, **options)`
    gets it right."""
    part, check = parts(name)
    model = tinybnn.train(part, seed=seed, threads=1, progress=False, **options).model
    pred = panel.predictions(model, check.X)
    return "".join("1" if p == y else "0" for p, y in zip(pred, check.y, strict=True))


def run_set(name: str, trials: int, seeds: int, work: Path) -> dict:
    part, check = parts(name)
    _, _, default_budget, p_base = the_defaults(part)
    budget = Budget(TARGET, flash=FLASH, ram=RAM, instructions=p_base.instructions)
    row = dict(
        set=name,
        search_windows=len(part),
        check_windows=len(check),
        trials=trials,
        budget_instructions=p_base.instructions,
        defaults_fit=default_budget is not None,
    )
    picks = {}
    for rule in RULES:
        out = work / f"{name}-{rule}"
        if rule != RULES[0] and not out.exists():  # the same study, chosen from again
            shutil.copytree(work / f"{name}-{RULES[0]}", out)
        start = time.monotonic()
        r = search(part, out, budget, trials=trials, seed=0, select=rule, measure=False)
        p = profile(tinybnn.load(r.model_path), TARGET, flash_budget=FLASH)
        picks[rule] = r.best.candidate.options()
        row[rule] = dict(
            seconds=round(time.monotonic() - start),
            trial=r.best.number,
            defaults=r.best.defaults,
            cv=r.best.accuracy,
            second=r.best.confirmed_accuracy,
            candidate=r.best.candidate.describe(),
            instructions=p.instructions,
            flash=p.flash_bytes,
            ram=p.ram_bytes,
            contenders=[
                dict(
                    trial=t.number,
                    defaults=t.defaults,
                    cv=t.accuracy,
                    second=t.confirmed_accuracy,
                    instructions=t.cost.instructions,
                )
                for t in r.contenders
            ],
        )
    jobs = [(name, s, picks[rule]) for rule in RULES for s in range(seeds)]
    same = row["cheapest"]["trial"] == row["defaults"]["trial"]
    if same:  # one model: its scores serve both rules
        jobs = jobs[:seeds]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        hits = list(pool.map(check_hits, *zip(*jobs, strict=True)))
    for i, rule in enumerate(RULES):
        row[rule]["hits"] = hits[:seeds] if same else hits[i * seeds : (i + 1) * seeds]
    return row


def accuracy(hits: str) -> float:
    return 100 * hits.count("1") / len(hits)


def window_differences(row: dict) -> np.ndarray:
    """Per check window: cheapest's hits minus defaults', summed over the seeds (an integer;
    divide by the seeds for the mean)."""

    def rights(rule):
        return np.array([[c == "1" for c in h] for h in row[rule]["hits"]], dtype=np.int64)

    return (rights("cheapest") - rights("defaults")).sum(0)


def difference(d: np.ndarray, seeds: int) -> tuple[float, float]:
    """Mean paired difference in points and its standard error."""
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0
    return 100 * float(d.mean()) / seeds, 100 * se / seeds


def in_errors(d: np.ndarray) -> float:
    """The mean paired difference in its standard errors (0 where they are all equal)."""
    diff, se = difference(d, 1)
    return diff / se if se else math.copysign(math.inf, diff) if diff else 0.0


def render(rows: list[dict], seeds: int) -> str:
    lines = [
        "# Choosing the written model: the defaults' rule against the cheapest within a "
        "standard error",
        "",
        "Written by `benchmarks/selection.py` (its docstring has the method and the decision "
        "rule, fixed before the first set ran). Per set: TRAIN split into a search part (2/3) "
        "and a check part (1/3); `tinybnn search` on the search part under the earbud budget "
        f"({TARGET}, {FLASH:,} B of constants, {RAM:,} B of arena, at most the instructions "
        "the defaults trained on the search part take), 40 trials, seed 0; the model each "
        f"rule chooses from that study trained on the search part with seeds 0–{seeds - 1} "
        "and scored on the check part. TEST is not read. Instructions are measured under QEMU "
        "(-O2, the model trained with seed 0, built within the flash budget). 'difference': "
        "cheapest − defaults on the same check windows, each window averaged over the seeds, "
        "± its standard error.",
        "",
        "| set | windows search / check | budget instructions | --select defaults: trial, "
        "instructions | --select cheapest: trial, instructions | check % defaults | "
        "check % cheapest | difference, points | instructions cheapest / defaults |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    all_d = []
    for r in rows:
        d = window_differences(r)
        all_d.append(d)
        diff, se = difference(d, seeds)
        cells = []
        for rule in RULES:
            x = r[rule]
            cells.append(
                f"{x['trial']}{' (the defaults)' if x['defaults'] else ''}, {x['instructions']:,}"
            )
        lines.append(
            f"| {r['set']} | {r['search_windows']} / {r['check_windows']} | "
            f"{r['budget_instructions']:,}{'' if r['defaults_fit'] else '*'} | "
            f"{cells[0]} | {cells[1]} | "
            f"{mean_sd([accuracy(h) for h in r['defaults']['hits']])} | "
            f"{mean_sd([accuracy(h) for h in r['cheapest']['hits']])} | "
            f"{diff:+.1f} ± {se:.1f} | "
            f"{r['cheapest']['instructions'] / r['defaults']['instructions']:.2f}x |"
        )
    if rows:
        pooled = np.concatenate(all_d)
        diff, se = difference(pooled, seeds)
        worst = min(in_errors(d) for d in all_d)
        # exact where it matters: a margin of exactly one (or two) errors is common
        within_one = margin_sign(pooled) >= 0
        within_two = all(margin_sign(d, 2) >= 0 for d in all_d)
        cuts = sum(1 for r in rows if r["cheapest"]["instructions"] < r["defaults"]["instructions"])
        ratios = [r["cheapest"]["instructions"] / r["defaults"]["instructions"] for r in rows]
        adopt = within_one and within_two and cuts >= 1
        lines += [
            "",
            f"**Over every check window of the {len(rows)} sets**: cheapest − defaults "
            f"{diff:+.2f} ± {se:.2f} points; the worst set at {worst:+.1f} of its standard "
            f"errors; instructions cut on {cuts} of {len(rows)} sets (geometric mean ratio "
            f"{statistics.geometric_mean(ratios):.2f}x). By the rule fixed beforehand: "
            + ("**cheapest becomes the default**." if adopt else "**defaults stays**."),
        ]
        lines += ["", "Contenders per rule (trial: trial CV % → second score %, instructions):", ""]
        for r in rows:
            for rule in RULES:
                c = ", ".join(
                    f"{'d' if x['defaults'] else x['trial']}: {x['cv']:.1f} → "
                    f"{x['second']:.1f}, {x['instructions']:,}"
                    for x in r[rule]["contenders"]
                )
                lines.append(f"- {r['set']}, {rule}: {c or 'none'}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["GunPoint", "CBF", "JapaneseVowels"])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--runs", type=Path, default=Path("selection_runs.jsonl"))
    ap.add_argument("--work", type=Path, default=Path("selection_work"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/selection.md")
    a = ap.parse_args()
    done = read_runs(a.runs)
    for name in a.sets:
        if name in done:
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        done[name] = run_set(name, a.trials, a.seeds, a.work)
        a.runs.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    a.out.write_text(render([done[n] for n in a.sets if n in done], a.seeds))
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
