"""Replay a run's event loops step by step: a discrete-event simulation of the recorded timeline.

Each loop (an asyncio event loop, or a gevent hub with its greenlets) is one server that
runs one step at a time. A step is *ready* when what it waited for is over, and the rule
for that comes from the recording:

- its first step: when the step that created the task reached the ``create_task`` call;
- after a bare yield: when its previous step ended; after a timer: that much later;
- after awaiting tasks asyncio names (an awaited task, a ``gather``'s children): when the
  last of them ended;
- after other waits (I/O, events, locks, queues): if the loop sat idle just before the
  step, the wake-up came from outside (a socket, a thread, a timer): the same latency
  after its previous step as recorded. If the loop was busy up to it, the step just
  before it, of another task, woke it (it set the event, wrote the reply its server task
  owed, or held the loop while the reply came in): it is ready when that step ends.

The loop picks, among ready steps, the one that ran first in the recording, so replaying
the unmodified timeline gives back the recorded order. An idle loop that woke late for a
step (a loaded machine's late timer) wakes as late in the replay, with every step that
came due in between ready at once. A fix edits steps before the
replay: held time a blocking call or a CPU-heavy step took from the loop is cut from the
steps that held it (the long ones), and what of it stays on the task's own path (the sleep
still lasts, the CPU now runs in a process pool of ``cpu_count`` workers) comes back as a
wait after them; waits the fix overlaps (sequential awaits) or removes (a lock's queue)
shrink (an overlapped wait no longer waits for whoever ended it: it lasts its share of
the recorded wait after the task's previous step). Savings are the simulated end of the
run before the edit minus after it, both simulated the same way: what the simulation does
not model cancels out.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field

from advisor.profile import LONG_STEP_S, Report, Timeline, TimelineTrack

from .fixes import POOL_START_S
from .model import ReplayModel
from .replay import Edit, Outcome, UnitOutcome

# A gap between two steps of one loop shorter than this is the loop's own work (a poll, a
# callback, a preempted moment on a loaded machine): it was busy.
IDLE_GAP_S = 0.001
# below this a unit's change is noise: a share of the run's wall, at least 2 ms
TOLERANCE_SHARE = 0.02
MIN_TOLERANCE_S = 0.002
# a thread busy on the CPU for this share of its wall ends when its own work ends
BUSY_SHARE = 0.5

StepKey = tuple[int, int]  # (track index, step index)


@dataclass
class Rule:
    """When a step is ready: `delay` after the latest of `after` (steps whose task's own
    path it follows: their ends plus any wait a fix put after them) and `woken_by` (the
    step that woke it: its end), or after the start of `in_step` (its creator's step), or
    at `at` when it depends on no step."""

    after: list[StepKey] = field(default_factory=list)
    woken_by: StepKey | None = None
    in_step: StepKey | None = None
    delay: float = 0.0
    at: float = 0.0


@dataclass
class LoopPlan:
    """The steps of one loop, in recorded order, with their ready rules."""

    order: list[StepKey]
    rules: dict[StepKey, Rule]
    root: int | None  # the track whose end ends the loop (asyncio.run's main task)
    # a step that was ready when the loop finished the step before it: the loop's own time
    # in between (its poll, callbacks that are not task steps), spent again in the replay
    lead_in: dict[StepKey, float] = field(default_factory=dict)
    # a step the loop was idle for: how long after it was ready it ran (a timer's lateness,
    # the poll's wake-up). The replay's idle loop wakes that late for it, and then runs
    # whatever came due meanwhile too, the first recorded first
    latency: dict[StepKey, float] = field(default_factory=dict)


def _loop_of(track: TimelineTrack) -> str:
    return track.loop or ""


def plan_loop(tracks: list[TimelineTrack], members: list[int]) -> LoopPlan:
    """Ready rules for every step of the tracks `members` (all on one loop)."""
    order = sorted(((index, step) for index in members for step in range(len(tracks[index].start_s))),
                   key=lambda key: (tracks[key[0]].start_s[key[1]], key))
    member_set = set(members)
    rules: dict[StepKey, Rule] = {}
    for number, key in enumerate(order):
        # the step that ran on the loop just before this one, and when it ended
        previous = order[number - 1] if number > 0 else None
        previous_end = tracks[previous[0]].end_s[previous[1]] if previous is not None else None
        make = _first_step_rule if key[1] == 0 else _later_step_rule
        rules[key] = make(tracks, key, member_set, previous, previous_end)
    lead_in, latency = _recorded_gaps(tracks, order, rules)
    return LoopPlan(order=order, rules=rules, root=_root(tracks, members), lead_in=lead_in, latency=latency)


def _first_step_rule(tracks: list[TimelineTrack], key: StepKey, members: set[int], previous: StepKey | None,
                     previous_end: float | None) -> Rule:
    """A unit's first step: after the creator's step reached the creation, else after what
    the loop ran before it was created (a server's connection callback), else at its time."""
    track = tracks[key[0]]
    rule = Rule()
    creator = track.creator
    if creator is not None and creator in members:
        # the creator's step that was running when it was created: the last one started by then
        started = [other for other, begin in enumerate(tracks[creator].start_s) if begin <= track.created_s]
        if started:
            rule.in_step = (creator, started[-1])
            rule.delay = max(0.0, track.created_s - tracks[creator].start_s[started[-1]])
            return rule
    if previous is not None and previous_end is not None and previous_end <= track.created_s:
        rule.after = [previous]
        rule.delay = track.created_s - previous_end
    else:
        rule.at = track.created_s
    return rule


def _later_step_rule(tracks: list[TimelineTrack], key: StepKey, members: set[int], previous: StepKey | None,
                     previous_end: float | None) -> Rule:
    """A later step: after its own previous step, plus what it waited for (see the module)."""
    index, step = key
    track = tracks[index]
    start = track.start_s[step]
    own = (index, step - 1)
    own_end = track.end_s[step - 1]
    rule = Rule(after=[own])
    wait = track.waits[step]
    awaited = track.after.get(step)
    due = track.due_s[step]
    if wait == "ready":
        return rule
    if wait == "timer" and due is not None:
        rule.delay = max(0.0, due - own_end)
    elif awaited and all(other in members for other in awaited):
        rule.after = [own] + [_last_before(tracks[other], other, start) for other in awaited
                              if tracks[other].start_s and tracks[other].start_s[0] < start]
    elif (previous is not None and previous_end is not None and start - previous_end <= IDLE_GAP_S
          and previous[0] != index and previous_end >= own_end):
        rule.woken_by = previous  # the loop was busy up to it: that step woke it
    else:
        rule.delay = max(0.0, start - own_end)  # woken from outside: the same latency
    return rule


def _recorded_gaps(tracks: list[TimelineTrack], order: list[StepKey],
                   rules: dict[StepKey, Rule]) -> tuple[dict[StepKey, float], dict[StepKey, float]]:
    """What the rules do not explain of the recorded start times: the loop's own time between
    steps, and the lateness of a step the loop was idle for (see ``LoopPlan``). With them the
    unmodified replay starts every step when it started."""
    starts = {key: tracks[key[0]].start_s[key[1]] for key in order}
    ends = {key: tracks[key[0]].end_s[key[1]] for key in order}
    lead_in: dict[StepKey, float] = {}
    latency: dict[StepKey, float] = {}
    for number, key in enumerate(order):
        ready = _ready_by(rules[key], starts, ends, ends)  # recorded: no fix put a wait after a step
        loop_free = ends[order[number - 1]] if number > 0 else ready
        start = starts[key]
        if ready <= loop_free:
            lead_in[key] = max(0.0, start - loop_free)
        else:
            latency[key] = max(0.0, start - ready)
    return lead_in, latency


def _ready_by(rule: Rule, start: dict[StepKey, float], end: dict[StepKey, float],
              out: dict[StepKey, float]) -> float:
    """When a rule makes its step ready, given its steps' starts, ends and `out` times (their
    ends plus any wait a fix put after them)."""
    if rule.in_step is not None:
        return min(start[rule.in_step] + rule.delay, end[rule.in_step])
    if not rule.after and rule.woken_by is None:
        return rule.at
    # `out` for the task's own path and the tasks it awaited: a blocking call turned into an
    # awaited one finishes that work after the wait; `end` for a waker: it gave the loop back
    # (and the reply or event it brought) when its step ended
    base = max([out[item] for item in rule.after] + ([end[rule.woken_by]] if rule.woken_by is not None else []))
    return base + rule.delay


def _last_before(track: TimelineTrack, index: int, time: float) -> StepKey:
    """The awaited track's last step that ended by `time` (its final one, normally)."""
    last = 0
    for step, end in enumerate(track.end_s):
        if end <= time + IDLE_GAP_S:
            last = step
    return (index, last)


def _root(tracks: list[TimelineTrack], members: list[int]) -> int | None:
    """The task that ran the loop (``asyncio.run``'s main task): created by no task, first,
    and ending last. None when no task fits (``run_forever``, a server stopped from outside)
    and for a gevent hub (the main greenlet that waits for the others is the thread itself,
    not a unit): then the loop ends with its last step."""
    stepped = [index for index in members if tracks[index].start_s and tracks[index].unit.startswith("asyncio:")]
    if not stepped:
        return None
    first = min(stepped, key=lambda index: tracks[index].created_s)
    last_end = max(tracks[index].end_s[-1] for index in stepped)
    if tracks[first].creator is None and tracks[first].end_s[-1] >= last_end - IDLE_GAP_S:
        return first
    return None


@dataclass
class StepEdits:
    """Per step: the new length, and what comes after it on the task's own path."""

    length: dict[StepKey, float] = field(default_factory=dict)
    delay: dict[StepKey, float] = field(default_factory=dict)  # a wait added after the step
    pooled: set[StepKey] = field(default_factory=set)  # the added wait runs in the process pool
    shrink: dict[StepKey, float] = field(default_factory=dict)  # the wait before the step: its new share


def step_edits(timeline: Timeline, edit: Edit) -> StepEdits:
    """The edit of units turned into edits of their tracks' steps."""
    result = StepEdits()
    by_unit: dict[str, list[int]] = defaultdict(list)
    for index, track in enumerate(timeline.tracks):
        by_unit[track.unit].append(index)
    keys = set(edit.held_s) | set(edit.own_s) | set(edit.overlap_s)
    for key in keys:
        members = by_unit.get(key, [])
        steps = [(index, step) for index in members for step in range(len(timeline.tracks[index].start_s))]
        if not steps:
            continue
        held = max(0.0, -edit.held_s.get(key, 0.0))
        kept = edit.own_s.get(key, 0.0) + held  # of the held time cut, what stays on the path
        if held > 0.0:
            lengths = {item: _track_length(timeline.tracks, item) for item in steps}
            weights = {item: length for item, length in lengths.items() if length >= LONG_STEP_S}
            if not weights:
                weights = lengths
            total = sum(weights.values())
            for item, weight in weights.items():
                cut = min(lengths[item], held * weight / total) if total > 0.0 else 0.0
                result.length[item] = lengths[item] - cut
                if kept > 0.0 and cut > 0.0:
                    result.delay[item] = cut * min(1.0, kept / held)
                    if key in edit.pooled:
                        result.pooled.add(item)
        if key in edit.overlap_s:
            _shrink_waits(timeline, members, edit.overlap_s[key], "io", result)
        elif kept < -1e-12:
            _shrink_waits(timeline, members, -kept, "io" if edit.io_s.get(key) else "lock", result)
    return result


def _shrink_waits(timeline: Timeline, members: list[int], seconds: float, kind: str, result: StepEdits) -> None:
    """Take `seconds` off the unit's external waits of this kind (io; lock or waiting), evenly."""
    kinds = ("io",) if kind == "io" else ("lock", "waiting")
    waits: dict[StepKey, float] = {}
    for index in members:
        track = timeline.tracks[index]
        for step in range(1, len(track.start_s)):
            if track.waits[step] in kinds:
                waits[(index, step)] = max(0.0, track.start_s[step] - track.end_s[step - 1])
    total = sum(waits.values())
    if total <= 0.0:
        return
    share = max(0.0, 1.0 - seconds / total)
    for item in waits:
        result.shrink[item] = share


@dataclass
class Simulated:
    """One simulated loop: each step's ready time, start and end, and when its own path goes on."""

    ready: dict[StepKey, float]
    start: dict[StepKey, float]
    end: dict[StepKey, float]
    out: dict[StepKey, float]  # the end plus the wait a fix put after it
    loop_end: float


def simulate(tracks: list[TimelineTrack], plan: LoopPlan, edits: StepEdits, workers: int) -> Simulated:
    """Run the loop's steps one at a time, the earliest recorded first among those ready."""
    dependents: dict[StepKey, list[StepKey]] = defaultdict(list)
    missing: dict[StepKey, int] = {}
    for key in plan.order:
        rule = plan.rules[key]
        if key in edits.shrink:
            needs = {(key[0], key[1] - 1)}  # an overlapped wait follows only its own task's path
        else:
            needs = set(rule.after) | {step for step in (rule.in_step, rule.woken_by) if step is not None}
        missing[key] = len(needs)
        for need in needs:
            dependents[need].append(key)
    ready: dict[StepKey, float] = {}
    start: dict[StepKey, float] = {}
    end: dict[StepKey, float] = {}
    out: dict[StepKey, float] = {}
    recorded = {key: number for number, key in enumerate(plan.order)}
    # a step's latency is the lateness of the wake-up of an idle loop, not of the step: the
    # loop sleeps until the earliest ready step, wakes that late, and then every step ready by
    # then is runnable, the first recorded first (on a loaded machine a timer's wake-up came
    # 3 ms late, and another task's timer due meanwhile ran before the late one, which held
    # the loop 80 ms, when the latency delayed only its own step)
    pending: list[tuple[float, int, StepKey]] = []  # (rule's ready time, recorded order, step)
    runnable: list[tuple[int, float, StepKey]] = []  # (recorded order, rule's ready time, step)
    pool = [0.0] * max(1, workers)  # when each process of the pool is free
    pool_started = False

    def rule_time(key: StepKey) -> float:
        share = edits.shrink.get(key)
        if share is not None:
            # the fix overlaps this wait with the task's others (or takes it out of a lock's
            # queue): it lasts `share` of what it did, whoever ended it in the recording
            track = tracks[key[0]]
            waited = max(0.0, track.start_s[key[1]] - track.end_s[key[1] - 1])
            return out[(key[0], key[1] - 1)] + share * waited
        return _ready_by(plan.rules[key], start, end, out)

    def make_ready(key: StepKey) -> None:
        time = rule_time(key)
        ready[key] = time + plan.latency.get(key, 0.0)
        heapq.heappush(pending, (time, recorded[key], key))

    for key in plan.order:
        if missing[key] == 0:
            make_ready(key)
    now = 0.0
    done = 0
    while done < len(plan.order):
        if not runnable and pending and pending[0][0] > now:
            # the loop idles until the next step is ready, and wakes as late as it did for it
            now = ready[pending[0][2]]
        while pending and pending[0][0] <= now:
            time, number, key = heapq.heappop(pending)
            heapq.heappush(runnable, (number, time, key))
        if not runnable:
            break  # inconsistent rules: nothing can run (never on a recorded timeline)
        _number, time, key = heapq.heappop(runnable)
        begin = max(now + plan.lead_in.get(key, 0.0), time)
        length = edits.length.get(key, _track_length(tracks, key))
        start[key] = begin
        end[key] = now = begin + length
        added = edits.delay.get(key, 0.0)
        if key in edits.pooled and added > 0.0:
            if not pool_started:
                pool = [end[key] + POOL_START_S] * len(pool)  # forking the workers, at the first job
                pool_started = True
            free = heapq.heappop(pool)
            finish = max(free, end[key]) + added
            heapq.heappush(pool, finish)
            out[key] = finish
        else:
            out[key] = end[key] + added
        done += 1
        for dependent in dependents.get(key, ()):
            missing[dependent] -= 1
            if missing[dependent] == 0:
                make_ready(dependent)
    if plan.root is not None and tracks[plan.root].start_s:
        last = (plan.root, len(tracks[plan.root].start_s) - 1)
        loop_end = out.get(last, now)
    else:
        loop_end = max(out.values(), default=0.0)
    return Simulated(ready=ready, start=start, end=end, out=out, loop_end=loop_end)


def _track_length(tracks: list[TimelineTrack], key: StepKey) -> float:
    track = tracks[key[0]]
    return max(0.0, track.end_s[key[1]] - track.start_s[key[1]])


def usable(report: Report, edit: Edit) -> bool:
    """Whether the timeline covers what the edit changes: recorded, complete, and every unit
    the edit touches has its steps on it (threads have none, nor do greenlets in deep mode)."""
    timeline = report.timeline
    if timeline is None or timeline.truncated or not timeline.tracks:
        return False
    units = {track.unit for track in timeline.tracks}
    touched = {key for key, value in (*edit.own_s.items(), *edit.held_s.items()) if value} | edit.targets
    return bool(touched) and touched <= units


def replay_timeline(model: ReplayModel, report: Report, edit: Edit) -> Outcome:
    """The run's and the units' wall times with the edit applied, from the simulated loops."""
    timeline = report.timeline
    assert timeline is not None
    tracks = timeline.tracks
    loops: dict[str, list[int]] = defaultdict(list)
    for index, track in enumerate(tracks):
        loops[_loop_of(track)].append(index)
    edits = step_edits(timeline, edit)
    workers = max(1, model.cpu_count)
    life_change: dict[str, float] = defaultdict(float)
    ends_before: list[float] = []
    ends_after: list[float] = []
    loop_shift: dict[str, float] = {}
    changed_steps = {key[0] for key in (*edits.length, *edits.delay, *edits.shrink)}
    for loop, members in loops.items():
        if not changed_steps.intersection(members):
            continue  # a loop the edit does not touch runs as recorded
        plan = plan_loop(tracks, members)
        before = simulate(tracks, plan, StepEdits(), workers)
        after = simulate(tracks, plan, edits, workers)
        ends_before.append(before.loop_end)
        ends_after.append(after.loop_end)
        loop_shift[loop] = before.loop_end - after.loop_end
        for index in members:
            steps = len(tracks[index].start_s)
            if not steps:
                continue
            first, last = (index, 0), (index, steps - 1)
            life_before = before.out[last] - before.ready[first]
            life_after = after.out[last] - after.ready[first]
            life_change[tracks[index].unit] += life_after - life_before
    tolerance = max(MIN_TOLERANCE_S, TOLERANCE_SHARE * model.run_wall_s)
    for unit in model.units:
        # the other threads (other loops' among them): one that ended before the run did, or
        # that computed until the end, ends when it ended (a floor); one that idled until
        # the end (the main thread joining, a service stopped at exit) ends with the run
        if unit.task.kind != "thread" or unit.key in loop_shift:
            continue
        late = unit.end_s >= model.run_wall_s - tolerance
        if not late or unit.compute_share >= BUSY_SHARE:
            ends_before.append(unit.end_s)
            ends_after.append(unit.end_s)
    savings = max(ends_before, default=0.0) - max(ends_after, default=0.0)
    after_run = max(0.0, model.run_wall_s - savings)
    outcomes: list[UnitOutcome] = []
    for unit in model.units:
        # the thread running a loop runs as long as it
        change = -loop_shift[unit.key] if unit.key in loop_shift else life_change.get(unit.key, 0.0)
        if abs(change) > tolerance or (unit.key in edit.targets and change):
            outcomes.append(UnitOutcome(unit, unit.wall_s, max(0.0, unit.wall_s + change)))
    outcomes.sort(key=lambda outcome: outcome.after_s - outcome.before_s)
    return Outcome(model.run_wall_s, after_run, outcomes, replayed_from="timeline")


__all__ = ["LoopPlan", "Rule", "Simulated", "StepEdits", "plan_loop", "replay_timeline", "simulate", "step_edits",
           "usable"]
