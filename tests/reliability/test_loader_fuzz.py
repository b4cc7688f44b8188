"""Fuzzing the report loader: whatever the bytes, text or JSON, ``load_report`` and
``parse_report`` give a validated ``Report`` or raise ``ReportError`` with a one-line
message; never any other exception (which the CLI would show as a traceback). A report the
loader accepts renders in every format ``advisor report`` offers without raising."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from advisor.profile import Report, ReportError, load_report, parse_report
from advisor.render import RENDERERS
from advisor.render.flame import render_collapsed, render_speedscope
from advisor.render.text import text_renderables

GOOD: dict[str, Any] = {
    "schema_version": 1,
    "run": {"argv": ["app.py", "--n", "3"], "mode": "deep", "python": "3.11.7", "cpu_count": 2,
            "started_at": "2026-11-25T08:00:00Z", "wall_s": 3.21, "cpu_s": 1.02, "exit_code": 0,
            "overhead": {"factor_estimate": 1.04, "corrected": True}},
    "tasks": [{"id": "asyncio:7", "name": "fetcher-1", "target": "app.fetch_user", "kind": "asyncio-task",
               "count": 1, "wall_s": 1.2, "cpu_s": 0.1,
               "breakdown": {"compute_s": 0.1, "io_s": 0.8, "waiting_s": 0.3, "scheduling_s": 0.0},
               "hot": [{"function": "app.parse", "file": "app.py", "line": 12, "self_s": 0.05}]}],
    "functions": [{"function": "app.parse", "file": "app.py", "line": 10, "calls": 5000, "self_s": 0.4,
                   "total_s": 0.9, "cpu_s": 0.85}],
    "findings": [{"rule": "blocking-sleep", "code": "ADV101", "severity": "high", "message": "blocks",
                  "location": {"file": "app.py", "line": 42, "function": "handler"},
                  "evidence": {"calls": 12}, "estimated_savings_s": 3.3, "fix": "await asyncio.sleep(0.3)"}],
    "samples": {"interval_s": 0.01, "frames": [{"function": "app.parse", "file": "app.py", "line": 12}],
                "stacks": [{"unit": "asyncio:7", "frames": [0], "on_cpu_s": 0.05, "off_cpu_s": 0.0,
                            "state": "running"}]},
}
GOOD_TEXT = json.dumps(GOOD)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def outcome(text: str) -> Report | None:
    """The loader's answer: a Report, or None after a one-line ReportError."""
    try:
        return parse_report(text, "fuzz.json")
    except ReportError as error:
        message = str(error)
        assert message.startswith("fuzz.json: ") and "\n" not in message, message
        return None


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document where a value can be replaced."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


PLACES = paths(GOOD)[1:]


@FUZZ
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    outcome(text)


@FUZZ
@given(JSON_VALUES)
def test_any_json_document(document: Any) -> None:
    outcome(json.dumps(document))


@FUZZ
@given(st.sampled_from(PLACES), JSON_VALUES)
def test_a_good_report_with_any_value_anywhere(place: tuple[Any, ...], value: Any) -> None:
    document = json.loads(GOOD_TEXT)
    where: Any = document
    for key in place[:-1]:
        where = where[key]
    where[place[-1]] = value
    report = outcome(json.dumps(document))
    if report is not None:  # accepted: then it is a report that serializes and renders
        assert json.loads(report.model_dump_json())["schema_version"] == 1
        render_everywhere(report)


def render_everywhere(report: Report) -> None:
    for render in (*RENDERERS.values(), render_collapsed, render_speedscope):
        assert isinstance(render(report), str)
    Console(file=io.StringIO(), width=140).print(text_renderables(report))  # the terminal's tables


@FUZZ
@given(st.integers(min_value=0, max_value=len(GOOD_TEXT) - 1), st.text(max_size=5))
def test_a_good_report_cut_or_spliced(at: int, splice: str) -> None:
    outcome(GOOD_TEXT[:at] + splice)
    outcome(GOOD_TEXT[:at] + splice + GOOD_TEXT[at + 1:])


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_in_a_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    try:
        load_report(path)
    except ReportError as error:
        assert str(error).startswith(f"{path}: ") and "\n" not in str(error)


def test_the_unfuzzed_report_loads() -> None:
    # the control: the document the mutations start from is a valid report
    report = outcome(GOOD_TEXT)
    assert report is not None
    assert report.tasks[0].hot[0].line == 12
    render_everywhere(report)


def test_a_stack_pointing_outside_the_frame_table_is_refused() -> None:
    # found by the fuzzing above: the flame renderers indexed the frame table with it
    document = json.loads(GOOD_TEXT)
    document["samples"]["stacks"][0]["frames"] = [0, 1]
    with pytest.raises(ReportError) as raised:
        parse_report(json.dumps(document), "fuzz.json")
    assert str(raised.value) == "fuzz.json: invalid report: samples: Value error, stack 0 points outside the 1 frames"


@FUZZ
@given(st.sampled_from(PLACES), JSON_VALUES, st.booleans())
def test_any_accepted_report_merges_with_a_good_one(place: tuple[Any, ...], value: Any, first: bool) -> None:
    from advisor.engine import analyze
    from advisor.merge import MergeError, merge_reports

    document = json.loads(GOOD_TEXT)
    where: Any = document
    for key in place[:-1]:
        where = where[key]
    where[place[-1]] = value
    report = outcome(json.dumps(document))
    good = outcome(GOOD_TEXT)
    assert good is not None
    if report is None:
        return
    try:
        merged = merge_reports([report, good] if first else [good, report])
    except MergeError as error:  # a report of another mode (the fuzzed `run.mode`)
        assert "different modes" in str(error)
        return
    assert sum(task.count for task in merged.tasks) == sum(task.count for task in (*report.tasks, *good.tasks))
    render_everywhere(analyze(merged))
