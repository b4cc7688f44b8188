"""Builders of small hand-made reports with a timeline, whose replay is worked out by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from advisor.profile import (
    AwaitSite,
    BlockingSite,
    Breakdown,
    CodePlace,
    Finding,
    FunctionStat,
    Location,
    Report,
    RunInfo,
    SampleFrame,
    Samples,
    StackSample,
    Task,
)


def unit(name: str, kind: str = "asyncio-task", *, start: float = 0.0, wall: float, compute: float = 0.0,
         io: float = 0.0, scheduling: float = 0.0, blocked: float = 0.0, count: int = 1, end: float | None = None,
         **extra: Any) -> Task:
    """A unit whose breakdown adds up to `wall` (the rest is waiting), that held its loop
    `blocked` seconds in blocking calls; it ends at start + wall (per unit of a fold) unless
    `end` says otherwise."""
    waiting = max(0.0, wall - compute - io - scheduling)
    return Task(id=extra.pop("id", f"{kind}:{name}"), name=name, target=extra.pop("target", name), kind=kind,
                count=count, wall_s=wall, cpu_s=compute,
                breakdown=Breakdown(compute_s=compute, io_s=io, waiting_s=waiting, scheduling_s=scheduling),
                blocking_s=blocked, start_s=start, end_s=end if end is not None else start + wall / count, **extra)


def gathered_units(wall: float) -> list[Task]:
    """The units that wait for the others: main() gathering them, the thread running the loop."""
    return [unit("Task-1", wall=wall, target="app.main"), unit("MainThread", "thread", wall=wall, compute=0.01)]


def sleep_site(seconds: float, line: int = 18, file: str = "app.py") -> BlockingSite:
    return BlockingSite(kind="waiting", call="time.sleep", function="app.poll", file=file, line=line,
                        seconds=seconds)


def awaited(io: float, line: int, calls: int = 1, file: str = "app.py") -> AwaitSite:
    """An await site inside a loop at `line` of the program (the chain's outermost frame)."""
    return AwaitSite(function="app.main", file=file, line=3, chain=[CodePlace(function="app.fetch_all", file=file,
                                                                              line=line)],
                     suspensions=2 * calls, calls=calls, io_s=io, waiting_s=0.0, longest_s=io / calls)


def finding(rule: str, line: int, file: str = "app.py", savings: float = 0.0, function: str = "",
            **evidence: Any) -> Finding:
    return Finding(rule=rule, code="ADV000", severity="medium", message="m",
                   location=Location(file=file, line=line, function=function), evidence=evidence,
                   estimated_savings_s=savings)


def report(tasks: Sequence[Task], wall: float, findings: Sequence[Finding] = (), cpu_count: int = 2,
           functions: Sequence[FunctionStat] = (),
           stacks: Sequence[tuple[str, Sequence[tuple[str, str, int]], float]] = (),
           python_call_s: float = 0.0) -> Report:
    """A report; `stacks` are (unit id, [(function, file, line) leaf first], on-CPU seconds)."""
    frames: list[SampleFrame] = []
    index: dict[tuple[str, str, int], int] = {}
    samples = []
    for unit_id, stack, seconds in stacks:
        ids = []
        for frame in stack:
            if frame not in index:
                index[frame] = len(frames)
                frames.append(SampleFrame(function=frame[0], file=frame[1], line=frame[2]))
            ids.append(index[frame])
        samples.append(StackSample(unit=unit_id, frames=ids, on_cpu_s=seconds, off_cpu_s=0.0, state="running"))
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=cpu_count, started_at="2026-11-25T08:00:00Z",
                  wall_s=wall, cpu_s=sum(task.cpu_s for task in tasks), exit_code=0)
    run.overhead.python_call_s = python_call_s
    return Report(run=run, tasks=list(tasks), findings=list(findings), functions=list(functions),
                  samples=Samples(interval_s=0.01, frames=frames, stacks=samples))
