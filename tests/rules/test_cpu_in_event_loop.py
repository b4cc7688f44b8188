"""cpu-in-event-loop (ADV102) on hand-built reports: fires on a task whose long CPU steps
kept others waiting, at the coroutine's line that runs the work; silent when no one waited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from advisor.engine import analyze
from advisor.profile import BlockingSite, Breakdown, Finding, HotSpot, Report, Task

APP = """\
import asyncio


def summarize(readings):
    total = 0
    for value in readings:
        total += value * value
    return total


async def build_report(readings):
    await asyncio.sleep(0.01)
    return summarize(readings)


async def inline(readings):
    total = 0
    for value in readings:
        total += value * value
    return total
"""
HOT_LINE = 7  # total += value * value (in summarize)
CALL_LINE = 13  # return summarize(readings)
INLINE_LINE = 19


def findings(report: Report) -> list[Finding]:
    return list(analyze(report, select=["cpu-in-event-loop"]).findings)


def cpu_stack(file: str, unit: str, on: float, line: int = CALL_LINE,
              function: str = "app.build_report") -> tuple[str, list[tuple[str, str, int]], float, float, str]:
    frames = [(function, file, line)]
    if line == CALL_LINE:
        frames.insert(0, ("app.summarize", file, HOT_LINE))
    frames += [("asyncio.events.Handle._run", "/usr/lib/python3.11/asyncio/events.py", 80),
               ("app.<module>", file, 30)]
    return unit, frames, on, 0.0, "running"


@pytest.fixture
def scenario(build_task: Callable[..., Any], build_report: Callable[..., Report],
             write_source: Callable[[str, str], str]) -> Callable[..., Report]:
    """A CPU-heavy task and a heartbeat task that waited `lost` seconds to run."""

    def build(compute: float = 0.5, longest: float = 0.5, lost: float = 0.45, wall: float = 1.0,
              kind: str = "asyncio-task", stacks: bool = True, line: int = CALL_LINE,
              function: str = "app.build_report", **worker: Any) -> Report:
        file = write_source("app.py", APP)
        prefix = "asyncio" if kind == "asyncio-task" else "greenlet"
        target = "app.build_report" if kind == "asyncio-task" else "build_report"
        heavy = build_task("reporter", kind=kind, id=f"{prefix}:1", wall=wall * 0.6, compute=compute,
                           longest_step_s=longest, target=target, **worker)
        beat = build_task("heartbeat", kind=kind, id=f"{prefix}:2", wall=wall, compute=0.01, waiting=wall - 0.01 - lost,
                          scheduling=lost, longest_step_s=0.001)
        return build_report([heavy, beat], wall=wall,
                            stacks=[cpu_stack(file, f"{prefix}:1", compute, line, function)] if stacks else [])

    return build


def test_fires_at_the_call_in_the_coroutine_with_an_executor_fix(scenario: Callable[..., Report]) -> None:
    [finding] = findings(scenario())
    assert finding.code == "ADV102"
    assert (finding.location.file, finding.location.line, finding.location.function) == \
        ("app.py", CALL_LINE, "app.build_report")
    assert finding.estimated_savings_s == pytest.approx(0.45)  # what the heartbeat lost
    assert finding.severity == "high"
    assert finding.fix is not None
    assert "run_in_executor(process_pool, summarize, readings)" in finding.fix
    assert "summarize()" in finding.message and "reporter" in finding.message


def test_savings_are_bounded_by_the_work_and_the_cores(scenario: Callable[..., Report]) -> None:
    # the others lost more than this task computed: only its compute can be given back
    [finding] = findings(scenario(compute=0.2, longest=0.2, lost=0.6))
    assert finding.estimated_savings_s == pytest.approx(0.2)


def test_silent_when_nothing_else_was_waiting(scenario: Callable[..., Report]) -> None:
    assert findings(scenario(lost=0.001)) == []


def test_silent_on_short_steps_or_little_compute(scenario: Callable[..., Report]) -> None:
    assert findings(scenario(longest=0.01)) == []
    assert findings(scenario(compute=0.02, longest=0.02)) == []


def test_silent_when_the_long_steps_were_a_blocking_call(build_task: Callable[..., Any],
                                                        build_report: Callable[..., Report],
                                                        write_source: Callable[[str, str], str]) -> None:
    file = write_source("app.py", APP)
    sleep = BlockingSite(kind="waiting", call="time.sleep", function="app.build_report", file=file,
                         line=CALL_LINE, seconds=0.45)
    poller = Task(id="asyncio:1", name="poller", target="app.build_report", kind="asyncio-task", wall_s=0.6,
                  cpu_s=0.06, breakdown=Breakdown(compute_s=0.06, waiting_s=0.54), blocking_s=0.45,
                  blocking=[sleep], longest_step_s=0.5)
    beat = build_task("heartbeat", id="asyncio:2", wall=1.0, compute=0.01, waiting=0.54, scheduling=0.45)
    report = build_report([poller, beat], wall=1.0, stacks=[cpu_stack(file, "asyncio:1", 0.06)])
    assert findings(report) == []  # blocking-sleep's business


def test_preempted_time_inside_a_cpu_step_counts_as_holding_the_loop(scenario: Callable[..., Report]) -> None:
    # 0.3 s of CPU and 0.2 s off the CPU in plain Python (no blocking call): a busy machine
    [finding] = findings(scenario(compute=0.3, longest=0.5, blocking=0.2, lost=0.45))
    assert finding.estimated_savings_s == pytest.approx(0.45)
    assert finding.evidence["held_s"] == pytest.approx(0.5)


def test_inline_cpu_in_the_coroutine_points_at_its_line(scenario: Callable[..., Report]) -> None:
    [finding] = findings(scenario(line=INLINE_LINE, function="app.inline"))
    assert finding.location.line == INLINE_LINE
    assert finding.fix is not None and "plain function" in finding.fix


def test_falls_back_to_hot_spots_without_samples(scenario: Callable[..., Report]) -> None:
    report = scenario(stacks=False, hot=[HotSpot(function="app.summarize", file="app.py", line=HOT_LINE, self_s=0.5)])
    [finding] = findings(report)
    assert finding.location.line == HOT_LINE


def test_greenlets_get_a_gevent_fix(scenario: Callable[..., Report]) -> None:
    [finding] = findings(scenario(kind="greenlet"))
    assert finding.location.line == CALL_LINE  # the line of the greenlet's run function
    assert finding.fix is not None and "process_pool.submit(summarize, readings)" in finding.fix
    assert "gevent hub" in finding.message


def test_others_delay_is_shared_between_the_units_that_held_the_loop(
        build_task: Callable[..., Any], build_report: Callable[..., Report],
        write_source: Callable[[str, str], str]) -> None:
    file = write_source("app.py", APP)
    first = build_task("a", id="asyncio:1", wall=0.5, compute=0.3, longest_step_s=0.3, target="app.build_report")
    second = build_task("b", id="asyncio:3", wall=0.5, compute=0.1, longest_step_s=0.1, target="app.build_report")
    beat = build_task("heartbeat", id="asyncio:2", wall=1.0, compute=0.01, waiting=0.59, scheduling=0.4)
    report = build_report([first, second, beat], wall=1.0,
                          stacks=[cpu_stack(file, "asyncio:1", 0.3), cpu_stack(file, "asyncio:3", 0.1)])
    [finding] = findings(report)  # both at the same line: merged
    assert finding.estimated_savings_s == pytest.approx(0.4 * 0.75 + 0.1)
