"""benchmarks/search.py's count of its rows against the search issue's goals."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import search as bench  # noqa: E402


def row(name: str, found: list[float], defaults: list[float], instructions: int) -> dict:
    """A set's row: the defaults take 1,000 instructions, the budget."""
    return dict(
        set=name,
        found=found,
        defaults=defaults,
        found_instructions=instructions,
        defaults_instructions=1000,
        budget_instructions=1000,
    )


def test_goals_count_each_rule_at_its_boundary():
    # test % as the panel gives them: k of n windows, so means of thirds
    third = [100 * k / 3 for k in (1, 2, 2)]
    rows = [
        row("same", [90.0, 91.0], [90.0, 91.0], 1000),  # the defaults written
        row("point", [91.0, 92.0], [90.0, 91.0], 1000),  # exactly one point better
        row("short", [90.9, 91.9], [90.0, 91.0], 1000),  # 0.9 better: as good only
        row("fewer", third, third, 700),  # 70 % of the instructions, no loss
        row("not-fewer", [90.0], [90.0], 701),
        row("loss", [89.9, 91.0], [90.0, 91.0], 100),  # cheap, but 0.05 below
        row("over", [99.0], [90.0], 1001),  # better, over the budget
    ]
    lines = bench.goals(rows)
    text = "\n".join(lines)
    assert "at most the defaults' instructions: 5 of 7 (not: loss, over)" in text
    assert "strictly better (≥ 1 point, or ≤ 70% of the instructions at no loss): 2 of 7 " in text
    assert "(point, fewer), against a goal of at least 4." in text


def test_goals_name_no_miss_when_every_set_is_as_good():
    rows = [row("a", [90.0], [90.0], 1000), row("b", [91.0], [90.0], 500)]
    text = "\n".join(bench.goals(rows))
    assert "2 of 2;" in text and "not:" not in text
    assert "1 of 2 (b), against a goal of at least 1." in text
