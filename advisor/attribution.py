"""From the probes' raw records to per-unit breakdowns, hot spots and the function table.

Pure functions over a ``RawCapture``: nothing here measures. For an asyncio task the
ledger already split the time between steps into I/O, waiting and scheduling; the time
inside its steps is compute, except what the sampler saw off the CPU, which is the
task *blocking* its loop (classified I/O or waiting by the stack, or scheduling when
the GIL was held by another thread). For a thread the CPU time is exact and the rest of
its wall time is split in the proportions its off-CPU samples show. The four parts add
up to the unit's wall time by construction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from types import CodeType

from advisor.probes.hot_calls import CallStats
from advisor.probes.records import Stack, UnitRecord

from .blocking import Blocked, classify_stack
from .frames import display_path, function_name, is_advisor_file, is_user_file
from .profile import (
    AwaitSite,
    BlockingSite,
    Breakdown,
    CallWindow,
    CodePlace,
    FunctionStat,
    HotSpot,
    SampleFrame,
    Samples,
    StackSample,
    Task,
)

HOT_PER_UNIT = 5
BLOCKING_SITES_PER_UNIT = 5
AWAIT_SITES_PER_UNIT = 8
MAX_FUNCTIONS = 200


@dataclass
class OffCpu:
    """A unit's sampled off-CPU seconds by state, and where it blocked."""

    io: float = 0.0
    waiting: float = 0.0
    idle: float = 0.0
    scheduling: float = 0.0
    sites: dict[tuple[str, str, CodeType | None, int], float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.io + self.waiting + self.idle + self.scheduling


def visible(stack: Stack) -> Stack:
    """The stack as the program knows it: without what launched it (``python -m advisor``'s
    runpy frames, advisor's runner, a thread's bootstrap) and without advisor's own frames
    in the middle (the hooks around a task step)."""
    cut = len(stack)
    for index in range(len(stack) - 1, -1, -1):  # from the root
        filename = stack[index][0].co_filename
        if is_advisor_file(filename):
            cut = index
        elif is_user_file(filename):
            break
    return tuple(frame for frame in stack[:cut] if not is_advisor_file(frame[0].co_filename))


def off_cpu(samples: dict[Stack, list[float]] | None) -> OffCpu:
    """Classify a unit's off-CPU samples."""
    result = OffCpu()
    if not samples:
        return result
    for stack, (_on, off, contended, held) in samples.items():
        # held: in the run queue, or kept off the CPU by the sampler: ready, not running
        result.scheduling += held
        if off <= 0.0:
            continue
        if not stack:
            # a step no sample saw: too short to be a blocking call; the OS or the GIL held it
            result.scheduling += off
            continue
        blocked = classify_stack(stack)
        state = blocked.state
        if state == "gil":
            result.scheduling += off
            continue
        if state == "unknown":
            # off the CPU in plain Python code: waiting for the GIL if others ran, else unknown
            result.scheduling += contended
            result.waiting += off - contended
            continue
        if state == "idle":
            result.idle += off
            continue
        if state == "io":
            result.io += off
        else:
            result.waiting += off
        add_site(result, blocked, off)
    return result


def add_site(result: OffCpu, blocked: Blocked, seconds: float) -> None:
    code, line = blocked.site if blocked.site is not None else (None, 0)
    key = (blocked.state, blocked.call, code, line)
    result.sites[key] = result.sites.get(key, 0.0) + seconds


def blocking_sites(offcpu: OffCpu, limit: int = BLOCKING_SITES_PER_UNIT) -> list[BlockingSite]:
    """The places a unit blocked most, in the user's code where known."""
    sites = []
    for (state, call, code, line), seconds in sorted(offcpu.sites.items(), key=lambda item: -item[1]):
        if seconds <= 0.0 or state not in ("io", "waiting"):
            continue
        sites.append(BlockingSite(
            kind="io" if state == "io" else "waiting",
            call=call or "?",
            function=function_name(code) if code is not None else "",
            file=display_path(code.co_filename) if code is not None else "",
            line=line,
            seconds=round(seconds, 6),
        ))
        if len(sites) >= limit:
            break
    return sites


def hot_spots(samples: dict[Stack, list[float]] | None, limit: int = HOT_PER_UNIT) -> list[HotSpot]:
    """The functions a unit spent its on-CPU samples in (leaf, i.e. self time)."""
    if not samples:
        return []
    by_code: dict[CodeType, float] = defaultdict(float)
    lines: dict[CodeType, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for stack, (on, *_rest) in samples.items():
        if on <= 0.0:
            continue
        frames = visible(stack)
        if not frames:
            continue
        code, line = frames[0]
        by_code[code] += on
        lines[code][line] += on
    ranked = sorted(by_code.items(), key=lambda item: -item[1])[:limit]
    return [
        HotSpot(
            function=function_name(code),
            file=display_path(code.co_filename),
            line=max(lines[code].items(), key=lambda item: item[1])[0],
            self_s=round(seconds, 6),
        )
        for code, seconds in ranked
        if seconds > 0.0
    ]


def await_sites(record: UnitRecord, limit: int = AWAIT_SITES_PER_UNIT) -> list[AwaitSite]:
    """A task's await sites in the program's code, most waited-on first."""
    if not record.waits:
        return []
    ranked = sorted(record.waits.items(), key=lambda item: -(item[1][1] + item[1][2]))[:limit]
    sites = []
    for chain, (suspensions, io, waiting, calls, longest, _current, _callee, lock) in ranked:
        places = [CodePlace(function=function_name(code), file=display_path(code.co_filename), line=line)
                  for code, line in chain]
        outer = places[0]
        sites.append(AwaitSite(function=outer.function, file=outer.file, line=outer.line, chain=places,
                               suspensions=int(suspensions), calls=int(calls), io_s=_r(io),
                               waiting_s=_r(waiting), longest_s=_r(longest), lock_s=_r(lock)))
    return sites


def _r(value: float) -> float:
    return round(max(0.0, value), 6)


def unit_id(record: UnitRecord) -> str:
    prefix = "asyncio" if record.kind == "asyncio-task" else record.kind
    return f"{prefix}:{record.uid}"


def is_hub(record: UnitRecord) -> bool:
    return record.kind == "greenlet" and record.key[:1] == ("hub",)


def task_entry(record: UnitRecord) -> tuple[Task, OffCpu]:
    """The report entry of an asyncio task or greenlet (or a fold of them). A gevent hub's
    time off the CPU is it waiting for events, not blocking: it counts as waiting."""
    offcpu = off_cpu(record.samples)
    running = record.running_s
    inside = offcpu.total
    if inside > running > 0.0:
        scale = running / inside
        offcpu.io *= scale
        offcpu.waiting *= scale
        offcpu.idle *= scale
        offcpu.scheduling *= scale
        offcpu.sites = {key: value * scale for key, value in offcpu.sites.items()}
        inside = running
    compute = running - inside
    blocking = 0.0 if is_hub(record) else offcpu.io + offcpu.waiting + offcpu.idle
    breakdown = Breakdown(
        compute_s=_r(compute),
        io_s=_r(record.io_s + offcpu.io),
        waiting_s=_r(record.waiting_s + offcpu.waiting + offcpu.idle),
        scheduling_s=_r(record.scheduling_s + offcpu.scheduling),
    )
    name = record.name if record.count == 1 or record.named else record.target
    task = Task(
        id=unit_id(record),
        name=name,
        target=record.target,
        kind="greenlet" if record.kind == "greenlet" else "asyncio-task",
        count=record.count,
        wall_s=_r(record.wall_s),
        cpu_s=_r(compute),
        breakdown=breakdown,
        blocking_s=_r(blocking),
        lock_wait_s=_r(record.lock_s),
        hot=hot_spots(record.samples),
        blocking=blocking_sites(offcpu),
        awaits=await_sites(record),
        steps=record.steps,
        longest_step_s=_r(record.longest_step_s),
        file=display_path(record.target_file),
        line=record.target_line,
    )
    return task, offcpu


def thread_entry(record: UnitRecord) -> tuple[Task, OffCpu]:
    """The report entry of a thread: exact CPU, sampled split of the rest."""
    wall = record.wall_s
    cpu = min(record.cpu_s or 0.0, wall)
    rest = wall - cpu
    offcpu = off_cpu(record.samples)
    sampled = offcpu.total
    if sampled > 0.0:
        share = rest / sampled
        io = offcpu.io * share
        waiting = (offcpu.waiting + offcpu.idle) * share
        scheduling = offcpu.scheduling * share
    else:
        io, waiting, scheduling = 0.0, rest, 0.0
    lock_share = sum(seconds for (_state, call, _code, _line), seconds in offcpu.sites.items()
                     if call.rsplit(".", 1)[-1] == "acquire" or call.startswith("with "))
    task = Task(
        id=unit_id(record),
        name=record.name,
        target=record.target,
        kind="thread",
        count=record.count,
        wall_s=_r(wall),
        cpu_s=_r(cpu),
        breakdown=Breakdown(compute_s=_r(cpu), io_s=_r(io), waiting_s=_r(waiting),
                            scheduling_s=_r(scheduling)),
        blocking_s=0.0,
        lock_wait_s=_r(lock_share * (rest / sampled) if sampled > 0.0 else 0.0),
        hot=hot_spots(record.samples),
        blocking=blocking_sites(offcpu),
        file=display_path(record.target_file),
        line=record.target_line,
    )
    return task, offcpu


def counting_overhead(units: Iterable[UnitRecord], call_stats: Iterable[CallStats],
                      wrapper_cost_s: float) -> dict[int, float]:
    """CPU seconds standard mode's call counting added to each unit (by record id): each
    counted call cost `wrapper_cost_s`, shared out by the units' sampled on-CPU time in
    that function, among threads and, separately, among the tasks and greenlets on them."""
    per_code = {stats.code: stats.calls * wrapper_cost_s for stats in call_stats if stats.calls}
    added: dict[int, float] = defaultdict(float)
    if not per_code:
        return added
    units = list(units)
    for is_thread in (True, False):
        shares: dict[CodeType, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for record in units:
            if (record.kind == "thread") != is_thread:
                continue
            for stack, (on, *_rest) in (record.samples or {}).items():
                for code in {frame[0] for frame in stack} & per_code.keys():
                    shares[code][id(record)] += on
        for code, by_unit in shares.items():
            total = sum(by_unit.values())
            for key, value in by_unit.items():
                if total > 0.0:
                    added[key] += per_code[code] * value / total
    return added


def unit_entries(units: Iterable[UnitRecord], corrections: dict[int, float] | None = None,
                 enrich: Callable[[UnitRecord, Task], None] | None = None,
                 span: tuple[float, float] | None = None) -> list[Task]:
    """Report entries for all units, longest wall time first within each kind; `corrections`
    are probe CPU seconds to take out of a unit's compute and wall (kept as its profiler_s);
    `enrich` may add mode-specific detail to each entry; `span` (the run's start and end)
    places each unit on the run's timeline."""
    tasks: list[Task] = []
    entries: list[tuple[UnitRecord, Task]] = []
    units = list(units)
    # a task's loop (a greenlet's hub) is named by the thread unit that ran it (what-if
    # replays each loop apart)
    loops = {record.ident: unit_id(record) for record in units if record.kind == "thread" and record.ident}
    for record in units:
        entry, _ = thread_entry(record) if record.kind == "thread" else task_entry(record)
        if record.kind in ("asyncio-task", "greenlet") and record.ident in loops:
            entry.loop = loops[record.ident]
        if span is not None:
            start, end = span
            # a unit created before the probes started (the main thread) starts with the run
            entry.start_s = _r(min(record.created, end) - start)
            entry.end_s = _r(min(record.ended if record.ended is not None else end, end) - start)
        if record.tags:
            entry.labels = {key: dict(values) for key, values in record.tags.items()}
        if enrich is not None:
            enrich(record, entry)
        correction = min((corrections or {}).get(id(record), 0.0), entry.breakdown.compute_s)
        if correction > 0.0:
            # the probes' own work ran on the unit's thread, inside its steps: without advisor
            # the unit would have been that much shorter. Taken out of its wall and compute
            # alike (so the parts still add up), and shown apart as profiler_s. Not moved to
            # scheduling: that would send the user looking for contention that is not theirs
            entry.breakdown.compute_s = _r(entry.breakdown.compute_s - correction)
            entry.wall_s = _r(max(0.0, entry.wall_s - correction))
            entry.cpu_s = _r(max(0.0, entry.cpu_s - correction))
            entry.profiler_s = _r(correction)
        tasks.append(entry)
        entries.append((record, entry))
    bound_hub_compute(entries)
    order = {"thread": 0, "asyncio-task": 1, "greenlet": 2}
    tasks.sort(key=lambda task: (order.get(task.kind, 9), -task.wall_s))
    return tasks


def bound_hub_compute(entries: list[tuple[UnitRecord, Task]]) -> None:
    """Keep a gevent hub's compute within its thread's exact CPU. A hub runs in many short
    spells (a poll that returns at once, a callback), and the sampler sees only some of them:
    the rest of its running time counts as compute (running less sampled off-CPU time),
    though most of it is the hub waiting for events. Its thread's CPU clock is exact: what
    the other greenlets of the thread did not use is the most the hub can have used. The
    excess is the hub waiting (a server's idle hub showed 4.4 s of compute in 7 s, in a
    thread that used 2.3 s of CPU in all)."""
    threads = {record.ident: entry for record, entry in entries if record.kind == "thread" and record.ident}
    others: dict[int, float] = defaultdict(float)
    hubs = []
    for record, entry in entries:
        if record.kind != "greenlet" or record.ident not in threads:
            continue
        if is_hub(record):
            hubs.append((record.ident, entry))
        else:
            others[record.ident] += entry.breakdown.compute_s
    for ident, hub in hubs:
        most = max(0.0, threads[ident].breakdown.compute_s - others[ident])
        excess = hub.breakdown.compute_s - most
        if excess > 0.0:
            hub.breakdown.compute_s = _r(most)
            hub.cpu_s = _r(min(hub.cpu_s, most))
            hub.breakdown.waiting_s = _r(hub.breakdown.waiting_s + excess)


def call_window(stats: CallStats, run_end: float) -> CallWindow:
    ended = stats.ended or run_end
    return CallWindow(calls=stats.calls, distinct_args=len(stats.distinct), unhashable_calls=stats.unhashable,
                      per_call_s=round(stats.time_s / stats.calls, 9), window_s=_r(ended - stats.started))


def estimated_calls(stats: CallStats, total_s: float, callers_s: float, run_end: float,
                    wrapper_cost_s: float) -> int:
    """All calls of the run: the larger of two estimates, each good where the other is not.
    Long calls: the function's sampled time over the time a counted call took. Tiny calls
    (whose time the samples put on the caller's line): the window's call rate, without the
    counting wrapper's own cost, over the time its callers were sampled running."""
    by_time = round(total_s * stats.calls / stats.time_s) if stats.time_s > 0.0 else 0
    window = (stats.ended or run_end) - stats.started
    bare_window = window - stats.calls * wrapper_cost_s
    by_rate = round(stats.calls / bare_window * callers_s) if bare_window > 0.0 and callers_s > window else 0
    return max(stats.calls, by_time, by_rate)


def function_table(threads: Iterable[UnitRecord], limit: int = MAX_FUNCTIONS, call_stats: Iterable[CallStats] = (),
                   run_end: float = 0.0, wrapper_cost_s: float = 0.0) -> list[FunctionStat]:
    """Per function over every thread's samples: self and total time (idle excluded), CPU,
    and for the functions whose calls were counted, the call window and estimated calls."""
    self_s: dict[CodeType, float] = defaultdict(float)
    total_s: dict[CodeType, float] = defaultdict(float)
    cpu_s: dict[CodeType, float] = defaultdict(float)
    callers: dict[CodeType, set[CodeType]] = defaultdict(set)
    for record in threads:
        for stack, (on, off, *_rest) in (record.samples or {}).items():
            frames = visible(stack)
            if not frames:
                continue
            busy = on
            if off > 0.0 and classify_stack(stack).state != "idle":
                busy += off
            if busy <= 0.0:
                continue
            leaf = frames[0][0]
            self_s[leaf] += busy
            for (callee, _), (caller, _) in pairwise(frames):
                callers[callee].add(caller)
            seen: set[CodeType] = set()
            for code, _line in frames:
                if code in seen:
                    continue
                seen.add(code)
                total_s[code] += busy
                cpu_s[code] += on
    counted = {stats.code: stats for stats in call_stats}
    ranked = sorted(total_s, key=lambda code: (-self_s.get(code, 0.0), -total_s[code]))[:limit]
    ranked += [code for code in counted if code not in ranked and code in total_s]
    table = []
    for code in ranked:
        if self_s.get(code, 0.0) <= 0.0 and not is_user_file(code.co_filename):
            continue
        stats = counted.get(code)
        table.append(FunctionStat(
            function=function_name(code),
            file=display_path(code.co_filename),
            line=code.co_firstlineno,
            calls=(estimated_calls(stats, total_s[code],
                                   max((total_s[c] for c in callers[code] if c is not code), default=0.0),
                                   run_end, wrapper_cost_s) if stats is not None else None),
            self_s=_r(self_s.get(code, 0.0)),
            total_s=_r(total_s[code]),
            cpu_s=_r(cpu_s[code]),
            window=call_window(stats, run_end) if stats is not None else None,
        ))
    return table


def sample_table(units: Iterable[tuple[str, UnitRecord]], interval: float) -> Samples:
    """The sampled stacks of every unit, with a shared frame table (for flame graphs)."""
    frames: list[SampleFrame] = []
    index: dict[tuple[CodeType, int], int] = {}
    stacks: list[StackSample] = []
    for uid, record in units:
        for stack, (on, off, contended, _held) in (record.samples or {}).items():
            shown = visible(stack)
            if not shown:
                continue
            ids = []
            for frame in shown:
                position = index.get(frame)
                if position is None:
                    code, line = frame
                    position = index[frame] = len(frames)
                    frames.append(SampleFrame(function=function_name(code),
                                              file=display_path(code.co_filename), line=line))
                ids.append(position)
            state = "running"
            if off > on:
                blocked = classify_stack(stack).state
                state = {"unknown": "scheduling" if contended > 0.0 else "waiting", "gil": "scheduling"}.get(
                    blocked, blocked)
            stacks.append(StackSample(unit=uid, frames=ids, on_cpu_s=_r(on), off_cpu_s=_r(off),
                                      state=state))  # type: ignore[arg-type]
    return Samples(interval_s=interval, frames=frames, stacks=stacks)
