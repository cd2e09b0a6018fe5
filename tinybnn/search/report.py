"""What `tinybnn search` writes beside the model: `search.md` (the settings, the best model,
the Pareto front with measured and estimated figures side by side, every trial),
`pareto.png` (accuracy against instructions and against flash) and `trials.jsonl`."""

from __future__ import annotations

from pathlib import Path

from .budget import WEIGHTS_MOVE
from .run import (
    MARGIN_SE,
    SearchResult,
    Trial,
    _confirmed_rank,
    beats,
    close,
    paired_difference,
    write_json,
)


def _markdown(rows: list[tuple]) -> str:
    """A Markdown table; the first row is the header."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _measured(result: SearchResult, t: Trial) -> tuple[str, str, str]:
    p = result.measured.get(t.number)
    if p is None:
        return "-", "-", "-"
    return f"{p.instructions:,}", f"{p.flash_bytes:,}", f"{p.ram_bytes:,}"


def _second_scores(result: SearchResult) -> list[str]:
    """The contenders' trial and second scores, in the order they ranked."""
    if not result.contenders:
        return []
    cheapest = result.select == "cheapest"
    if cheapest:
        ref = max(result.contenders, key=_confirmed_rank)
        name = f"against the best second score (trial {ref.number}), points"
        rule = (
            "the written model is the contender with the fewest instructions whose second "
            f"score is not below the best by over {MARGIN_SE:g} standard error of the paired "
            "difference (± that error)."
        )
    else:
        ref = next((t for t in result.contenders if t.defaults), None)
        name = "against the defaults, points"
        rule = (
            "a challenger goes before the defaults only if it has more of the same windows "
            f"right by over {MARGIN_SE:g} standard error of the paired difference (± that "
            "error)."
        )
    rows = [
        (
            "trial",
            "trial held-out %",
            "second score %",
            name,
            "second cross-entropy",
            "instructions (estimate)",
            "candidate",
        )
    ]
    for t in result.contenders:
        against = "-"
        if ref is not None and t is not ref:
            diff, se = paired_difference(t.confirmed_hits, ref.confirmed_hits)
            if cheapest:
                note = "" if close(t, ref) else " (below)"
            else:
                note = " (beats them)" if beats(t, ref) else ""
            against = f"{diff:+.1f} ± {se:.1f}{note}"
        rows.append(
            (
                f"{t.number}{' (defaults)' if t.defaults else ''}",
                f"{t.accuracy:.1f}",
                f"{t.confirmed_accuracy:.1f} ({', '.join(f'{a:.1f}' for a in t.confirmed)})",
                against,
                f"{t.confirmed_loss:.3f}",
                f"{t.cost.instructions:,}",
                t.candidate.describe(),
            )
        )
    return [
        "",
        "## Scored again",
        "",
        f"On new folds at {result.confirm_steps} optimizer steps, in the order they rank "
        f"(--select {result.select}): {rule}",
        "",
        _markdown(rows),
        "",
    ]


def format_report(result: SearchResult) -> str:
    s = result.settings
    b = s.budget
    trained = [t for t in result.trials if t.folds]
    over = [t for t in result.trials if not t.folds]
    how = (
        f"{s.folds}-fold stratified cross-validation"
        if s.folds >= 2
        else "one stratified hold-out of 20 %"
    )
    best = result.best
    lines = [
        "# tinybnn search",
        "",
        f"- **Data**: {s.shape[0]} windows of {s.shape[1]} x {s.shape[2]}, {s.shape[3]} classes "
        f"(sha256 {s.data[:12]}).",
        f"- **Budget**: {b.describe()}. Flash is the model's constants (weights, tables, "
        "thresholds at their trained width) and arena its activation buffer, both from the "
        "compiler before training; instructions per inference are the cost model's estimate "
        "(`tinybnn.compiler.costs`, calibrated against QEMU) until measured; the defaults, "
        "where the estimate alone puts them over, are measured untrained under QEMU and fit "
        f"within {float(WEIGHTS_MOVE):.0%} of the budget (training moves the count).",
        f"- **Score**: held-out accuracy by {how} of the training data, {s.trial_steps} "
        f"optimizer steps per fold; seed {s.seed}. Among equal accuracies the defaults (trial "
        "0) come first, then the lower mean held-out cross-entropy, then fewer instructions. "
        + (
            "The best trial and the cheapest within a standard error of it are scored again "
            f"on new folds (seed {s.seed + 1}) at {result.confirm_steps} steps; the written "
            "model is the cheapest within a standard error of the best second score. "
            if result.select == "cheapest"
            else "The best trials ranked above the defaults, and the defaults, are scored "
            f"again on new folds (seed {s.seed + 1}) at {result.confirm_steps} steps, and rank "
            "on that second score (the defaults first among equals). "
        )
        + "No test data is read.",
        f"- **Trials**: {len(trained)} trained, {len(over)} candidates over budget (never "
        "trained).",
        "",
        "## The best model",
        "",
        f"Trial {best.number}{' (the defaults)' if best.defaults else ''}: "
        f"{best.accuracy:.1f} % held-out "
        f"({', '.join(f'{a:.1f}' for a in best.folds)} per fold; held-out cross-entropy "
        f"{best.loss:.3f})"
        + (f"; scored again: {best.confirmed_accuracy:.1f} %" if best.confirmed else "")
        + f"; {best.candidate.describe()}.",
        *(
            [
                "Passed over: measured under QEMU on the target, over the instruction budget: "
                + ", ".join(f"trial {n} ({i:,})" for n, i in result.passed_over.items())
                + "."
            ]
            if result.passed_over
            else []
        ),
        *(
            [f"Its instructions were checked on the estimate only ({result.unchecked})."]
            if result.unchecked
            else []
        ),
        f"Trained again on all the data with the full default schedule: `{result.model_path}` "
        f"(training-set accuracy {result.final_accuracy:.1f} %, eval mode). Compile it with "
        f"`tinybnn compile {result.model_path.name} --target {b.target}"
        + (f" --flash-budget {b.flash}" if b.flash else "")
        + "`.",
        "",
        *_second_scores(result),
        "## Pareto front (accuracy against instructions and flash)",
        "",
    ]
    if result.not_measured:
        lines.append(f"Not measured under QEMU: {result.not_measured}.")
    else:
        lines.append(
            f"Measured: one inference under QEMU on {b.target} (`tinybnn profile`; flash = code "
            "+ constants, RAM = arena + data + stack), the best trial's trained model and the "
            "other finalists untrained; estimated: the compiler's constants and the cost model."
        )
    lines.append("")
    rows = [
        (
            "trial",
            "held-out %",
            "instructions est.",
            "instructions measured",
            "constants B",
            "arena B",
            "flash B measured",
            "RAM B measured",
            "candidate",
        )
    ]
    for t in result.front:
        mi, mf, mr = _measured(result, t)
        rows.append(
            (
                f"{t.number}{' (defaults)' if t.defaults else ''}",
                f"{t.accuracy:.1f}",
                f"{t.cost.instructions:,}",
                mi,
                f"{t.cost.flash:,}",
                f"{t.cost.arena:,}",
                mf,
                mr,
                t.candidate.describe(),
            )
        )
    lines += [_markdown(rows), "", "## Every trial", ""]
    rows = [
        (
            "trial",
            "held-out %",
            "cross-entropy",
            "instructions est.",
            "constants B",
            "arena B",
            "s",
            "candidate",
        )
    ]
    for t in result.trials:
        rows.append(
            (
                f"{t.number}{' (defaults)' if t.defaults else ''}",
                f"{t.accuracy:.1f}" if t.folds else f"over budget: {t.over}",
                f"{t.loss:.3f}" if t.losses else "",
                "-"
                if t.cost.refused
                else f"{t.cost.instructions:,}"
                + ("" if t.cost.measured is None else f" (measured untrained {t.cost.measured:,})"),
                f"{t.cost.flash:,}" if not t.cost.refused else "-",
                f"{t.cost.arena:,}" if not t.cost.refused else "-",
                f"{t.seconds:.0f}" if t.folds else "",
                t.candidate.describe(),
            )
        )
    lines.append(_markdown(rows))
    return "\n".join(lines) + "\n"


def write_png(result: SearchResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [t for t in result.trials if t.folds]
    front = {t.number for t in result.front}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, what, label in (
        (
            axes[0],
            lambda t: t.cost.instructions / 1000,
            "instructions per inference (thousands, est.)",
        ),
        (axes[1], lambda t: t.cost.flash / 1024, "constants (KiB)"),
    ):
        ax.scatter(
            [what(t) for t in trained if t.number not in front],
            [t.accuracy for t in trained if t.number not in front],
            s=14,
            color="0.6",
            label="trial",
        )
        ax.scatter(
            [what(t) for t in trained if t.number in front],
            [t.accuracy for t in trained if t.number in front],
            s=24,
            color="C3",
            label="Pareto front",
        )
        b = result.best
        ax.scatter([what(b)], [b.accuracy], s=80, facecolors="none", edgecolors="k", label="best")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"tinybnn search: {result.settings.budget.describe()}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(result: SearchResult, out: Path) -> list[Path]:
    paths = [out / "search.md", out / "pareto.png", out / "trials.jsonl"]
    paths[0].write_text(format_report(result))
    write_png(result, paths[1])
    write_json(result, paths[2])
    result.files += paths
    return paths
