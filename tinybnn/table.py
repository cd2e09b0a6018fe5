"""The one table printer of the reports (summary, compile, profile): aligned columns of
text, numbers right-aligned, with horizontal rules under chosen rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def format_table(
    rows: Sequence[Sequence[object]], left: Iterable[int] = (0,), rules: Iterable[int] = (0,)
) -> str:
    """`rows` (the first is the header) as lines: columns in `left` left-aligned, the rest
    right-aligned; a rule of dashes, as wide as the header line, after each row in `rules`."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    left, rules = set(left), set(rules)

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    lines = []
    rule = "-" * len(line(cells[0]))
    for j, row in enumerate(cells):
        lines.append(line(row))
        if j in rules:
            lines.append(rule)
    return "\n".join(lines)
