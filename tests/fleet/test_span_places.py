"""Which user spans a finding names: those that spent time on its line, else in its function."""

from __future__ import annotations

from advisor.profile import BlockingSite, Finding, HotSpot, Location, Report, RunInfo, SpanStat
from advisor.span_stats import with_span_places


def report_with(spans: list[SpanStat], line: int = 30) -> Report:
    run = RunInfo(argv=["app.py"], python="3.11", cpu_count=2, started_at="2026-11-25T12:00:00Z", wall_s=1.0,
                  cpu_s=0.5, exit_code=0)
    finding = Finding(rule="blocking-sleep", code="ADV101", severity="high", message="time.sleep(0.02) blocks",
                      location=Location(file="app.py", line=line, function="worker"))
    return Report(run=run, findings=[finding], spans=spans)


def hot(line: int) -> HotSpot:
    return HotSpot(function="app.worker", file="app.py", line=line, self_s=0.01)


STALL = SpanStat(name="stall", count=4, wall_s=0.08, blocking=[
    BlockingSite(kind="waiting", call="time.sleep", function="app.worker", file="app.py", line=30, seconds=0.08)])
CRUNCH = SpanStat(name="crunch", count=4, wall_s=0.2, hot=[hot(24)])  # the same function, another line


def test_a_span_on_the_findings_line_is_named_and_the_others_in_its_function_are_not() -> None:
    [finding] = with_span_places(report_with([CRUNCH, STALL])).findings
    assert finding.spans == ["stall"]


def test_without_a_span_on_the_line_the_spans_in_its_function_are_named() -> None:
    [finding] = with_span_places(report_with([CRUNCH, STALL], line=40)).findings
    assert finding.spans == ["crunch"]


def test_a_span_elsewhere_is_not_named() -> None:
    elsewhere = SpanStat(name="other", count=1, wall_s=0.1, hot=[
        HotSpot(function="app.render", file="app.py", line=90, self_s=0.05)])
    [finding] = with_span_places(report_with([elsewhere])).findings
    assert finding.spans == []
