"""Replay a run with fixes applied: a fluid model of shared resources and the critical path.

A fix is an ``Edit``: per unit, how much shorter its own path gets (the waits that
overlap, the CPU that is no longer spent) and how much less it holds its resource (a sleep
that no longer holds the loop, CPU moved to a process pool). The replay then (1) shares
each resource out again: a unit's scheduling is what it lost to the *others* holding its
loop, hub or GIL, so it shrinks in proportion to the others' held time that the fix
removes (two blocking units on one loop each cost the others a share, and fixing one
leaves the other's share), and a task whose awaited reply came in while the loop was held
saw that delay as io (see ``hidden_loss``); and (2) walks the critical path: the run ends
when the last unit that does not wait for the changed ones ends. Units that end with or
after the changed ones while mostly waiting (the task that gathers them, the thread that
runs the loop, a server's handlers, units created meanwhile, and a task that spent its
life in one wait for others even if it lost some scheduling itself) are taken to wait for
them and move with them; units that were already running and end earlier, or that are busy
computing until the end, bound the new end from below.

This model is for the units whose steps were not recorded: threads (the OS and the GIL
interleave them, there are no steps), light-mode reports and truncated timelines. Where a
report has the steps, ``simulate`` replays them one by one instead. The fluid model starts
from the measured walls, so replaying the unmodified run gives the measured run exactly,
and what it cannot see (the order of steps) it does not pretend to know.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from .model import ReplayModel, UnitModel

# below this a unit's change is noise: a share of the run's wall, at least 2 ms
TOLERANCE_SHARE = 0.02
MIN_TOLERANCE_S = 0.002
# a unit busy on the CPU for this share of its wall ends when its own work ends
BUSY_SHARE = 0.5


@dataclass
class Edit:
    """What fixes change, per unit key (totals over a fold; negative is shorter / less)."""

    own_s: dict[str, float] = field(default_factory=dict)
    held_s: dict[str, float] = field(default_factory=dict)
    io_s: dict[str, float] = field(default_factory=dict)  # the part of own_s that is awaited io
    targets: set[str] = field(default_factory=set)  # the units the findings name
    pooled: set[str] = field(default_factory=set)  # units whose held time cut moves to a process pool
    # seconds of a unit's recorded awaited io that overlap away (the step replay's measure of
    # sequential awaits: it queues the steps behind a held loop itself)
    overlap_s: dict[str, float] = field(default_factory=dict)

    def add(self, other: Edit) -> Edit:
        combined = Edit(dict(self.own_s), dict(self.held_s), dict(self.io_s), set(self.targets) | other.targets,
                        set(self.pooled) | other.pooled, dict(self.overlap_s))
        for mine, theirs in ((combined.own_s, other.own_s), (combined.held_s, other.held_s),
                             (combined.io_s, other.io_s), (combined.overlap_s, other.overlap_s)):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0.0) + value
        return combined


@dataclass
class UnitOutcome:
    unit: UnitModel
    before_s: float
    after_s: float


@dataclass
class Outcome:
    wall_before_s: float
    wall_after_s: float
    units: list[UnitOutcome]
    replayed_from: Literal["timeline", "aggregates"] = "aggregates"

    @property
    def savings_s(self) -> float:
        return self.wall_before_s - self.wall_after_s


class HeldDensity:
    """Held seconds of some units, each spread evenly over its own life, as a function of
    time: what fell within any interval, in O(log n) (a run may have thousands of units)."""

    def __init__(self, spans: list[tuple[float, float, float]]) -> None:
        steps: dict[float, float] = defaultdict(float)
        for start, end, seconds in spans:
            life = max(end - start, 1e-9)
            steps[start] += seconds / life
            steps[start + life] -= seconds / life
        self.times = sorted(steps)
        self.before: list[float] = []  # held seconds up to each time
        self.rates: list[float] = []  # held seconds per second from each time on
        rate = total = 0.0
        previous = self.times[0] if self.times else 0.0
        for time in self.times:
            total += rate * (time - previous)
            rate += steps[time]
            self.before.append(total)
            self.rates.append(rate)
            previous = time

    def _until(self, time: float) -> float:
        index = bisect_right(self.times, time) - 1
        if index < 0:
            return 0.0
        return self.before[index] + self.rates[index] * (time - self.times[index])

    def within(self, start: float, end: float) -> float:
        return self._until(end) - self._until(start) if end > start else 0.0


def densities(model: ReplayModel, held: dict[str, float]) -> dict[str, HeldDensity]:
    """One density per resource of these held seconds (by unit key)."""
    spans: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for key, seconds in held.items():
        unit = model.unit(key)
        if unit is not None and seconds > 0.0:
            spans[unit.resource].append((unit.start_s, unit.end_s, seconds))
    return {resource: HeldDensity(items) for resource, items in spans.items()}


def held_during(unit: UnitModel, held: dict[str, float], density: dict[str, HeldDensity]) -> float:
    """Of these held seconds, those of the unit's loop-mates that fell within its life, for
    each unit of a fold (a fold's units overlap each other's holds too)."""
    resource = density.get(unit.resource)
    if resource is None:
        return 0.0
    count = max(1, unit.task.count)
    mine = held.get(unit.key, 0.0)
    others = max(0.0, resource.within(unit.start_s, max(unit.end_s, unit.start_s + 1e-9)) - mine)
    return count * (others + mine * (count - 1) / count)


def hidden_loss(unit: UnitModel, removed: dict[str, float], density: dict[str, HeldDensity], scheduling_gain: float,
                io_change: float) -> float:
    """What a task or greenlet gains, beyond its scheduling, from holds the edit removes.

    A reply that arrives while another task holds the loop is not seen until the loop
    polls again, so that delay is counted as the task's io, not its scheduling (the moment
    a socket became ready is not observable). Of the held time the edit removes from the
    others during this unit's life, what its scheduling does not account for is taken
    from its awaited io (what is left of it after the edit's own change to it). Threads' io is
    their own blocking call: nothing is hidden there."""
    if unit.task.kind == "thread":
        return 0.0
    awaited_io = max(0.0, unit.task.breakdown.io_s - unit.task.blocking_s + io_change)
    return max(0.0, min(awaited_io, held_during(unit, removed, density) - scheduling_gain))


def io_lost_to_others(model: ReplayModel, unit: UnitModel) -> float:
    """The estimated part of a task's awaited io that was in fact waiting for the loop while
    others held it (see ``hidden_loss``): not I/O that overlapping the calls would shorten."""
    if unit.task.kind == "thread":
        return 0.0
    held = model.held_by_key()
    density = model.cached("held density", lambda: densities(model, held))
    awaited_io = max(0.0, unit.task.breakdown.io_s - unit.task.blocking_s)
    return max(0.0, min(awaited_io, held_during(unit, held, density) - unit.scheduling_s))


def new_walls(model: ReplayModel, edit: Edit) -> dict[str, float]:
    """Each unit's wall time with the edit applied (totals over a fold)."""
    held_before: dict[str, float] = {}
    held_after: dict[str, float] = {}
    removed: dict[str, float] = {}
    for unit in model.units:
        after = max(0.0, unit.held_s + edit.held_s.get(unit.key, 0.0))
        held_before[unit.resource] = held_before.get(unit.resource, 0.0) + unit.held_s
        held_after[unit.resource] = held_after.get(unit.resource, 0.0) + after
        if after < unit.held_s:
            removed[unit.key] = unit.held_s - after
    removed_density = densities(model, removed)
    walls: dict[str, float] = {}
    for unit in model.units:
        mine_before = unit.held_s
        mine_after = max(0.0, unit.held_s + edit.held_s.get(unit.key, 0.0))
        count = max(1, unit.task.count)
        # a fold's own units hold the resource against each other: all but one instance count as others
        others_before = held_before[unit.resource] - mine_before / count
        others_after = held_after[unit.resource] - mine_after / count
        ratio = others_after / others_before if others_before > 1e-9 else 1.0
        scheduling = unit.scheduling_s * max(0.0, ratio)
        gain = unit.scheduling_s - scheduling
        hidden = hidden_loss(unit, removed, removed_density, gain, edit.io_s.get(unit.key, 0.0)) if removed else 0.0
        wall = unit.wall_s + edit.own_s.get(unit.key, 0.0) - gain - hidden
        walls[unit.key] = max(0.0, wall)
    return walls


def replay(model: ReplayModel, edit: Edit) -> Outcome:
    """The run's wall time and the affected units' wall times with the edit applied."""
    walls = new_walls(model, edit)
    tolerance = max(MIN_TOLERANCE_S, TOLERANCE_SHARE * model.run_wall_s)
    shift = {unit.key: (walls[unit.key] - unit.wall_s) / unit.lanes for unit in model.units}
    changed = [unit for unit in model.units if abs(shift[unit.key]) > tolerance or unit.key in edit.targets]
    changed_keys = {unit.key for unit in changed}
    if not changed:
        return Outcome(model.run_wall_s, model.run_wall_s, [])
    # a changed task that waits for others (it lost a little scheduling too) ends with them; so
    # does a fold whose units ran one after another (request handlers, per-item tasks): they
    # were started over the run, by the others, and when the last one ends is up to them
    drivers = [unit for unit in changed
               if unit.key in edit.targets or not (unit.waits_for_others or unit.task.count > unit.lanes)] or changed
    end_before = max(unit.end_s for unit in drivers)
    end_after = max(unit.end_s + shift[unit.key] for unit in drivers)
    first_start = min(unit.start_s for unit in drivers)
    driver_keys = {unit.key for unit in drivers}
    spanning: list[UnitModel] = []
    for unit in model.units:
        if unit.key in driver_keys:
            continue
        if unit.key in changed_keys:
            spanning.append(unit)
            continue
        late = unit.end_s >= end_before - tolerance
        if late and unit.compute_share >= BUSY_SHARE:
            end_before = max(end_before, unit.end_s)  # busy until the end on its own: it stays
            end_after = max(end_after, unit.end_s)
        elif not late and unit.start_s <= first_start + tolerance:
            end_after = max(end_after, unit.end_s)  # ran beside them and ended earlier: a floor
        elif late and unit.start_s <= first_start + tolerance and unit.task.count == 1:
            spanning.append(unit)  # waited for them (gathered them, ran their loop): moves with them
    savings = end_before - end_after
    after_run = max(0.0, model.run_wall_s - savings)
    outcomes = [UnitOutcome(unit, unit.wall_s, walls[unit.key]) for unit in drivers]
    outcomes += [UnitOutcome(unit, unit.wall_s, max(0.0, min(walls[unit.key], unit.wall_s - savings)))
                 for unit in spanning if abs(savings) > tolerance or unit.key in changed_keys]
    outcomes.sort(key=lambda outcome: outcome.after_s - outcome.before_s)
    return Outcome(model.run_wall_s, after_run, outcomes)
