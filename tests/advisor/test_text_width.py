"""The terminal report on narrow terminals: columns give way, figures are never cut."""

from __future__ import annotations

import re

import pytest

from advisor.profile import Report
from advisor.render.text import render_text, seconds

from .test_render_snapshots import fixed_report


def units_block(text: str) -> str:
    return text.split("Units (")[1].split("\n\n\n")[0] if "\n\n\n" in text else text.split("Units (")[1]


@pytest.mark.parametrize("width", [72, 80, 100, 120, 140, 200])
def test_every_units_figure_is_shown_whole_at_any_width(width: int) -> None:
    report = fixed_report()
    text = render_text(report, width)
    for line in text.splitlines():
        assert len(line) <= width, line
    for task in report.tasks:
        row = next(line for line in text.splitlines() if task.name[:6] in line)
        assert seconds(task.wall_s) in row, (width, row)
        assert seconds(task.breakdown.compute_s) in row, (width, row)
        assert "…" not in re.sub(r"^\W*\S+", "", row.split(seconds(task.wall_s))[1]), (width, row)


def test_narrow_terminals_drop_place_kind_and_all_zero_columns_wide_ones_keep_them() -> None:
    report: Report = fixed_report()
    for task in report.tasks:
        task.blocking_s = 0.0
    wide = render_text(report, 160)
    narrow = render_text(report, 80)
    assert "where" in wide and "kind" in wide and "blocking" in wide
    header = next(line for line in narrow.splitlines() if "unit" in line and "wall" in line)
    assert "where" not in header and "kind" not in header and "blocking" not in header
    assert "compute" in header and "wall" in header


@pytest.mark.parametrize(("function", "file", "shown"), [
    ("examples.checkout_service.app.audit", "examples/checkout_service/app.py", "audit"),
    ("shop.geometry.Point.scaled", "shop/geometry.py", "Point.scaled"),
    ("prog.<module>", "prog.py", "<module>"),
    ("json.dumps", "json/__init__.py", "json.dumps"),  # a package's __init__: its name says where
    ("builtins.len", "", "builtins.len"),
])
def test_hot_functions_are_named_within_their_file(function: str, file: str, shown: str) -> None:
    from advisor.render.text import local_name

    assert local_name(function, file) == shown
