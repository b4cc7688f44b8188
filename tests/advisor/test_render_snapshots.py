"""Snapshot tests: every renderer on one fixed, hand-built report, against files under review.

The report is deterministic (fixed times, names, paths and samples), so each renderer's
output is compared byte for byte with ``tests/advisor/snapshots/report.<ext>``. A change
of output shows as a unified diff; when the change is meant, regenerate the files with
``ADVISOR_UPDATE_SNAPSHOTS=1 python -m pytest tests/advisor/test_render_snapshots.py`` and
review them in the commit like code.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.profile import (
    AwaitSite,
    BlockingSite,
    Breakdown,
    CallWindow,
    Finding,
    FunctionStat,
    HotSpot,
    Location,
    Overhead,
    ProbeStatus,
    Report,
    RunInfo,
    SampleFrame,
    Samples,
    StackSample,
    Task,
    report_json,
)
from advisor.render import RENDERERS
from advisor.render.flame import render_collapsed, render_speedscope
from advisor.render.markdown import render_markdown
from advisor.render.sarif import render_sarif
from advisor.render.text import render_text

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("ADVISOR_UPDATE_SNAPSHOTS") == "1"
TEXT_WIDTH = 140  # what the CLI gives a pipe or a file


def fixed_report() -> Report:
    """A small service's run: an asyncio poller that blocks its loop, folded fetchers, a
    worker thread, hot functions and four findings, one of each severity."""
    run = RunInfo(argv=["service.py", "--port", "0"], mode="standard", python="3.11.7", cpu_count=2,
                  started_at="2026-11-25T08:00:00Z", wall_s=2.5, cpu_s=1.1, exit_code=0, cwd="/srv/app",
                  overhead=Overhead(factor_estimate=1.04, corrected=True, overhead_s=0.09, hooked_steps=1840,
                                    per_step_cost_s=2e-6, sampler_ticks=250, sample_interval_s=0.01),
                  probes=[ProbeStatus(name="threads", active=True), ProbeStatus(name="sampler", active=True),
                          ProbeStatus(name="asyncio", active=True),
                          ProbeStatus(name="greenlet", active=False, note="gevent is not installed")])
    tasks = [
        Task(id="thread:1", name="MainThread", target="service.main", kind="thread", wall_s=2.5, cpu_s=0.9,
             breakdown=Breakdown(compute_s=0.9, io_s=0.2, waiting_s=1.4), blocking_s=0.6,
             blocking=[BlockingSite(kind="waiting", call="time.sleep", function="service.poll", file="service.py",
                                    line=41, seconds=0.6)],
             hot=[HotSpot(function="service.render_page", file="service.py", line=22, self_s=0.5)]),
        Task(id="asyncio:2", name="poller", target="service.poll", kind="asyncio-task", wall_s=2.0, cpu_s=0.05,
             breakdown=Breakdown(compute_s=0.05, waiting_s=1.95), blocking_s=0.6, steps=9, longest_step_s=0.3,
             blocking=[BlockingSite(kind="waiting", call="time.sleep", function="service.poll", file="service.py",
                                    line=41, seconds=0.6)],
             file="service.py", line=36),
        Task(id="asyncio:3", name="Task-3", target="service.fetch", kind="asyncio-task", count=20, wall_s=4.0,
             cpu_s=0.1, breakdown=Breakdown(compute_s=0.1, io_s=2.9, waiting_s=0.2, scheduling_s=0.8), steps=60,
             longest_step_s=0.01, file="service.py", line=50,
             awaits=[AwaitSite(function="service.fetch", file="service.py", line=53, suspensions=40, calls=40,
                               io_s=2.9, waiting_s=0.0, longest_s=0.2)]),
        Task(id="thread:4", name="exporter", target="service.export", kind="thread", wall_s=1.2, cpu_s=0.05,
             breakdown=Breakdown(compute_s=0.05, waiting_s=0.75, io_s=0.4), lock_wait_s=0.75,
             file="service.py", line=70),
    ]
    functions = [
        FunctionStat(function="service.render_page", file="service.py", line=20, calls=4000, self_s=0.5,
                     total_s=0.62, cpu_s=0.6,
                     window=CallWindow(calls=4000, distinct_args=3, unhashable_calls=0, per_call_s=1.5e-4,
                                       window_s=0.6)),
        FunctionStat(function="json.dumps", file="/usr/lib/python3.11/json/__init__.py", line=183, self_s=0.12,
                     total_s=0.2, cpu_s=0.2),
    ]
    findings = [
        Finding(rule="blocking-sleep", code="ADV101", severity="high",
                message="time.sleep(0.2) blocks the event loop in poll(); poll() held it 0.60 s",
                location=Location(file="service.py", line=41, function="service.poll"),
                evidence={"units": ["poller"], "blocked_s": 0.6, "call": "time.sleep"},
                estimated_savings_s=0.6, fix="await asyncio.sleep(0.2)", fixable=True),
        Finding(rule="cacheable-function", code="ADV302", severity="medium",
                message="render_page() was called 4000 times with 3 distinct arguments",
                location=Location(file="service.py", line=20, function="service.render_page"),
                evidence={"calls": 4000, "distinct_args": 3}, estimated_savings_s=0.45,
                fix="@functools.lru_cache(maxsize=128)"),
        Finding(rule="lock-contention", code="ADV104", severity="low",
                message="exporter waited 0.75 s for results_lock",
                location=Location(file="service.py", line=72, function="service.export"),
                evidence={"units": ["exporter"], "lock_wait_s": 0.75}, estimated_savings_s=0.08,
                fix="hold results_lock only around the append"),
        Finding(rule="sequential-awaits", code="ADV103", severity="info",
                message="fetch() awaited 40 independent calls one after the other",
                location=Location(file="/opt/shared/client.py", line=9, function="client.get"),
                evidence={"calls": 40}, estimated_savings_s=0.0),
    ]
    samples = Samples(
        interval_s=0.01,
        frames=[SampleFrame(function="service.main", file="service.py", line=80),
                SampleFrame(function="service.render_page", file="service.py", line=22),
                SampleFrame(function="service.poll", file="service.py", line=41),
                SampleFrame(function="time.sleep", file="<built-in>", line=0),
                SampleFrame(function="service.export", file="service.py", line=72)],
        stacks=[StackSample(unit="thread:1", frames=[1, 0], on_cpu_s=0.5, off_cpu_s=0.0, state="running"),
                StackSample(unit="thread:1", frames=[3, 2, 0], on_cpu_s=0.0, off_cpu_s=0.6, state="waiting"),
                StackSample(unit="thread:1", frames=[0], on_cpu_s=0.0, off_cpu_s=0.3, state="idle"),
                StackSample(unit="thread:4", frames=[4], on_cpu_s=0.01, off_cpu_s=0.74, state="waiting")],
    )
    return Report(run=run, tasks=tasks, functions=functions, findings=findings, samples=samples,
                  sources={"service.py": "sha256:" + "5e" * 32})


def baseline_report() -> Report:
    """The run before: no cache finding yet, a finding since fixed, a faster poller."""
    report = fixed_report()
    findings = [finding for finding in report.findings if finding.code != "ADV302"]
    findings.append(Finding(rule="blocking-io", code="ADV201", severity="medium",
                            message="requests.get() blocks the event loop in fetch()",
                            location=Location(file="service.py", line=53, function="service.fetch"),
                            estimated_savings_s=0.3, fix="httpx.AsyncClient().get(url)"))
    tasks = [task.model_copy(update={"wall_s": 1.5}) if task.name == "poller" else task for task in report.tasks]
    run = report.run.model_copy(update={"wall_s": 2.1})
    return report.model_copy(update={"findings": findings, "tasks": tasks, "run": run})


RENDERINGS: dict[str, Callable[[Report], str]] = {
    "txt": lambda report: render_text(report, width=TEXT_WIDTH),
    "json": report_json,
    "md": lambda report: render_markdown(report, baseline_report()),
    "sarif": render_sarif,
    "collapsed": render_collapsed,
    "speedscope.json": render_speedscope,
}


def assert_matches_snapshot(name: str, actual: str) -> None:
    """Compare with the committed snapshot (or write it, with ADVISOR_UPDATE_SNAPSHOTS=1)."""
    path = SNAPSHOTS / name
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path}; create it with ADVISOR_UPDATE_SNAPSHOTS=1 and review it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                            fromfile=f"snapshots/{name} (committed)", tofile=f"{name} (rendered now)"))
        pytest.fail(f"{name} differs from its snapshot (if the change is meant: ADVISOR_UPDATE_SNAPSHOTS=1, then "
                    f"review the file):\n{diff}", pytrace=False)


@pytest.mark.parametrize("extension", list(RENDERINGS))
def test_renderer_output_matches_its_snapshot(extension: str) -> None:
    assert_matches_snapshot(f"report.{extension}", RENDERINGS[extension](fixed_report()))


@pytest.mark.parametrize("extension", list(RENDERINGS))
def test_renderers_are_deterministic_and_read_only_the_report(extension: str) -> None:
    report = fixed_report()
    before = report.model_dump()
    first = RENDERINGS[extension](report)
    assert RENDERINGS[extension](report) == first
    assert report.model_dump() == before  # a renderer never changes the report it is given


def test_the_saved_json_renders_exactly_like_the_report_it_came_from() -> None:
    # every renderer works from the saved JSON alone: a round trip changes no output
    from advisor.profile import parse_report

    report = fixed_report()
    reloaded = parse_report(report_json(report))
    for extension, render in RENDERINGS.items():
        assert render(reloaded) == render(report), extension


def test_stderr_formats_are_the_snapshotted_renderers() -> None:
    assert RENDERERS["sarif"] is render_sarif
    assert RENDERERS["md"] is render_markdown
    assert RENDERERS["json"] is report_json
    assert json.loads(RENDERERS["sarif"](fixed_report()))["version"] == "2.1.0"


@pytest.mark.skipif(importlib.util.find_spec("advisor.render.html") is None, reason="no HTML renderer in this tree")
def test_html_is_deterministic() -> None:
    from advisor.render.html import render_html

    report = fixed_report()
    page = render_html(report)
    assert render_html(report) == page
    assert render_html(fixed_report()) == page
    assert "service.py" in page
    assert "ADV101" in page
