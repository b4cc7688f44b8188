"""What each rule's fix changes in the replay model, read from the finding's evidence.

One function per rule slug turns a finding into an ``Edit`` of the units it names:

- ``blocking-sleep`` / ``blocking-io``: the blocked time stays in the unit's own path (the
  sleep or the reply still takes that long) but no longer holds its loop or hub;
- ``cpu-in-event-loop``: the step's CPU moves off the loop to a process pool: the unit no
  longer holds the loop for it (with one core the worker competes with the loop, so
  nothing is gained);
- ``parallelizable-cpu``: the serial CPU is split over ``min(items, cores, processes)``
  workers, plus the pool's start (forking the workers);
- ``sequential-awaits``: the awaits overlap: the unit's own path loses its awaited I/O
  there but one call's share (not the part that was in fact waiting for a loop others held);
- ``lock-contention``: the critical section no longer holds the slow call: the waits for
  the lock go, and a pool's workers share their work out evenly again;
- ``cacheable-function``, ``excess-logging``, ``redundant-conversion``, ``call-overhead``,
  ``slow-construct``: the CPU the construct cost (repeated calls, dropped records, the
  conversion or the call overhead times the share the fix removes) is no longer spent by
  the units that ran it (found from the sampled stacks through the finding's line). Where
  the rule's estimate keeps a margin for its fallback fix, the replay models the first
  fix the rule suggests (``REPLAY_FRACTIONS``).

A finding the replay cannot model (a rule it does not know, units it cannot find, a lone
thread's sleep) gives ``None``: the rule's own estimate stands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from advisor.profile import Finding, Report

from .model import ReplayModel, UnitModel
from .replay import Edit, io_lost_to_others

# forking a pool's workers (measured on these machines: multiprocessing.Pool(3) start and
# shutdown ~7 ms; ProcessPoolExecutor(1) with a 200k-item argument ~28 ms)
POOL_START_S = 0.01
# Waits of a pool worker for its next item: not its own work (the pool hands items out).
POOL_IDLE_PREFIXES = ("concurrent.futures.", "multiprocessing.pool.")
# The share of a construct's time its fix removes, where the replay models the rule's first
# suggestion rather than the margin the rule's own estimate keeps: copying only what changes
# drops a json round trip altogether (the rule's 0.6 is its pickle fallback); a set lookup
# instead of a list scan, and one join instead of re-copying the string, leave only the
# loop's own bytecode (measured on examples/slow-construct: the loop's 0.83 s went to 0.02 s).
REPLAY_FRACTIONS = {"round-trip-copy": 0.95, "list-membership": 0.95, "string-concat": 0.95}

EditMaker = Callable[[ReplayModel, Report, Finding, float], "Edit | None"]


def _number(evidence: dict[str, Any], name: str) -> float | None:
    value = evidence.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _units(model: ReplayModel, finding: Finding) -> list[UnitModel]:
    names = finding.evidence.get("units")
    if not isinstance(names, list):
        return []
    return model.named([str(name) for name in names])


def _at_place(file: str, line: int, site_file: str, site_line: int) -> bool:
    return site_line == line and (site_file == file or site_file.endswith("/" + file) or file.endswith("/" + site_file))


def blocking_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    units = _units(model, finding)
    if not units or any(unit.task.kind == "thread" for unit in units):
        return None  # a lone thread's sleep: nothing else waits for it, only restructuring helps
    where = finding.location
    edit = Edit(targets={unit.key for unit in units})
    evidence_blocked = _number(finding.evidence, "blocked_s") or 0.0
    for unit in units:
        blocked = sum(site.seconds for site in unit.task.blocking if _at_place(where.file, where.line, site.file,
                                                                               site.line))
        if blocked <= 0.0:
            blocked = evidence_blocked / len(units)
        edit.held_s[unit.key] = -min(blocked, unit.held_s)
    return edit


def cpu_in_loop_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    units = _units(model, finding)
    if not units:
        return None
    edit = Edit(targets={unit.key for unit in units}, pooled={unit.key for unit in units})
    if model.cpu_count < 2:
        return edit  # the worker would take the loop's only core
    compute = _number(finding.evidence, "compute_s")
    for unit in units:
        moved = compute / len(units) if compute is not None else unit.task.breakdown.compute_s
        edit.held_s[unit.key] = -min(moved, unit.held_s)
    return edit


def parallel_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    units = _units(model, finding)
    cpu = _number(finding.evidence, "loop_cpu_s")
    if not units or cpu is None:
        return None
    items = int(_number(finding.evidence, "items") or 1)
    cores = int(_number(finding.evidence, "cores") or model.cpu_count)
    processes = int(_number(finding.evidence, "processes") or cores)
    workers = max(1, min(items, cores, processes))
    saved = cpu * (1.0 - 1.0 / workers) - POOL_START_S
    unit = units[0]
    edit = Edit(targets={unit.key})
    edit.own_s[unit.key] = -saved
    edit.held_s[unit.key] = -min(max(0.0, saved), unit.held_s)
    return edit


def sequential_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    units = _units(model, finding)
    calls = _number(finding.evidence, "calls")
    if not units or not calls or calls < 2:
        return None
    where = finding.location
    edit = Edit(targets={unit.key for unit in units})
    evidence_io = _number(finding.evidence, "io_s") or 0.0
    for unit in units:
        io = sum(site.io_s for site in unit.task.awaits
                 if any(_at_place(where.file, where.line, place.file, place.line) for place in site.chain)
                 or _at_place(where.file, where.line, site.file, site.line))
        if io <= 0.0:
            io = evidence_io / len(units)
        edit.overlap_s[unit.key] = io * (1.0 - 1.0 / calls)
        # the part of it spent waiting for the loop held by others does not overlap away
        awaited = max(0.0, unit.task.breakdown.io_s - unit.task.blocking_s)
        if awaited > 0.0:
            io *= 1.0 - min(1.0, io_lost_to_others(model, unit) / awaited)
        # overlapped, the calls take as long as one of them (the mean: the longest is not
        # known per call where the loop is not the chain's outermost frame)
        edit.own_s[unit.key] = edit.io_s[unit.key] = -io * (1.0 - 1.0 / calls)
    return edit


def _pool_idle(unit: UnitModel) -> float:
    return sum(site.seconds for site in unit.task.blocking
               if site.kind == "waiting" and (site.call.startswith(POOL_IDLE_PREFIXES)
                                              or site.function.startswith(POOL_IDLE_PREFIXES)))


def lock_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    units = _units(model, finding)
    if not units:
        return None
    where = finding.location
    busy: dict[str, float] = {}
    idle: dict[str, float] = {}
    for unit in units:
        task = unit.task
        waited = sum(site.seconds for site in task.blocking
                     if site.kind == "waiting" and _at_place(where.file, where.line, site.file, site.line))
        waited += sum(site.lock_s for site in task.awaits if _at_place(where.file, where.line, site.file, site.line))
        if waited <= 0.0:
            waited = task.lock_wait_s
        idle[unit.key] = _pool_idle(unit)
        busy[unit.key] = max(0.0, unit.own_s - waited - idle[unit.key])
    edit = Edit(targets={unit.key for unit in units})
    pooled = any(idle.values()) or all(unit.task.name.startswith("ThreadPoolExecutor") for unit in units)
    instances = sum(max(1, unit.task.count) for unit in units)
    # the calls still serialize on what stays inside the lock: its CPU at least
    serial = sum(unit.task.breakdown.compute_s for unit in units)
    for unit in units:
        count = max(1, unit.task.count)
        # a pool's workers take whatever item is next, so the work spreads evenly again
        target = count * max(sum(busy.values()), serial) / instances if pooled else busy[unit.key]
        edit.own_s[unit.key] = target - unit.own_s
    return edit


def _units_at_line(model: ReplayModel, report: Report, finding: Finding) -> dict[str, float]:
    """Units whose sampled stacks pass through the finding's line (or its function), with
    the sampled time there: who ran the construct, and how much of it."""
    where = finding.location
    samples = report.samples
    at_line = {index for index, frame in enumerate(samples.frames)
               if _at_place(where.file, where.line, frame.file, frame.line)}
    short = where.function.rsplit(".", 1)[-1]
    in_function = {index for index, frame in enumerate(samples.frames)
                   if short and frame.function.rsplit(".", 1)[-1] == short
                   and _at_place(where.file, 0, frame.file, 0)}
    for wanted in (at_line, in_function):
        weights: dict[str, float] = defaultdict(float)
        for stack in samples.stacks:
            if stack.state != "idle" and wanted.intersection(stack.frames):
                weights[stack.unit] += stack.on_cpu_s + stack.off_cpu_s
        known = {key: seconds for key, seconds in weights.items() if model.unit(key) is not None}
        if known:
            return known
    return {}


def removed_cpu_edit(model: ReplayModel, report: Report, finding: Finding, seconds: float) -> Edit | None:
    """The construct's CPU is no longer spent: shared out over the units that ran it."""
    if seconds <= 0.0:
        return None
    named = _units(model, finding)
    weights = {unit.key: unit.task.breakdown.compute_s for unit in named} or _units_at_line(model, report, finding)
    if not weights:
        # not sampled there: only a run with one busy unit says who ran it
        busy = [unit for unit in model.units if unit.task.breakdown.compute_s > 0.0]
        if len(busy) != 1:
            return None
        weights = {busy[0].key: 1.0}
    total = sum(weights.values())
    edit = Edit(targets=set(weights))
    for key, weight in weights.items():
        unit = model.unit(key)
        if unit is None:
            continue
        share = seconds * weight / total if total > 0.0 else seconds / len(weights)
        share = min(share, unit.task.breakdown.compute_s) if unit.task.breakdown.compute_s > 0.0 else share
        edit.own_s[key] = -share
        edit.held_s[key] = -min(share, unit.held_s)
    return edit


def cache_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    evidence = finding.evidence
    total = _number(evidence, "total_s")
    counted = _number(evidence, "counted_calls") or _number(evidence, "calls")
    distinct = _number(evidence, "distinct_args")
    if total is None or not counted or distinct is None:
        return removed_cpu_edit(model, report, finding, rule_estimate)
    return removed_cpu_edit(model, report, finding, total * (1.0 - min(1.0, distinct / counted)))


def logging_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    evidence = finding.evidence
    seconds = _number(evidence, "eager_s") or _number(evidence, "handler_io_s") or rule_estimate
    return removed_cpu_edit(model, report, finding, seconds)


def conversion_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    evidence = finding.evidence
    line_s = _number(evidence, "line_s")
    pattern = evidence.get("pattern")
    fraction = REPLAY_FRACTIONS.get(pattern) if isinstance(pattern, str) else None
    fraction = fraction if fraction is not None else _number(evidence, "saved_fraction")
    if line_s is None or fraction is None:
        return removed_cpu_edit(model, report, finding, rule_estimate)
    return removed_cpu_edit(model, report, finding, line_s * fraction)


def call_overhead_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    evidence = finding.evidence
    calls = _number(evidence, "calls")
    total = _number(evidence, "total_s")
    if calls is None or total is None or model.python_call_s <= 0.0:
        return removed_cpu_edit(model, report, finding, rule_estimate)
    return removed_cpu_edit(model, report, finding, min(total, calls * model.python_call_s))


def construct_edit(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    # the rule's estimate is the idiom's share of the loop's own time times the fraction its fix removes
    evidence = finding.evidence
    idiom = evidence.get("idiom")
    fraction = _number(evidence, "saved_fraction")
    replayed = REPLAY_FRACTIONS.get(idiom) if isinstance(idiom, str) else None
    if fraction and replayed is not None:
        return removed_cpu_edit(model, report, finding, rule_estimate / fraction * replayed)
    return removed_cpu_edit(model, report, finding, rule_estimate)


EDITS: dict[str, EditMaker] = {
    "blocking-sleep": blocking_edit,
    "blocking-io": blocking_edit,
    "cpu-in-event-loop": cpu_in_loop_edit,
    "parallelizable-cpu": parallel_edit,
    "sequential-awaits": sequential_edit,
    "lock-contention": lock_edit,
    "cacheable-function": cache_edit,
    "excess-logging": logging_edit,
    "redundant-conversion": conversion_edit,
    "call-overhead": call_overhead_edit,
    "slow-construct": construct_edit,
}


def edit_for(model: ReplayModel, report: Report, finding: Finding, rule_estimate: float) -> Edit | None:
    """The finding's fix as an edit of the model, or None when the replay cannot model it."""
    maker = EDITS.get(finding.rule)
    return maker(model, report, finding, rule_estimate) if maker is not None else None
