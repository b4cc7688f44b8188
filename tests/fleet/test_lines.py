"""Per-line hot spots: the hottest lines of each hot function, from the sampled stacks.

A hand-built report checks the arithmetic (self time per line from the threads' samples, the
units that spent it from the tasks', idle excluded); real programs check that the line
where a function spends its time comes out on top, in the JSON, the text report and the
evidence of a finding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from advisor.lines import hot_line, with_hot_lines, with_lines
from advisor.profile import (
    Breakdown,
    Finding,
    FunctionStat,
    HotSpot,
    Location,
    Report,
    RunInfo,
    SampleFrame,
    Samples,
    StackSample,
    Task,
)

PROGRAMS = Path(__file__).parent / "programs"


def _task(uid: str, name: str, kind: str, hot: list[HotSpot] | None = None) -> Task:
    return Task(id=uid, name=name, target=name, kind=kind, wall_s=1.0, cpu_s=0.5,  # type: ignore[arg-type]
                breakdown=Breakdown(compute_s=0.5, waiting_s=0.5), hot=hot or [])


def hand_built() -> Report:
    frames = [SampleFrame(function="app.parse", file="app.py", line=12),
              SampleFrame(function="app.parse", file="app.py", line=14),
              SampleFrame(function="app.handler", file="app.py", line=30),
              SampleFrame(function="app.wait", file="app.py", line=40)]
    stacks = [
        # the thread's view: all the time spent on it
        StackSample(unit="thread:1", frames=[0, 2], on_cpu_s=0.30, off_cpu_s=0.0, state="running"),
        StackSample(unit="thread:1", frames=[1, 2], on_cpu_s=0.05, off_cpu_s=0.05, state="running"),
        StackSample(unit="thread:1", frames=[3], on_cpu_s=0.0, off_cpu_s=2.0, state="idle"),
        # the same time again, per task
        StackSample(unit="asyncio:2", frames=[0, 2], on_cpu_s=0.20, off_cpu_s=0.0, state="running"),
        StackSample(unit="asyncio:3", frames=[0, 2], on_cpu_s=0.10, off_cpu_s=0.0, state="running"),
        StackSample(unit="asyncio:3", frames=[1, 2], on_cpu_s=0.05, off_cpu_s=0.05, state="running"),
    ]
    spot = HotSpot(function="app.parse", file="app.py", line=12, self_s=0.15)
    return Report(
        run=RunInfo(argv=["app.py"], python="3.11", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=2.4,
                    cpu_s=0.35, exit_code=0),
        tasks=[_task("thread:1", "MainThread", "thread"), _task("asyncio:2", "order-1", "asyncio-task"),
               _task("asyncio:3", "order-2", "asyncio-task", [spot])],
        functions=[FunctionStat(function="app.parse", file="app.py", line=10, self_s=0.4, total_s=0.4, cpu_s=0.35),
                   FunctionStat(function="app.wait", file="app.py", line=39, self_s=0.0, total_s=0.0, cpu_s=0.0)],
        samples=Samples(interval_s=0.01, frames=frames, stacks=stacks))


def test_lines_of_a_function_add_its_threads_samples_per_line_and_name_the_tasks() -> None:
    report = with_lines(hand_built())
    parse = report.functions[0]
    assert [(line.line, line.self_s, line.cpu_s) for line in parse.lines] == [(12, 0.3, 0.3), (14, 0.1, 0.05)]
    assert [(unit.unit, unit.seconds) for unit in parse.lines[0].units] == [("order-1", 0.2), ("order-2", 0.1)]
    assert [(unit.unit, unit.seconds) for unit in parse.lines[1].units] == [("order-2", 0.1)]
    # waiting idle in the loop is no line's cost
    assert report.functions[1].lines == []


def test_a_units_hot_spot_gets_its_own_lines() -> None:
    report = with_lines(hand_built())
    spot = report.tasks[2].hot[0]
    assert [(line.line, line.self_s) for line in spot.lines] == [(12, 0.1), (14, 0.05)]


def test_a_finding_in_a_sampled_function_gets_its_hottest_line_as_evidence() -> None:
    report = with_lines(hand_built())
    inside = Finding(rule="cacheable-function", code="ADV302", severity="high", message="m",
                     location=Location(file="app.py", line=10, function="parse"), evidence={"calls": 3})
    elsewhere = Finding(rule="blocking-io", code="ADV201", severity="low", message="m",
                        location=Location(file="other.py", line=3, function="parse"))
    assert hot_line(report, inside) == {"file": "app.py", "line": 12, "function": "app.parse", "self_s": 0.3,
                                        "units": ["order-1", "order-2"]}
    annotated = with_hot_lines(report.model_copy(update={"findings": [inside, elsewhere]}))
    assert annotated.findings[0].evidence["hot_line"]["line"] == 12
    assert annotated.findings[0].evidence["calls"] == 3
    assert "hot_line" not in annotated.findings[1].evidence


def test_the_hottest_line_of_a_real_function(run_advisor: Any, read_report: Any, tmp_path: Path) -> None:
    done = run_advisor(["run", "--json", "r.json", str(PROGRAMS / "hot_line.py")])
    assert done.returncode == 0, done.stderr
    report = read_report(tmp_path / "r.json")
    work = next(function for function in report["functions"] if function["function"] == "hot_line.work")
    top = work["lines"][0]
    assert top["line"] == 9
    assert top["self_s"] >= 0.8 * work["self_s"] > 0.2
    assert top["units"][0]["unit"] == "MainThread"
    assert sum(line["self_s"] for line in work["lines"]) == pytest.approx(work["self_s"], abs=1e-4)
    main = next(task for task in report["tasks"] if task["name"] == "MainThread")
    assert main["hot"][0]["lines"][0]["line"] == 9
    # the text report lists it next to the function
    assert ":9 " in done.stderr and "hottest lines" in done.stderr


def test_a_findings_evidence_names_the_line_where_its_function_spent_its_time(
        run_advisor: Any, read_report: Any, tmp_path: Path) -> None:
    program = Path(__file__).parents[2] / "examples" / "blocking-sleep" / "bad.py"
    done = run_advisor(["run", "--json", "r.json", "--md", "r.md", str(program)])
    assert done.returncode == 0, done.stderr
    report = read_report(tmp_path / "r.json")
    finding = next(finding for finding in report["findings"] if finding["rule"] == "blocking-sleep")
    hot = finding["evidence"]["hot_line"]
    # poll() spends its time in the time.sleep on line 18, in the poll task
    assert hot["line"] == 18 and hot["function"].endswith("poll")
    assert hot["self_s"] == pytest.approx(4 * 0.15, rel=0.2)
    assert hot["units"] and hot["units"][0] != "MainThread"
    assert "hottest line:" in done.stderr
    assert "  - hottest line: `" in (tmp_path / "r.md").read_text()
