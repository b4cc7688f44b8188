"""Builders of small hand-made reports, so each rule is tested on exactly the profile it reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from advisor.profile import (
    Breakdown,
    FunctionStat,
    Report,
    RunInfo,
    SampleFrame,
    Samples,
    StackSample,
    Task,
)


def make_task(name: str, kind: str = "asyncio-task", wall: float = 1.0, compute: float = 0.0, io: float = 0.0,
              waiting: float = 0.0, scheduling: float = 0.0, blocking: float = 0.0, **extra: Any) -> Task:
    """A unit whose breakdown adds up to `wall` (the rest goes to waiting when unspecified)."""
    rest = wall - compute - io - waiting - scheduling
    if rest > 1e-9:
        waiting += rest
    return Task(id=extra.pop("id", f"{kind}:{name}"), name=name, target=extra.pop("target", name), kind=kind,
                wall_s=wall, cpu_s=compute,
                breakdown=Breakdown(compute_s=compute, io_s=io, waiting_s=waiting, scheduling_s=scheduling),
                blocking_s=blocking, **extra)


def make_report(tasks: Sequence[Task] = (), wall: float = 1.0, functions: Sequence[FunctionStat] = (),
                stacks: Sequence[tuple[str, Sequence[tuple[str, str, int]], float, float, str]] = (),
                cpu_count: int = 2) -> Report:
    """A report; `stacks` are (unit id, [(function, file, line) leaf first], on, off, state)."""
    frames: list[SampleFrame] = []
    index: dict[tuple[str, str, int], int] = {}
    samples: list[StackSample] = []
    for unit, stack, on, off, state in stacks:
        ids = []
        for frame in stack:
            if frame not in index:
                index[frame] = len(frames)
                frames.append(SampleFrame(function=frame[0], file=frame[1], line=frame[2]))
            ids.append(index[frame])
        samples.append(StackSample(unit=unit, frames=ids, on_cpu_s=on, off_cpu_s=off, state=state))  # type: ignore[arg-type]
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=cpu_count, started_at="2026-11-25T08:00:00Z",
                  wall_s=wall, cpu_s=sum(t.cpu_s for t in tasks), exit_code=0)
    return Report(run=run, tasks=list(tasks), functions=list(functions),
                  samples=Samples(interval_s=0.01, frames=frames, stacks=samples))


@pytest.fixture
def build_task() -> Callable[..., Task]:
    """``build_task(name, kind=..., wall=..., compute=..., io=..., waiting=..., scheduling=..., **fields)``."""
    return make_task


@pytest.fixture
def build_report() -> Callable[..., Report]:
    """``build_report(tasks, wall=..., functions=..., stacks=..., cpu_count=...)``."""
    return make_report


@pytest.fixture
def write_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], str]:
    """Write a program file in a temp working directory; returns its path relative to it (as reports do)."""
    monkeypatch.chdir(tmp_path)

    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return name

    return write

