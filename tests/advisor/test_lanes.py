"""Timeline lanes drawn from recorded steps, on hand-made timelines worked out by hand."""

from __future__ import annotations

import pytest

from advisor.profile import Breakdown, Report, RunInfo, Task, Timeline, TimelineTrack
from advisor.render.lanes import MAX_SEGMENTS_PER_UNIT, unit_segments


def report_with(tracks: list[TimelineTrack], blocking: float = 0.0) -> Report:
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=1.0,
                  cpu_s=0.1, exit_code=0)
    task = Task(id="asyncio:1", name="poll", target="app.poll", kind="asyncio-task", wall_s=1.0, cpu_s=0.0,
                breakdown=Breakdown(), blocking_s=blocking)
    return Report(run=run, tasks=[task], timeline=Timeline(steps=9, tracks=tracks))


def test_steps_and_the_waits_between_them_in_time_order() -> None:
    """Created at 0; first step at 0.01 (ready until then: scheduling) for 1 ms; a timer due
    at 0.111 that ran at 0.121 (waiting, then 10 ms of scheduling); a 0.1 s step whose CPU was
    read as 0.02 s (the rest blocking: the report counts 0.08 s of it); an io wait; a step
    waiting for another task."""
    track = TimelineTrack(unit="asyncio:1", created_s=0.0,
                          start_s=[0.01, 0.121, 0.3, 0.5], end_s=[0.011, 0.221, 0.301, 0.5005],
                          cpu_s=[None, 0.02, None, None], waits=["new", "timer", "io", "waiting"],
                          due_s=[None, 0.111, None, None])
    segments = unit_segments(report_with([track], blocking=0.08))["asyncio:1"]
    assert [part for _, _, part in segments] == [
        "scheduling", "compute", "waiting", "scheduling", "compute", "blocking", "io", "compute", "waiting",
        "compute"]
    assert segments[2][:2] == [0.011, 0.111] and segments[3][:2] == [0.111, 0.121]
    assert segments[4][:2] == [0.121, 0.141] and segments[5][:2] == [0.141, 0.221]


@pytest.mark.parametrize(("blocking", "blocked", "preempted"), [(0.0, 0.0, 0.08), (0.04, 0.04, 0.04),
                                                                 (0.08, 0.08, 0.0), (0.5, 0.08, 0.0)])
def test_a_steps_time_off_the_cpu_is_blocking_only_as_far_as_the_report_counts_it(
        blocking: float, blocked: float, preempted: float) -> None:
    """A 0.1 s step with 0.02 s of CPU: the 0.08 s off the CPU is blocking up to the unit's
    blocking_s in the report, and the rest scheduling (a loaded machine preempted the step: the
    report does not call that blocking, and the lane must not draw what the JSON does not say)."""
    track = TimelineTrack(unit="asyncio:1", created_s=0.0, start_s=[0.0], end_s=[0.1], cpu_s=[0.02],
                          waits=["new"], due_s=[None])
    segments = unit_segments(report_with([track], blocking=blocking))["asyncio:1"]
    totals = {part: sum(end - start for start, end, kind in segments if kind == part)
              for part in ("compute", "blocking", "scheduling")}
    assert totals == pytest.approx({"compute": 0.02, "blocking": blocked, "scheduling": preempted})
    assert ("blocking" in [part for _, _, part in segments]) == (blocked > 0.0)


def test_long_steps_whose_cpu_was_not_read_share_the_units_unexplained_blocking() -> None:
    """Two 0.1 s steps without a CPU reading and a unit that blocked 0.1 s in all: each is
    half compute, half blocking."""
    track = TimelineTrack(unit="asyncio:1", created_s=0.0, start_s=[0.0, 0.2], end_s=[0.1, 0.3],
                          cpu_s=[None, None], waits=["new", "ready"], due_s=[None, None])
    segments = unit_segments(report_with([track], blocking=0.1))["asyncio:1"]
    compute = sum(end - start for start, end, part in segments if part == "compute")
    blocked = sum(end - start for start, end, part in segments if part == "blocking")
    assert compute == pytest.approx(0.1) and blocked == pytest.approx(0.1)


def test_a_unit_with_too_many_steps_keeps_its_proportional_bar() -> None:
    steps = MAX_SEGMENTS_PER_UNIT
    track = TimelineTrack(unit="asyncio:1", created_s=0.0, start_s=[i * 0.001 for i in range(steps)],
                          end_s=[i * 0.001 + 0.0005 for i in range(steps)], cpu_s=[None] * steps,
                          waits=["new"] + ["ready"] * (steps - 1), due_s=[None] * steps)
    assert unit_segments(report_with([track])) == {}
    assert unit_segments(Report(run=report_with([]).run)) == {}
