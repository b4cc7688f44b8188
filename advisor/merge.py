"""Merging saved reports of several runs into one report (``advisor merge``).

A multi-worker server writes one report per worker process; a batch job may be run
several times. ``merge_reports`` sums what the reports measured by identity: units by
(kind, name, target), functions and their hot spots, blocking and await sites by place,
sampled stacks by unit, frames and state. The run facts are combined: wall time is the
span from the earliest start to the latest end (at least the longest run, at most their
sum), CPU is summed, the merge is partial if any run was, and the overhead factor is the
one of the summed bare time. Findings are not merged: they are derived again from the
merged report by the rules engine (``advisor.engine.analyze``), so that savings and
severities are judged against the merged whole. The function is pure: reports in,
report out; reports of different schema versions or modes are refused with a
``MergeError`` whose message is one line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from .embed.routes import merge_routes
from .profile import (
    AwaitSite,
    BlockingSite,
    Breakdown,
    CallEdge,
    CallWindow,
    FunctionStat,
    HotSpot,
    Overhead,
    ProbeStatus,
    Report,
    RunInfo,
    SampleFrame,
    Samples,
    StackSample,
    Task,
    UnitFunction,
)
from .span_stats import merge_spans

# hot spots kept per merged unit (each report keeps its own top few)
MAX_HOT = 10

Item = TypeVar("Item")


class MergeError(Exception):
    """Reports that cannot be merged; the message is one line for the user."""


def _r(value: float) -> float:
    return round(value, 6)


def _grouped(items: Iterable[Item], key: Callable[[Item], Hashable]) -> list[list[Item]]:
    """Items grouped by key, groups in order of first appearance."""
    groups: dict[Hashable, list[Item]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


def _started(run: RunInfo) -> float | None:
    try:
        when = dt.datetime.strptime(run.started_at, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return when.replace(tzinfo=dt.timezone.utc).timestamp()


def merged_wall(runs: Sequence[RunInfo]) -> float:
    """From the earliest start to the latest end; start times have one-second resolution,
    so the span is bounded by the longest run below and by the runs' sum above."""
    longest = max(run.wall_s for run in runs)
    total = sum(run.wall_s for run in runs)
    starts = [_started(run) for run in runs]
    if any(start is None for start in starts):
        return longest
    known = [start for start in starts if start is not None]
    span = max(start + run.wall_s for start, run in zip(known, runs, strict=True)) - min(known)
    return min(max(span, longest), total)


def merged_overhead(runs: Sequence[RunInfo]) -> Overhead:
    """Counts and seconds add up; the factor is the merged wall over the merged bare time;
    per-unit costs (of a step, of a call) are averaged."""
    overheads = [run.overhead for run in runs]
    walls = sum(run.wall_s for run in runs)
    bare = sum(run.wall_s / max(o.factor_estimate, 1e-9) for run, o in zip(runs, overheads, strict=True))

    def mean(values: Iterable[float]) -> float:
        listed = list(values)
        return sum(listed) / len(listed)

    return Overhead(
        factor_estimate=round(walls / bare, 4) if bare > 0.0 else 1.0,
        corrected=any(o.corrected for o in overheads),
        overhead_s=_r(sum(o.overhead_s for o in overheads)),
        probe_cpu_s=_r(sum(o.probe_cpu_s for o in overheads)),
        hooked_steps=sum(o.hooked_steps for o in overheads),
        per_step_cost_s=round(mean(o.per_step_cost_s for o in overheads), 9),
        sampler_ticks=sum(o.sampler_ticks for o in overheads),
        sample_interval_s=overheads[0].sample_interval_s,
        python_call_s=round(mean(o.python_call_s for o in overheads), 9),
        profiler_call_s=round(mean(o.profiler_call_s for o in overheads), 9),
        bytecode_factor=round(mean(o.bytecode_factor for o in overheads), 4),
        deep_paused_s=_r(sum(o.deep_paused_s for o in overheads)),
        speed_samples=sum(o.speed_samples for o in overheads),
        speed_scale=round(mean(o.speed_scale for o in overheads), 4),
        call_wrapper_s=round(mean(o.call_wrapper_s for o in overheads), 9),
        traced_share=round(mean(o.traced_share for o in overheads), 4),
        trace_paused_s=_r(sum(o.trace_paused_s for o in overheads)),
    )


def merged_probes(runs: Sequence[RunInfo]) -> list[ProbeStatus]:
    """One status per probe: active only if it was active in every run, notes joined."""
    statuses = []
    for group in _grouped((probe for run in runs for probe in run.probes), lambda probe: probe.name):
        notes = list(dict.fromkeys(probe.note for probe in group if probe.note))
        statuses.append(ProbeStatus(name=group[0].name, active=all(probe.active for probe in group),
                                    note="; ".join(notes)))
    return statuses


def merged_run(runs: Sequence[RunInfo]) -> RunInfo:
    first = runs[0]
    starts = [(start, run.started_at) for run in runs if (start := _started(run)) is not None]
    run = first.model_copy(update={
        "started_at": min(starts)[1] if starts else first.started_at,
        "wall_s": _r(merged_wall(runs)),
        "cpu_s": _r(sum(run.cpu_s for run in runs)),
        "cpu_count": max(run.cpu_count for run in runs),
        # the first failure is the merged run's status, as a pipeline would see it
        "exit_code": next((run.exit_code for run in runs if run.exit_code != 0), 0),
        "partial": any(run.partial for run in runs),
        "overhead": merged_overhead(runs),
        "probes": merged_probes(runs),
    }, deep=True)
    # a field only merged reports have (extra fields are allowed by the schema)
    setattr(run, "merged_runs", sum(getattr(r, "merged_runs", 1) or 1 for r in runs))  # noqa: B010
    return run


def _merge_lines(groups: Iterable[Any]) -> dict[str, Any]:
    """The per-line figures of several copies of one hot spot or function, by line (an
    update for model_copy; empty for reports without per-line figures)."""
    lines = [line for group in groups for line in (group or ())]
    if not lines:
        return {}
    merged = []
    for same in _grouped(lines, lambda line: line.line):
        units = [by_unit[0].model_copy(update={"seconds": _r(sum(u.seconds for u in by_unit))})
                 for by_unit in _grouped((unit for line in same for unit in line.units), lambda unit: unit.unit)]
        units.sort(key=lambda unit: -unit.seconds)
        merged.append(same[0].model_copy(update={"self_s": _r(sum(line.self_s for line in same)),
                                                 "cpu_s": _r(sum(line.cpu_s for line in same)), "units": units}))
    merged.sort(key=lambda line: -line.self_s)
    return {"lines": merged}


def _merge_hot(spots: Iterable[HotSpot]) -> list[HotSpot]:
    merged = [g[0].model_copy(update={"self_s": _r(sum(s.self_s for s in g)),
                                      **_merge_lines(getattr(s, "lines", None) for s in g)})
              for g in _grouped(spots, lambda s: (s.function, s.file, s.line))]
    merged.sort(key=lambda spot: -spot.self_s)
    return merged[:MAX_HOT]


def _merge_blocking(sites: Iterable[BlockingSite]) -> list[BlockingSite]:
    merged = [g[0].model_copy(update={"seconds": _r(sum(s.seconds for s in g))})
              for g in _grouped(sites, lambda s: (s.kind, s.call, s.function, s.file, s.line))]
    merged.sort(key=lambda site: -site.seconds)
    return merged


def _merge_awaits(sites: Iterable[AwaitSite]) -> list[AwaitSite]:
    def key(site: AwaitSite) -> Hashable:
        return (site.function, site.file, site.line, tuple((c.function, c.file, c.line) for c in site.chain))

    merged = [g[0].model_copy(update={
        "suspensions": sum(s.suspensions for s in g), "calls": sum(s.calls for s in g),
        "io_s": _r(sum(s.io_s for s in g)), "waiting_s": _r(sum(s.waiting_s for s in g)),
        "longest_s": max(s.longest_s for s in g), "lock_s": _r(sum(s.lock_s for s in g)),
    }, deep=True) for g in _grouped(sites, key)]
    merged.sort(key=lambda site: -(site.io_s + site.waiting_s))
    return merged


def _merge_unit_functions(functions: Iterable[UnitFunction]) -> list[UnitFunction]:
    merged = [g[0].model_copy(update={"calls": sum(f.calls for f in g), "self_s": _r(sum(f.self_s for f in g)),
                                      "total_s": _r(sum(f.total_s for f in g))})
              for g in _grouped(functions, lambda f: (f.function, f.file, f.line))]
    merged.sort(key=lambda function: -function.self_s)
    return merged


def merge_units(group: Sequence[Task], unit_id: str) -> Task:
    """One entry for the same unit (kind, name, target) seen in several reports."""
    first = group[0]
    if len(group) == 1:
        return first.model_copy(update={"id": unit_id}, deep=True)
    # fields newer than this module, when the report model has them
    newer: dict[str, Any] = {}
    if "profiler_s" in type(first).model_fields:
        newer["profiler_s"] = _r(sum(getattr(t, "profiler_s", 0.0) for t in group))
    if "labels" in type(first).model_fields:
        labels: dict[str, dict[str, int]] = {}
        for task in group:
            for key, values in (getattr(task, "labels", None) or {}).items():
                for value, count in values.items():
                    labels.setdefault(key, {})[value] = labels.get(key, {}).get(value, 0) + count
        newer["labels"] = labels
    return first.model_copy(update={
        **newer,
        "id": unit_id,
        "count": sum(t.count for t in group),
        "wall_s": _r(sum(t.wall_s for t in group)),
        "cpu_s": _r(sum(t.cpu_s for t in group)),
        "breakdown": Breakdown(**{part: _r(sum(getattr(t.breakdown, part) for t in group))
                                  for part in ("compute_s", "io_s", "waiting_s", "scheduling_s")}),
        "blocking_s": _r(sum(t.blocking_s for t in group)),
        "lock_wait_s": _r(sum(t.lock_wait_s for t in group)),
        "hot": _merge_hot(spot for t in group for spot in t.hot),
        "blocking": _merge_blocking(site for t in group for site in t.blocking),
        "awaits": _merge_awaits(site for t in group for site in t.awaits),
        "functions": _merge_unit_functions(f for t in group for f in t.functions),
        "steps": sum(t.steps for t in group),
        "longest_step_s": max(t.longest_step_s for t in group),
        # each run has its own timeline: a unit merged across runs has no one place on it
        "start_s": None,
        "end_s": None,
    }, deep=True)


def _merge_window(windows: list[CallWindow]) -> CallWindow | None:
    if not windows:
        return None
    calls = sum(w.calls for w in windows)
    return CallWindow(
        calls=calls,
        # only hashes were kept, per run: the union is at least the largest of them
        distinct_args=max(w.distinct_args for w in windows),
        unhashable_calls=sum(w.unhashable_calls for w in windows),
        per_call_s=round(sum(w.per_call_s * w.calls for w in windows) / calls, 9) if calls else 0.0,
        window_s=_r(sum(w.window_s for w in windows)),
    )


def merge_functions(functions: Iterable[FunctionStat]) -> list[FunctionStat]:
    merged = []
    for group in _grouped(functions, lambda f: (f.function, f.file, f.line)):
        counted = [f.calls for f in group if f.calls is not None]
        callers = [CallEdge(function=g[0].function, file=g[0].file, line=g[0].line, calls=sum(e.calls for e in g))
                   for g in _grouped((edge for f in group for edge in f.callers),
                                     lambda e: (e.function, e.file, e.line))]
        merged.append(group[0].model_copy(update={
            "calls": sum(counted) if counted else None,
            "self_s": _r(sum(f.self_s for f in group)),
            "total_s": _r(sum(f.total_s for f in group)),
            "cpu_s": _r(sum(f.cpu_s for f in group)),
            "window": _merge_window([f.window for f in group if f.window is not None]),
            "callers": sorted(callers, key=lambda edge: -edge.calls),
            **_merge_lines(getattr(f, "lines", None) for f in group),
        }, deep=True))
    merged.sort(key=lambda function: (-function.self_s, -function.total_s))
    return merged


def merge_samples(reports: Sequence[Report], unit_ids: Sequence[dict[str, str]]) -> Samples:
    """One frame table; each report's stacks re-pointed at it and at the merged unit ids."""
    frames: list[SampleFrame] = []
    index: dict[tuple[str, str, int], int] = {}
    stacks: dict[tuple[str, tuple[int, ...], str], StackSample] = {}
    for report, ids in zip(reports, unit_ids, strict=True):
        table = report.samples.frames
        for stack in report.samples.stacks:
            positions = []
            for old in stack.frames:
                if not 0 <= old < len(table):
                    break  # a stack pointing outside its own table says nothing: drop it
                frame = table[old]
                key = (frame.function, frame.file, frame.line)
                if key not in index:
                    index[key] = len(frames)
                    frames.append(frame.model_copy())
                positions.append(index[key])
            else:
                unit = ids.get(stack.unit, stack.unit)
                slot = (unit, tuple(positions), stack.state)
                seen = stacks.get(slot)
                if seen is None:
                    stacks[slot] = stack.model_copy(update={"unit": unit, "frames": positions})
                else:
                    seen.on_cpu_s = _r(seen.on_cpu_s + stack.on_cpu_s)
                    seen.off_cpu_s = _r(seen.off_cpu_s + stack.off_cpu_s)
    interval = reports[0].samples.interval_s
    return Samples(interval_s=interval, frames=frames, stacks=list(stacks.values()))


def check_mergeable(reports: Sequence[Report]) -> None:
    if not reports:
        raise MergeError("no reports to merge")
    versions = sorted({report.schema_version for report in reports})
    if len(versions) > 1:
        raise MergeError(f"reports of different schema versions ({', '.join(map(str, versions))}) cannot be merged")
    modes = list(dict.fromkeys(report.run.mode for report in reports))
    if len(modes) > 1:
        raise MergeError(f"reports of different modes ({', '.join(modes)}) cannot be merged: "
                         "their figures are measured differently")


def merge_reports(reports: Sequence[Report]) -> Report:
    """The reports' measurements merged into one report, without findings (see module doc)."""
    check_mergeable(reports)
    # units by identity; a merged unit keeps the first id it had, made unique if another
    # report used that id for a different unit
    # (two units of one report with the same identity stay apart: the n-th of each report
    # goes with the n-th of the others)
    keyed: list[tuple[int, Task, Hashable]] = []
    for number, report in enumerate(reports):
        seen: dict[tuple[str, str, str], int] = {}
        for task in report.tasks:
            identity = (task.kind, task.name, task.target)
            seen[identity] = seen.get(identity, 0) + 1
            keyed.append((number, task, (*identity, seen[identity])))
    used: set[str] = set()
    unit_ids: list[dict[str, str]] = [{} for _ in reports]
    tasks = []
    for group in _grouped(keyed, lambda item: item[2]):
        number, first, _ = group[0]
        new_id = first.id if first.id not in used else f"{first.id}@{number + 1}"
        suffix = 1
        while new_id in used:
            suffix += 1
            new_id = f"{first.id}@{number + 1}.{suffix}"
        used.add(new_id)
        for owner, task, _ in group:
            unit_ids[owner][task.id] = new_id
        tasks.append(merge_units([task for _, task, _ in group], new_id))
    order = {"thread": 0, "asyncio-task": 1, "greenlet": 2}
    tasks.sort(key=lambda task: (order.get(task.kind, 9), -task.wall_s))
    return reports[0].model_copy(update={
        "run": merged_run([report.run for report in reports]),
        "tasks": tasks,
        "functions": merge_functions(function for report in reports for function in report.functions),
        "findings": [],
        "samples": merge_samples(reports, unit_ids),
        "routes": merge_routes(report.routes for report in reports),  # a server's workers: one route table
        "spans": merge_spans(report.spans for report in reports),
        # steps of separate processes share no loop: a fleet's what-if uses the per-unit totals
        "timeline": None,
    }, deep=True)
