"""The replay model: what each unit of a report did, in the terms a what-if needs.

A report keeps per-unit aggregates, not per-step timelines, so the model reads, per unit:
the resource it shares with others (the event loop for asyncio tasks, the gevent hub for
greenlets, the GIL for threads), the time it *held* that resource (its compute, plus its
blocking calls for tasks and greenlets), the time it lost to the others holding it (its
scheduling), its place on the run's timeline (start and end), and for a fold of several
units how many of them ran side by side (``lanes``, from the fold's wall time against its
span). Tasks share the loop, greenlets the hub, of the thread that ran them (``Task.loop``);
in reports made before that was recorded, all tasks share one loop, all greenlets one hub.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from advisor.profile import Report, Task
from advisor.rules.base import unit_label

T = TypeVar("T")
RESOURCE_OF_KIND = {"asyncio-task": "loop", "greenlet": "hub", "thread": "gil"}
# one wait covering this share of a task's life makes it a task that waits for others
WAITER_SHARE = 0.8


@dataclass(eq=False)
class UnitModel:
    """One unit (or fold) of the report as the replay sees it; times are totals over a fold."""

    task: Task
    label: str
    resource: str
    held_s: float
    lanes: int
    start_s: float
    end_s: float
    names: frozenset[str] = field(default_factory=frozenset)

    @property
    def key(self) -> str:
        return self.task.id

    @property
    def wall_s(self) -> float:
        return self.task.wall_s

    @property
    def scheduling_s(self) -> float:
        return self.task.breakdown.scheduling_s

    @property
    def own_s(self) -> float:
        """What the unit would take with its resource free: its wall without the scheduling."""
        return max(0.0, self.wall_s - self.scheduling_s)

    @property
    def waits_for_others(self) -> bool:
        """A task that spent (nearly) its whole life in one wait for another task or future
        (``await asyncio.gather(...)``, awaiting a child): its end is theirs, not its own."""
        life = self.wall_s / max(1, self.task.count)
        return life > 0.0 and any(site.waiting_s >= WAITER_SHARE * life and site.longest_s >= WAITER_SHARE * life
                                  for site in self.task.awaits)

    @property
    def compute_share(self) -> float:
        return self.task.breakdown.compute_s / self.wall_s if self.wall_s > 0.0 else 0.0


@dataclass
class ReplayModel:
    """The units of one run, with what the fixes need to know of the run itself."""

    run_wall_s: float
    cpu_count: int
    python_call_s: float
    units: list[UnitModel]
    _by_key: dict[str, UnitModel] = field(default_factory=dict, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_key = {unit.key: unit for unit in self.units}

    def named(self, names: list[str] | tuple[str, ...]) -> list[UnitModel]:
        """The units a finding names in its evidence: by label, name or id."""
        wanted = set(names)
        return [unit for unit in self.units if unit.names & wanted]

    def unit(self, key: str) -> UnitModel | None:
        return self._by_key.get(key)

    def held_by_key(self) -> dict[str, float]:
        return self.cached("held", lambda: {unit.key: unit.held_s for unit in self.units})

    def cached(self, name: str, make: Callable[[], T]) -> T:
        """Figures of the unmodified run that several findings' edits need, computed once."""
        if name not in self._cache:
            self._cache[name] = make()
        value: T = self._cache[name]
        return value


def lanes_of(task: Task, start: float, end: float) -> int:
    """How many units of a fold ran at once: its summed wall over its span (1 for a unit)."""
    if task.count <= 1:
        return 1
    span = end - start
    if span <= 0.0:
        return task.count
    return max(1, min(task.count, round(task.wall_s / span)))


def held_of(task: Task) -> float:
    """Time the unit kept its loop, hub or the GIL from the others."""
    if task.kind == "thread":
        return task.breakdown.compute_s
    return task.breakdown.compute_s + task.blocking_s


def build_model(report: Report) -> ReplayModel:
    units = []
    wall = report.run.wall_s
    for task in report.tasks:
        # (predict() refuses reports without a timeline; a model of one starts every unit with the run)
        start = task.start_s if task.start_s is not None else 0.0
        end = task.end_s if task.end_s is not None else min(wall, start + task.wall_s / max(1, task.count))
        label = unit_label(task)
        resource = RESOURCE_OF_KIND.get(task.kind, task.kind)
        if task.loop:
            resource = f"{resource}:{task.loop}"  # tasks of another thread's loop do not share this one
        units.append(UnitModel(task=task, label=label, resource=resource,
                               held_s=held_of(task), lanes=lanes_of(task, start, end), start_s=start, end_s=end,
                               names=frozenset({task.id, task.name, label})))
    return ReplayModel(run_wall_s=wall, cpu_count=max(1, report.run.cpu_count),
                       python_call_s=report.run.overhead.python_call_s, units=units)
