"""Mixed precision chosen by `tinybnn importance` on the development panel (issue 15).

    .venv/bin/python benchmarks/importance_panel.py [--sets CricketX ...] [--seeds 0]
                                                    [--fine-tune] [--folds K [--repeats N]]
                                                    [--runs runs.jsonl]
                                                    [--out FILE]

Per set and seed, without ever looking at the test split for a choice:
1. the all-binary default BNN (`tinybnn.train(part, seed=s, last_conv=1)`: the defaults
   with the last convolution kept binary, as they were when this was measured; they now take
   an int8 last convolution where it fits) and its float twin are trained on four fifths of TRAIN (`tinybnn.training.data.split`, stratified);
2. `importance(..., activations=True, epochs=None)` (`tinybnn importance --activations
   --retrain`) raises each binary layer alone (weights to int8; the signs into the global
   pooling to int8 codes, with the convolution's weights binary and int8), trains each model
   and the unchanged one alike with the full default recipe from their current weights on
   that part, scores them on the held-out fifth and prices them on Cortex-M4 under QEMU;
   with --fine-tune, the 5-epoch fine-tune instead (how the first table was made); with
   --folds K, scored by K-fold cross-validation of all of TRAIN instead of a held-out
   fifth (the BNN and the twin then trained on all of TRAIN, as on the panel, and the
   suggestion and the all-binary model trained alike from the BNN's weights); with
   --repeats N as well, each model trained N times per fold (seeds s .. s+N-1), scored by
   the mean;
3. the suggestion is its best change within the all-binary model's own flash again (at most
   2x the flash), and that model, as importance trained it, is scored on TEST beside the
   all-binary model trained alike and the twin.
The table gives test accuracy, the gap to the twin that the suggestion closes, and flash and
M4 instructions of both models (`tinybnn.firmware.profile`, --optimize speed), and the
flash of the portable build (`tinybnn.summary`).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import torch

import tinybnn
from tinybnn.training.data import split
from tinybnn.training.importance import FINE_TUNE_EPOCHS, importance
from tinybnn.training.tsfile import load_ts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from panel import accuracy, files  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ALL_BINARY = dict(last_conv=1)  # the defaults, all hidden convolutions binary
GAP_SETS = ("CricketX", "CricketY", "CricketZ", "EOGHorizontalSignal", "GestureMidAirD1")


def _row(name, seed, tuning, result, base, twin, test, scored_changes) -> dict:
    """The run's record: test accuracy of the all-binary model and the twin, and every
    change importance measured (with its test accuracy when `scored_changes`)."""
    return dict(
        name=name,
        seed=seed,
        tuning=tuning,
        binary=accuracy(base, test.X, test.y),
        twin=accuracy(twin, test.X, test.y),
        flash=result.base.flash_bytes,
        portable_flash=tinybnn.summary(base).flash_bytes,
        instructions=result.base.instructions,
        changes=[
            dict(
                what=c.what,
                val=100 * c.accuracy,
                **({"test": accuracy(c.model, test.X, test.y)} if scored_changes else {}),
                flash=c.flash_bytes,
                instr=c.instructions,
            )
            for c in result.changes
        ],
        val_binary=100 * result.base.accuracy,
    )


def _suggested(row: dict, best, mixed, test) -> None:
    row.update(
        suggestion=best.what,
        mixed=accuracy(mixed, test.X, test.y),
        mixed_flash=best.flash_bytes,
        mixed_portable_flash=tinybnn.summary(mixed).flash_bytes,
        mixed_instructions=best.instructions,
    )


def folds_tuning(tuning: str, k: int, repeats: int) -> str:
    """How a --folds run was trained and scored: its rows' key in the runs file."""
    mean = f", mean of {repeats} seeds" if repeats > 1 else ""
    return f"{tuning}, scored by {k}-fold cross-validation of all of TRAIN{mean}"


def run_folds(name: str, seed: int, k: int, repeats: int = 1) -> dict:
    """importance scored by k-fold cross-validation of all of TRAIN; the default BNN and the
    twin trained on all of TRAIN (as the panel), the suggestion and the all-binary model
    then trained alike with the default recipe from the BNN's weights on all of TRAIN."""
    train_file, test_file = files(name)
    train = load_ts(train_file).data
    test = load_ts(test_file, like=train_file).data
    bnn = tinybnn.train(train, seed=seed, threads=1, progress=False, **ALL_BINARY).model
    twin = tinybnn.train(train, seed=seed, threads=1, progress=False, twin=True, **ALL_BINARY).model
    result = importance(
        bnn, train, seed=seed, activations=True, epochs=None, folds=k, repeats=repeats
    )
    result = replace(result, flash_budget=result.base.flash_bytes)  # at most 2x the flash
    best = result.suggestion()

    def trained(model):  # a copy: tinybnn.train trains the model it is given in place
        return tinybnn.train(
            train, copy.deepcopy(model), seed=seed, threads=1, progress=False
        ).model

    tuning = folds_tuning(result.tuning, k, repeats)
    row = _row(name, seed, tuning, result, trained(bnn), twin, test, scored_changes=False)
    row["default"] = accuracy(bnn, test.X, test.y)  # the default BNN, trained once
    if best is not None:
        _suggested(row, best, trained(best.apply(bnn)), test)
    return row


def run(name: str, seed: int, fine_tune: bool) -> dict:
    train_file, test_file = files(name)
    train = load_ts(train_file).data
    test = load_ts(test_file, like=train_file).data
    part, held = split(train, 0.2, seed)
    bnn = tinybnn.train(part, seed=seed, threads=1, progress=False, **ALL_BINARY).model
    twin = tinybnn.train(part, seed=seed, threads=1, progress=False, twin=True, **ALL_BINARY).model
    epochs = FINE_TUNE_EPOCHS if fine_tune else None
    result = importance(bnn, part, val_data=held, seed=seed, activations=True, epochs=epochs)
    result = replace(result, flash_budget=result.base.flash_bytes)  # at most 2x the flash
    best = result.suggestion()
    row = _row(name, seed, result.tuning, result, result.base.model, twin, test, True)
    if best is not None:
        _suggested(row, best, best.model, test)
    return row


FINE_TUNED = f"a {FINE_TUNE_EPOCHS}-epoch fine-tune"  # the runs made before --retrain


def render(rows: list[dict]) -> str:
    lines = [
        "# Mixed precision chosen by `tinybnn importance` on the panel's gap sets",
        "",
        "Written by `benchmarks/importance_panel.py` (see its docstring: `importance` scores "
        "each change on a held-out fifth of TRAIN, the models trained on the other four "
        "fifths, or by cross-validation of all of TRAIN, as each table's title says; its "
        "suggestion is its best change within the all-binary model's flash again; the test "
        "split is only reported). "
        "Test accuracy %; flash B and instructions per inference on Cortex-M4 under QEMU "
        "(--optimize speed); portable flash B from `tinybnn.summary`. The BNN is the "
        "all-binary default (`last_conv=1`: the defaults now take an int8 last convolution "
        'where it fits, recipe.md "E-last-conv").',
    ]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r.get("tuning", FINE_TUNED), []).append(r)
    for tuning, group in sorted(groups.items(), key=lambda kv: kv[0] == FINE_TUNED):
        lines += _table(tuning, group)
    return "\n".join(lines) + "\n"


def _table(tuning: str, rows: list[dict]) -> list[str]:
    scored = "cross-validation" if "cross-validation" in tuning else "the held-out fifth"
    lines = [
        "",
        f"## {tuning[0].upper()}{tuning[1:]}",
        "",
        "| set | seed | all-binary | suggestion | mix | twin | gap closed "
        "| flash B binary / mix (portable) | M4 instructions binary / mix |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if any("default" in r for r in rows):
        lines[-2:] = [
            "| set | seed | default BNN | all-binary trained alike | suggestion | mix | twin | "
            "gap closed (from the default BNN) | flash B binary / mix (portable) "
            "| M4 instructions binary / mix |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
    for r in rows:
        first = r.get("default", r["binary"])  # the gap is the default BNN's where recorded
        gap = r["twin"] - first
        portable = (
            f" ({r['portable_flash']:,} / {r['mixed_portable_flash']:,})"
            if "mixed_portable_flash" in r
            else ""
        )
        default = f"{r['default']:.1f} | " if "default" in r else ""
        if "suggestion" in r:
            closed = f"{100 * (r['mixed'] - first) / gap:.0f} %" if gap > 0 else "— (no gap)"
            lines.append(
                f"| {r['name']} | {r['seed']} | {default}{r['binary']:.1f} | {r['suggestion']} | "
                f"{r['mixed']:.1f} | {r['twin']:.1f} | {closed} | {r['flash']:,} / "
                f"{r['mixed_flash']:,}{portable} | {r['instructions']:,} / "
                f"{r['mixed_instructions']:,} |"
            )
        else:
            lines.append(
                f"| {r['name']} | {r['seed']} | {default}{r['binary']:.1f} | none gains on {scored} | — | {r['twin']:.1f} | 0 % | {r['flash']:,} / — | "
                f"{r['instructions']:,} / — |"
            )
    if any("default" in r for r in rows):
        lines += [
            "",
            "Default BNN: `tinybnn.train(TRAIN, seed=s)`, trained once as on the panel; the "
            "gap closed is measured from it. All-binary trained alike: that model trained once "
            "more with the recipe from its weights, as `importance --retrain` trains every "
            "change; the suggestion is trained the same way.",
        ]
    lines += [
        "",
        f"Every change `importance` measured: accuracy on {scored} (what chose), "
        "and, where recorded, on TEST (for the record; never used for a choice).",
        "",
    ]
    for r in rows:
        each = "; ".join(
            f"{c['what']}: {c['val']:.1f} %"
            + (f" (test {c['test']:.1f} %)" if "test" in c else "")
            + f", {c['flash']:,} B, {c['instr']:,} instr"
            for c in r["changes"]
        )
        lines.append(
            f"- {r['name']} seed {r['seed']}: unchanged {r['val_binary']:.1f} %, "
            f"{r['flash']:,} B, {r['instructions']:,} instr; {each}"
        )
    closed = [
        (r["mixed"] - r.get("default", r["binary"])) / (r["twin"] - r.get("default", r["binary"]))
        for r in rows
        if "suggestion" in r and r["twin"] > r.get("default", r["binary"])
    ]
    if closed:
        lines += ["", f"Mean share of the gap closed: {100 * statistics.mean(closed):.0f} %."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(GAP_SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--fine-tune", action="store_true", help="the 5-epoch fine-tune instead of --retrain"
    )
    parser.add_argument(
        "--folds", type=int, help="score by k-fold cross-validation of all of TRAIN instead"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="with --folds: each model trained N times, the mean"
    )
    parser.add_argument("--runs", type=Path, default=ROOT / "benchmarks/results/mixed_runs.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mixed.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    if args.runs.exists():
        rows = [json.loads(line) for line in args.runs.read_text().splitlines() if line]
    tuning = FINE_TUNED if args.fine_tune else "trained with the default recipe"
    if args.folds:
        tuning = folds_tuning(tuning, args.folds, args.repeats)
    have = {(r["name"], r["seed"], r.get("tuning", FINE_TUNED)) for r in rows}
    for name in args.sets:
        for seed in args.seeds:
            if (name, seed, tuning) in have:
                continue
            if args.folds:
                row = run_folds(name, seed, args.folds, args.repeats)
            else:
                row = run(name, seed, args.fine_tune)
            print(json.dumps(row), flush=True)
            with args.runs.open("a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
    args.out.write_text(render(rows))


if __name__ == "__main__":
    main()
