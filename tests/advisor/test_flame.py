"""Collapsed stacks and speedscope exports, from a saved report's samples."""

from __future__ import annotations

import json

from advisor.profile import Breakdown, Report, RunInfo, SampleFrame, Samples, StackSample, Task
from advisor.render.flame import SPEEDSCOPE_SCHEMA, render_collapsed, render_speedscope


def sampled_report() -> Report:
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=1.0,
                  cpu_s=0.5, exit_code=0)
    task = Task(id="thread:1", name="MainThread", target="t", kind="thread", wall_s=1.0, cpu_s=0.5,
                breakdown=Breakdown(compute_s=0.5, waiting_s=0.5))
    frames = [SampleFrame(function="app.leaf", file="app.py", line=3),
              SampleFrame(function="app.main", file="app.py", line=9),
              SampleFrame(function="selectors.select", file="selectors.py", line=1)]
    stacks = [StackSample(unit="thread:1", frames=[0, 1], on_cpu_s=0.25, off_cpu_s=0.05, state="running"),
              StackSample(unit="thread:1", frames=[1], on_cpu_s=0.1, off_cpu_s=0.0, state="running"),
              StackSample(unit="thread:1", frames=[2, 1], on_cpu_s=0.0, off_cpu_s=0.4, state="idle")]
    return Report(run=run, tasks=[task], samples=Samples(interval_s=0.01, frames=frames, stacks=stacks))


def test_collapsed_stacks_are_root_first_in_microseconds_without_idle() -> None:
    assert render_collapsed(sampled_report()).splitlines() == [
        "MainThread;app.main;app.leaf 300000",
        "MainThread;app.main 100000",
    ]


def test_speedscope_has_one_sampled_profile_per_unit() -> None:
    document = json.loads(render_speedscope(sampled_report()))
    assert document["$schema"] == SPEEDSCOPE_SCHEMA
    assert [frame["name"] for frame in document["shared"]["frames"]] == ["app.leaf", "app.main", "selectors.select"]
    [profile] = document["profiles"]
    assert profile["type"] == "sampled" and profile["name"] == "MainThread" and profile["unit"] == "seconds"
    assert profile["samples"] == [[1, 0], [1]]
    assert profile["weights"] == [0.3, 0.1]
    assert abs(profile["endValue"] - 0.4) < 1e-9
