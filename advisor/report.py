"""Assembling the report of a run: run facts, overhead, units, functions, samples, findings.

``build_report`` is the one place where a ``RawCapture`` becomes a ``Report``; the
rules engine then adds findings to it. Overhead is estimated from what the probes did
(hooked steps times the measured cost of one, plus the sampler's own CPU).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass

from advisor.probes.records import UnitRecord

from .attribution import counting_overhead, function_table, sample_table, unit_entries, unit_id
from .capture import RawCapture
from .deep_attribution import deep_functions, profiler_seconds, unit_functions
from .lines import with_lines
from .profile import Overhead, ProbeStatus, Report, RunInfo, Task
from .span_stats import span_stats
from .step_timeline import timeline_entry


@dataclass
class RunFacts:
    """What the runner knows of the run itself."""

    argv: list[str]
    mode: str
    started_at: dt.datetime
    exit_code: int
    partial: bool


def estimate_overhead(raw: RawCapture) -> Overhead:
    """The probes' cost in this run and the slow-down factor it implies."""
    hook_s = raw.hooked_steps * raw.per_step_cost_s
    overhead_s = hook_s + raw.sampler_cpu_s
    wall = max(raw.ended - raw.started, 1e-9)
    bare = max(wall - overhead_s, wall * 0.05)
    return Overhead(
        factor_estimate=round(wall / bare, 4),
        corrected=False,
        overhead_s=round(overhead_s, 6),
        probe_cpu_s=round(raw.sampler_cpu_s, 6),
        hooked_steps=raw.hooked_steps,
        per_step_cost_s=round(raw.per_step_cost_s, 9),
        sampler_ticks=raw.sampler_ticks,
        sample_interval_s=raw.sample_interval,
        python_call_s=round(raw.call_cost_s, 9),
        call_wrapper_s=round(raw.call_wrapper_s, 9),
        traced_share=round(max(0.0, 1.0 - raw.trace_paused_s / wall), 4),
        trace_paused_s=round(raw.trace_paused_s, 6),
    )


def build_report(raw: RawCapture, facts: RunFacts) -> Report:
    """The report of one captured run, before rules."""
    run = RunInfo(
        argv=facts.argv,
        mode=facts.mode,  # type: ignore[arg-type]
        python=platform.python_version(),
        cpu_count=os.cpu_count() or 1,
        started_at=facts.started_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        wall_s=round(raw.ended - raw.started, 6),
        cpu_s=round(raw.cpu_s, 6),
        exit_code=facts.exit_code,
        partial=facts.partial,
        overhead=estimate_overhead(raw),
        cwd=os.getcwd(),
        probes=[ProbeStatus(name=name, active=active, note=note) for name, active, note in raw.probes],
    )
    threads = [record for record in raw.units if record.kind == "thread"]
    corrections = counting_overhead(raw.units, raw.call_stats, raw.call_wrapper_s)
    run.overhead.overhead_s = round(run.overhead.overhead_s + sum(
        stats.calls * raw.call_wrapper_s for stats in raw.call_stats), 6)
    functions = function_table(threads, call_stats=raw.call_stats, run_end=raw.ended,
                               wrapper_cost_s=raw.call_wrapper_s)
    enrich = None
    slowed: list[float] = []  # deep mode: per thread, the bytecode slow-down taken out
    deep = raw.deep
    if deep is not None:
        functions = deep_functions(deep, functions)

        def enrich(record: UnitRecord, entry: Task) -> None:
            entry.functions, cost = unit_functions(deep, record)
            taken_out = cost.taken_out(entry.breakdown.compute_s)
            corrections[id(record)] = corrections.get(id(record), 0.0) + taken_out
            # for the run's factor, each function's slow-down once: in its thread's, which holds
            # its tasks' and its greenlets' functions
            if record.kind == "thread":
                slowed.append(taken_out - cost.calls_s)

        run.overhead.profiler_call_s = round(deep.cost.wall_s, 9)
        run.overhead.bytecode_factor = round(deep.cost.bytecode_factor, 4)
        run.overhead.deep_paused_s = round(deep.paused_s, 6)
        run.overhead.speed_samples = deep.speed_samples
        run.overhead.speed_scale = round(deep.speed_scale, 4)
        run.overhead.overhead_s = round(run.overhead.overhead_s + profiler_seconds(deep.functions, deep.cost), 6)
    run.overhead.corrected = bool(corrections) or deep is not None
    tasks = unit_entries(raw.units, corrections, enrich, span=(raw.started, raw.ended))
    if deep is not None:
        # the bytecode's slow-down is known per thread once the units are built
        run.overhead.overhead_s = round(run.overhead.overhead_s + sum(slowed), 6)
        wall = max(raw.ended - raw.started, 1e-9)
        run.overhead.factor_estimate = round(wall / max(wall - run.overhead.overhead_s, wall * 0.02), 4)
    report = Report(
        run=run,
        tasks=tasks,
        functions=functions,
        samples=sample_table(((unit_id(record), record) for record in raw.units), raw.sample_interval),
    )
    spans = raw.extra.get("spans")
    if spans is not None:
        report.spans = span_stats(spans)
    if any(len(timeline) for timeline in raw.timelines):
        report.timeline = timeline_entry(raw.timelines, report.tasks, raw.started)
    return with_lines(report)
