"""The benchmarks' one table format: Markdown, aligned so that it also reads as plain text.

The first column is left-aligned (names), the others right-aligned (figures).
"""

from __future__ import annotations


def render(rows: list[list[str]]) -> str:
    """A Markdown table of `rows` (the first one is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: list[str]) -> str:
        padded = [cell.ljust(width) if i == 0 else cell.rjust(width)
                  for i, (cell, width) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 1) + ":" if i else "-" * (width + 2)
                          for i, width in enumerate(widths)) + "|"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])
