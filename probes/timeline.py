"""The step timeline: when each task step ran, what it waited for before, and who it waited on.

The what-if replay (``advisor/whatif/simulate.py``) re-runs a program's event loops as a
discrete-event simulation, so it needs the order of events, not only per-task sums: for
every step of every task, its start and end, the CPU it used when that was read, what the
task waited for before it (nothing, a timer and its due time, I/O, another task, a lock),
and — where asyncio says so — which tasks it waited on (an awaited task, a ``gather``'s
children). The asyncio probe feeds it in standard and deep mode (light mode, made to be
left on in servers, records no timeline). Steps go into flat typed arrays (about 40 bytes a
step) up to a fixed capacity; past it the timeline is marked truncated and takes nothing
more, so a run of any length costs a bounded amount of memory. Times are ``perf_counter``
seconds; units are the ledger's record uids, renamed to their fold's uid when a finished
unit folds into another.
"""

from __future__ import annotations

from array import array

# Steps kept per run (about 0.8 MB in memory, a few MB in a JSON report).
MAX_STEPS = 20_000

# What a task waited for before a step: the ledger's kinds, plus its first step.
NEW = -1


class StepTimeline:
    """Bounded flat arrays of task steps, plus per-unit creation facts."""

    def __init__(self, capacity: int = MAX_STEPS, kind: str = "asyncio") -> None:
        self.capacity = capacity
        self.kind = kind  # whose steps: "asyncio" tasks or "greenlet"s (their report ids' prefix)
        self.unit = array("q")
        self.start = array("d")
        self.end = array("d")
        self.cpu = array("d")  # the step's thread CPU seconds, -1 where it was not read
        self.waits = array("b")  # what the unit waited for before the step (task_ledger kinds, NEW)
        self.due = array("d")  # a timer's due time before the step (0 for other waits)
        # unit uid -> (created at, creating unit's uid or 0, thread ident running its loop)
        self.units: dict[int, tuple[float, int, int]] = {}
        # step index -> the uids its unit waited on before it (an awaited task, gather's children)
        self.after: dict[int, tuple[int, ...]] = {}
        self.pending: dict[int, tuple[int, ...]] = {}  # uid -> units it waits on before its next step
        self._open: dict[int, tuple[int, float]] = {}  # uid -> (kind, due) of its running step
        self.folded: dict[int, int] = {}  # a finished unit's uid -> the uid of the fold it joined
        self.truncated = False

    def __len__(self) -> int:
        return len(self.start)

    def created(self, uid: int, t: float, creator: int, ident: int) -> None:
        """A unit was created at t by `creator` (0: not by a task) on the loop of thread `ident`."""
        if not self.truncated:
            self.units[uid] = (t, creator, ident)

    def waits_on(self, uid: int, others: tuple[int, ...]) -> None:
        """The unit suspended waiting for these units to finish: its next step comes after them."""
        if others and not self.truncated:
            self.pending[uid] = others

    def add(self, uid: int, kind: int, due: float, t0: float, t1: float, cpu: float,
            after: tuple[int, ...] | None = None) -> None:
        """One step of unit `uid` ran from t0 to t1 after waiting for `kind` (due: a timer's
        time) and, where known, for the units `after` to finish."""
        if uid not in self.units:
            return  # created after the timeline filled up, or before the probe saw it
        index = len(self.start)
        if index >= self.capacity:
            self.truncated = True
            return
        self.unit.append(uid)
        self.start.append(t0)
        self.end.append(t1)
        self.cpu.append(cpu)
        self.waits.append(kind)
        self.due.append(due)
        if after:
            self.after[index] = after

    def begin(self, uid: int, kind: int, due: float) -> None:
        """A step of the unit starts after waiting for `kind` (a probe that learns the end
        later, as the greenlet probe does at the next switch, calls ``finish`` then)."""
        if not self.truncated and uid in self.units:
            self._open[uid] = (kind, due)

    def finish(self, uid: int, t0: float, t1: float, cpu: float) -> None:
        """The unit's step begun with ``begin`` ran from t0 to t1."""
        opened = self._open.pop(uid, None)
        if opened is not None:
            self.add(uid, opened[0], opened[1], t0, t1, cpu)

    def fold(self, uid: int, into: int) -> None:
        """A finished unit joined the fold of unit `into`: its steps belong to that report entry."""
        if uid in self.units:
            self.folded[uid] = into

    def entry_of(self, uid: int) -> int:
        """The uid of the record the unit's report entry is made of."""
        seen = 0
        while uid in self.folded and seen < 64:
            uid = self.folded[uid]
            seen += 1
        return uid


__all__ = ["MAX_STEPS", "NEW", "StepTimeline"]
