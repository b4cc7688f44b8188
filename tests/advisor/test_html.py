"""The HTML renderer on a fixed, hand-built report: escaping, self-containment, content.

The browser's view of the same page (scripts run, lanes drawn, no console errors) is
tested in tests/e2e/browser; here the page is checked as text and as embedded data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from advisor.profile import (
    BlockingSite,
    Breakdown,
    Finding,
    FunctionStat,
    Location,
    Report,
    RunInfo,
    SampleFrame,
    Samples,
    StackSample,
    Task,
    parse_report,
    report_json,
)
from advisor.render.html import render_html

HOSTILE_UNIT = "</script><img src=x onerror=alert(1)>"
HOSTILE_FRAME = "evil.</script><script>alert(2)</script>"
PROGRAM = "".join(f"line_{number} = {number}\n" for number in range(1, 31))


def fixed_report(cwd: Path, source: str = "app.py") -> Report:
    run = RunInfo(argv=["app.py", "--n", "3"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z",
                  wall_s=2.0, cpu_s=0.5, exit_code=0, partial=True, cwd=str(cwd))
    run.overhead.factor_estimate = 1.04
    run.overhead.per_step_cost_s = 3.5e-7
    tasks = [
        Task(id="thread:1", name="MainThread", target="__main__", kind="thread", wall_s=2.0, cpu_s=0.2,
             breakdown=Breakdown(compute_s=0.2, waiting_s=1.8), start_s=0.0, end_s=2.0),
        Task(id="asyncio:2", name=HOSTILE_UNIT, target="app.poll", kind="asyncio-task", wall_s=1.0, cpu_s=0.1,
             breakdown=Breakdown(compute_s=0.1, io_s=0.3, waiting_s=0.6), blocking_s=0.4, start_s=0.5, end_s=1.5,
             blocking=[BlockingSite(kind="io", call="sock.recv", function="poll", file="app.py", line=12,
                                    seconds=0.1),
                       BlockingSite(kind="waiting", call="time.sleep", function="poll", file="app.py", line=20,
                                    seconds=0.3)]),
        Task(id="asyncio:3", name="app.fetch", target="app.fetch", kind="asyncio-task", count=40, wall_s=8.0,
             cpu_s=0.2, breakdown=Breakdown(compute_s=0.2, io_s=7.8), start_s=0.1, end_s=1.9),
    ]
    findings = [
        Finding(rule="call-overhead", code="ADV304", severity="low", message="tiny calls",
                location=Location(file="missing.py", line=7), estimated_savings_s=0.01),
        Finding(rule="blocking-sleep", code="ADV101", severity="high",
                message="time.sleep blocks the loop <img src=y onerror=alert(3)>",
                location=Location(file=source, line=20, function="app.poll"), estimated_savings_s=0.4,
                evidence={"units": [HOSTILE_UNIT], "blocked_s": 0.6, "calls": 3}, fix="await asyncio.sleep(0.2)"),
    ]
    frames = [SampleFrame(function="app.<module>", file="app.py", line=30),
              SampleFrame(function="app.poll", file="app.py", line=20),
              SampleFrame(function=HOSTILE_FRAME, file="app.py", line=12)]
    stacks = [StackSample(unit="asyncio:2", frames=[1, 0], on_cpu_s=0.05, off_cpu_s=0.3, state="waiting"),
              StackSample(unit="asyncio:2", frames=[2, 1, 0], on_cpu_s=0.01, off_cpu_s=0.1, state="io"),
              StackSample(unit="thread:1", frames=[0], on_cpu_s=0.0, off_cpu_s=1.5, state="idle")]
    functions = [FunctionStat(function="app.poll", file="app.py", line=18, calls=1200, self_s=0.05, total_s=0.4,
                              cpu_s=0.05)]
    return Report(run=run, tasks=tasks, findings=findings, functions=functions,
                  samples=Samples(interval_s=0.01, frames=frames, stacks=stacks))


@pytest.fixture
def report(tmp_path: Path) -> Report:
    (tmp_path / "app.py").write_text(PROGRAM, encoding="utf-8")
    return fixed_report(tmp_path)


def page_data(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="advisor-data">(.*?)</script>', page, re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_hostile_names_cannot_open_or_close_elements(report: Report) -> None:
    page = render_html(report)
    assert "<img" not in page
    assert "alert(2)</script>" not in page
    # only the page's own two scripts end, and nothing else opens one
    assert page.count("</script>") == 2
    assert page.count("<script") == 2
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page  # shown as text in the units table
    data = page_data(page)
    assert data["units"][1]["name"] == HOSTILE_UNIT  # and intact in the data the script draws from
    assert data["frames"][2][0] == HOSTILE_FRAME


def test_the_page_references_nothing_outside_itself(report: Report) -> None:
    page = render_html(report)
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page  # the browser may not fetch anything either
    references = re.findall(r'\b(?:src|href|action|srcset)\s*=\s*"([^"]*)"', page)
    assert references and all(ref.startswith("#") for ref in references), references
    assert "url(" not in page.replace("url(#timeline-clip)", "")
    assert "@import" not in page


def test_every_unit_and_finding_is_on_the_page(report: Report) -> None:
    page = render_html(report)
    for task in report.tasks:
        assert f'<tr data-unit="{task.id}">' in page
        assert f'<option value="{task.id}">' in page
    assert [unit["id"] for unit in page_data(page)["units"]] == [task.id for task in report.tasks]
    for finding in report.findings:
        assert f'data-rule="{finding.rule}"' in page
    # by severity: the high finding comes before the low one
    assert page.index('data-rule="blocking-sleep"') < page.index('data-rule="call-overhead"')
    assert "await asyncio.sleep(0.2)" in page
    assert "saves ~400.0 ms" in page and "(20% of wall)" in page
    assert "partial run (interrupted)" in page
    assert "×40" in page  # the folded unit's count
    assert "1,200" in page  # the hot function's calls
    assert "350 ns" in page  # sub-microsecond overhead figures keep their unit


def test_overhead_fields_newer_than_the_renderer_are_shown(report: Report) -> None:
    document = json.loads(report_json(report))
    document["run"]["overhead"].update(gc_pause_s=0.0125, retries=3, label="x")
    page = render_html(parse_report(json.dumps(document)))
    overhead = page[page.index('id="overhead"'):]
    assert "<th>gc_pause_s</th><td class=\"num\">12.5 ms</td>" in overhead
    assert "<th>retries</th><td class=\"num\">3</td>" in overhead
    assert "<th>label</th>" not in overhead


def test_findings_show_the_source_around_their_line(report: Report) -> None:
    page = render_html(report)
    lines = re.findall(r'<span class="src-line( hit)?" data-line="(\d+)"><span class="ln">\d+</span>([^\n]*)', page)
    assert [int(number) for _, number, _ in lines] == list(range(16, 25))
    assert [(number, text) for hit, number, text in lines if hit] == [("20", "line_20 = 20")]
    assert all(text == f"line_{number} = {number}" for _, number, text in lines)
    # the other finding's file does not exist where the run was
    assert f"source not available: <code>{Path(report.run.cwd) / 'missing.py'}</code>" in page


def test_a_snippet_near_the_start_of_a_file_is_cut_at_line_one(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PROGRAM, encoding="utf-8")
    report = fixed_report(tmp_path)
    report.findings[1].location.line = 2
    numbers = re.findall(r'<span class="src-line(?: hit)?" data-line="(\d+)"', render_html(report))
    assert numbers == [str(number) for number in range(1, 7)]


def test_absolute_paths_are_read_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.py").write_text(PROGRAM, encoding="utf-8")
    report = fixed_report(tmp_path / "no-such-cwd", source=str(tmp_path / "elsewhere.py"))
    assert '<span class="src-line hit" data-line="20">' in render_html(report)


def test_the_timeline_and_flame_data(report: Report) -> None:
    data = page_data(render_html(report))
    polled = data["units"][1]
    assert (polled["start"], polled["end"], polled["blocking"]) == (0.5, 1.5, 0.4)
    assert polled["blocking_io_share"] == 0.25  # 0.1 s of its 0.4 s blocking sites were I/O
    assert data["units"][2]["count"] == 40
    # stacks root first, weighted on + off CPU; the idle main-thread stack is left out
    assert data["stacks"] == [["asyncio:2", [0, 1], 0.35, 0.05, "waiting"],
                              ["asyncio:2", [0, 1, 2], 0.11, 0.01, "io"]]


def test_a_saved_report_renders_the_same_page(report: Report) -> None:
    assert render_html(parse_report(report_json(report))) == render_html(report)


def test_reports_without_unit_times_or_anything_else_still_render(tmp_path: Path) -> None:
    report = fixed_report(tmp_path)
    document = json.loads(report_json(report))
    for task in document["tasks"]:
        del task["start_s"], task["end_s"]
    old = parse_report(json.dumps(document))
    assert [unit["start"] for unit in page_data(render_html(old))["units"]] == [None, None, None]
    empty = Report(run=report.run)
    page = render_html(empty)
    assert "No findings" in page and "No functions were sampled." in page
    assert page_data(page) == {"wall": 2.0, "units": [], "frames": [], "stacks": []}


def test_only_findings_advisor_fix_can_make_are_marked_automatic(report: Report) -> None:
    assert report.findings and not any(finding.fixable for finding in report.findings)
    assert "[*] automatic" not in render_html(report)
    marked = report.model_copy(deep=True)
    marked.findings[0].fixable = True
    page = render_html(marked)
    assert page.count("[*] automatic") == 1
    article = page[page.index(f'data-rule="{marked.findings[0].rule}"'):]
    assert article.index("[*] automatic") < article.index("</article>")
