"""The Markdown checklist renderer, on a fixed report."""

from __future__ import annotations

from advisor.profile import Breakdown, Finding, Location, Report, RunInfo, Task
from advisor.render import RENDERERS
from advisor.render.markdown import render_markdown


def fixed_report(partial: bool = False) -> Report:
    run = RunInfo(argv=["app.py", "--n", "3"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z",
                  wall_s=1.5, cpu_s=0.4, exit_code=0, partial=partial)
    task = Task(id="asyncio:1", name="poller|1", target="app.poll", kind="asyncio-task", wall_s=1.0, cpu_s=0.1,
                breakdown=Breakdown(compute_s=0.1, waiting_s=0.9), blocking_s=0.6)
    findings = [
        Finding(rule="blocking-sleep", code="ADV101", severity="high", message="time.sleep blocks the loop",
                location=Location(file="app.py", line=39, function="app.poll"), estimated_savings_s=0.4,
                evidence={"units": ["poller"], "blocked_s": 0.6}, fix="await asyncio.sleep(0.2)"),
        Finding(rule="call-overhead", code="ADV304", severity="low", message="tiny calls",
                location=Location(file="app.py", line=7), estimated_savings_s=0.01),
    ]
    return Report(run=run, tasks=[task], findings=findings)


def test_findings_are_a_checklist_grouped_by_severity() -> None:
    text = render_markdown(fixed_report())
    assert text.startswith("# Performance checklist: `app.py --n 3`\n")
    high, low = text.index("### High (1)"), text.index("### Low (1)")
    assert high < low
    assert "- [ ] **ADV101 blocking-sleep** at `app.py:39` — saves ~400.0 ms" in text
    assert "  - fix: `await asyncio.sleep(0.2)`" in text
    assert "  - evidence: units: poller; blocked_s: 0.6" in text
    assert "### Medium" not in text


def test_units_table_escapes_pipes_and_shows_the_breakdown() -> None:
    text = render_markdown(fixed_report())
    assert "| poller\\|1 | task | 1 | 1.00 s | 100.0 ms | 0 | 900.0 ms | 0 | 600.0 ms |" in text


def test_partial_runs_and_empty_reports_say_so() -> None:
    report = fixed_report(partial=True)
    assert "**partial run (interrupted)**" in render_markdown(report)
    empty = report.model_copy(update={"findings": [], "tasks": []})
    assert "No findings." in render_markdown(empty)
    assert RENDERERS["md"] is render_markdown


def test_with_a_baseline_new_fixed_and_regressed_are_listed() -> None:
    old = fixed_report()
    old = old.model_copy(update={"findings": [
        old.findings[1],
        Finding(rule="blocking-io", code="ADV201", severity="medium", message="m",
                location=Location(file="app.py", line=50)),
    ]})
    old.tasks[0] = old.tasks[0].model_copy(update={"wall_s": 0.5})
    new = fixed_report()
    text = render_markdown(new, baseline=old)
    section = text[text.index("## Since the baseline"):text.index("## Findings")]
    assert "**New findings** (1)\n- ADV101 blocking-sleep at `app.py:39` (high)" in section
    assert "**Fixed findings** (1)\n- ADV201 blocking-io at `app.py:50` (medium)" in section
    assert "**Regressed units** (1)\n- poller\\|1: wall 500.0 ms → 1.00 s" in section
    assert "## Since the baseline" not in render_markdown(new)


def test_a_deep_run_that_was_mostly_yappi_says_its_times_are_mostly_correction() -> None:
    report = fixed_report()
    report.run.mode = "deep"
    report.run.overhead.factor_estimate = 6.5
    caution = "- deep mode ran this program ~×6.5 slower: its times are mostly yappi's cost taken out"
    assert caution in render_markdown(report)
    assert "~×6.5 slower" in RENDERERS["text"](report)
    report.run.overhead.factor_estimate = 1.4  # a run yappi slowed little: its times stand
    assert "slower:" not in render_markdown(report) and "slower:" not in RENDERERS["text"](report)
    report.run.overhead.factor_estimate = 6.5
    report.run.mode = "standard"  # standard mode's correction is of its own few wrapped calls
    assert "slower:" not in render_markdown(report) and "slower:" not in RENDERERS["text"](report)
