"""The per-task time ledger: turns step and suspension events into per-task sums.

The asyncio probe (and later the greenlet probe) reports, with explicit timestamps, when
a unit was created, when each step started and ended, and what it waited for when it
suspended. The ledger splits every gap between two steps into I/O, waiting and
scheduling, keeps live units in a dict, and folds finished anonymous units by target so
that a million short-lived tasks cost a bounded amount of memory. It reads no clock
itself, which is what lets its logic be tested with made-up times. ``step_started``,
``step_ended``, ``split_gap`` and ``note_wait`` have a C copy in ``_switch_hook.c`` (the
greenlet probe's common switch): a change here is a change there, and
``tests/probes/test_greenlet_switch_hook.py`` checks that both keep the same books.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .records import Site, UnitRecord

# What a suspended unit waits for.
READY = 0  # nothing: it yielded and is already scheduled (sleep(0), first step)
TIMER = 1  # a timer due at `due`; past that it is ready
IO = 2  # a socket, stream, subprocess, DNS lookup or executor job
WAITING = 3  # an event, queue, condition, future or another unit
LOCK = 4  # a lock or semaphore held by someone else (waiting, also counted as lock wait)

# A step longer than this makes its unit a suspect: the probes read the CPU clock at the start
# of its later steps, so that a long one splits exactly into compute and the rest.
SUSPECT_STEP_S = 0.002

# asyncio's default task names, gevent's default greenlet names, and no name at all
ANONYMOUS_TASK = re.compile(r"^((Task|Greenlet)-\d+)?$")
# Named units are kept one by one up to this many entries, then folded by (name, target).
NAMED_UNITS_KEPT = 5_000
# Past this many finished entries (a long run naming each request's task), a new name folds
# under its pattern, its numbers replaced by `*` (`req-17` -> `req-*`), and past this many
# and PATTERNS_KEPT more, under `*` for its target: the table stays bounded in a run of any length.
MAX_FINISHED_ENTRIES = 10_000
PATTERNS_KEPT = 1_000
# A word with a digit in it: a request number, an id, a uuid's part.
NUMBERED = re.compile(r"[0-9A-Za-z]*[0-9][0-9A-Za-z]*")


def split_gap(kind: int, suspended_at: float, resumed_at: float, due: float) -> tuple[float, float, float]:
    """(io, waiting, scheduling) seconds of one suspension, by what it waited for."""
    gap = resumed_at - suspended_at
    if gap <= 0.0:
        return 0.0, 0.0, 0.0
    if kind == IO:
        return gap, 0.0, 0.0
    if kind in (WAITING, LOCK):
        return 0.0, gap, 0.0
    if kind == READY:
        return 0.0, 0.0, gap
    # TIMER: waiting until the due time, then ready but not yet running
    waited = min(gap, max(0.0, due - suspended_at))
    return 0.0, waited, gap - waited


class _UnitRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference that knows which live unit it follows."""

    __slots__ = ("key",)
    key: int


class TaskLedger:
    """Live and finished units of one kind, with folding of the finished ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.live: dict[int, UnitRecord] = {}
        self.finished: dict[tuple[object, ...], UnitRecord] = {}
        # weak references to the live units' objects: one collected while pending ends there
        self.refs: dict[int, weakref.ref[Any]] = {}
        self._on_collected = self._collected
        self._clock: Callable[[], float] = lambda: 0.0
        self._next_uid = 0
        self._named_kept = 0
        # told (finished uid, fold's uid) when a finished unit folds into another (the step timeline)
        self.on_fold: Callable[[int, int], None] | None = None
        # trace windows (the greenlet probe's pause_here): a suspension that began before
        # tracing last resumed is not charged, and none is charged past a pause's start
        self.unseen_before = -math.inf
        self.seen_until: float | None = None

    def create(self, key: int, target: str, target_file: str, target_line: int, t: float) -> UnitRecord:
        """A new unit, identified by `key` (id of the task object) while it lives."""
        self._next_uid += 1
        record = UnitRecord(self._next_uid, self.kind, target, target_file, target_line, t)
        self.live[key] = record
        return record

    @staticmethod
    def step_started(record: UnitRecord, t0: float) -> None:
        """A step of the unit starts: account for the gap since it suspended."""
        if record.first_run is None:
            record.first_run = t0
            # from creation to the first step the unit was ready but not running
            record.scheduling_s += max(0.0, t0 - record.created)
            return
        suspended_at = record.susp_at
        if suspended_at is None:
            return
        io, waiting, scheduling = split_gap(record.wait_kind, suspended_at, t0, record.due)
        record.io_s += io
        record.waiting_s += waiting
        record.scheduling_s += scheduling
        if record.wait_kind == LOCK:
            record.lock_s += waiting
        record.susp_at = None
        if record.wait_site is not None:
            note_wait(record, record.wait_site, io, waiting, record.wait_kind == LOCK)
            record.wait_site = None

    @staticmethod
    def step_ended(record: UnitRecord, t0: float, t1: float, wait_kind: int, due: float,
                   site: tuple[Site, Any] | None = None) -> None:
        """A step ran from t0 to t1 and the unit suspended waiting for `wait_kind`, at `site`
        (the program's frames in the await chain and the id of the awaited call's object)."""
        took = t1 - t0
        record.steps += 1
        record.running_s += took
        if took > record.longest_step_s:
            record.longest_step_s = took
        record.susp_at = t1
        record.wait_kind = wait_kind
        record.due = due
        record.wait_site = site

    def watch(self, key: int, unit: Any, clock: Callable[[], float]) -> None:
        """Follow the unit's object: if it is garbage-collected unfinished, it ends then.
        One shared callback and a key on the reference itself: no closure per unit (a
        million tasks would mean millions of objects for the garbage collector to scan)."""
        self._clock = clock
        try:
            ref = _UnitRef(unit, self._on_collected)
        except TypeError:
            return
        ref.key = key
        self.refs[key] = ref

    def _collected(self, ref: _UnitRef) -> None:
        try:
            self.finish(ref.key, self._clock(), "")
        except Exception:
            pass

    def live_names(self, name_of: Callable[[Any], str]) -> dict[int, str]:
        """Names of the live units whose objects still exist."""
        names = {}
        for key, ref in list(self.refs.items()):
            unit = ref()
            if unit is not None:
                try:
                    names[key] = name_of(unit)
                except Exception:
                    pass
        return names

    def finish(self, key: int, t_end: float, name: str) -> UnitRecord | None:
        """The unit finished at t_end: fold it into the finished table."""
        self.refs.pop(key, None)
        record = self.live.pop(key, None)
        if record is None:
            return None
        if (record.susp_at is not None and record.susp_at < t_end) or record.first_run is None:
            # it ends while suspended (collected, or closed at the end), or never ran: its
            # last wait (or all of its life, ready) counts
            self._last_wait(record, t_end)
        record.ended = t_end
        record.susp_at = None
        self._close(record, t_end, name or record.name)
        return record

    def _close(self, record: UnitRecord, t_end: float, name: str) -> None:
        record.wall_s = max(0.0, t_end - record.created)
        record.name = name
        record.named = not ANONYMOUS_TASK.match(name)
        if record.named:
            if self._named_kept < NAMED_UNITS_KEPT:
                self._named_kept += 1
                fold_key: tuple[object, ...] = ("named", name, record.uid)
            else:
                fold_key = ("named", name, record.target)
                if fold_key not in self.finished and len(self.finished) >= MAX_FINISHED_ENTRIES:
                    fold_key = self._bounded_key(name, record)
        else:
            fold_key = ("anonymous", record.target, record.target_file, record.target_line)
        record.key = fold_key
        into = self.finished.get(fold_key)
        if into is None:
            self.finished[fold_key] = record
            return
        fold(into, record)
        if self.on_fold is not None:
            self.on_fold(record.uid, into.uid)

    def _bounded_key(self, name: str, record: UnitRecord) -> tuple[object, ...]:
        """The fold of a new name once the table is full: its pattern, or `*` once the
        patterns are full too; the record shows that name from now on."""
        pattern = NUMBERED.sub("*", name)
        key: tuple[object, ...] = ("pattern", pattern, record.target)
        if key not in self.finished and len(self.finished) >= MAX_FINISHED_ENTRIES + PATTERNS_KEPT:
            pattern = "*"
            key = ("pattern", pattern, record.target)
        record.name = pattern
        return key

    def close_live(self, t_end: float, names: dict[int, str]) -> None:
        """At the end of the run: close every unit still alive (it ran until t_end)."""
        self.refs.clear()
        for key in list(self.live):
            record = self.live.pop(key)
            if record.susp_at is not None or record.first_run is None:
                # still suspended, or never run (ready all along): the gap up to the end counts
                self._last_wait(record, t_end)
            self._close(record, t_end, names.get(key) or record.name)

    def _last_wait(self, record: UnitRecord, t_end: float) -> None:
        """A unit's open suspension (or its wait for a first step) counts up to t_end, as far
        as it was traced (see unseen_before and seen_until)."""
        if record.susp_at is not None and record.susp_at < self.unseen_before:
            record.susp_at = None
            record.wait_site = None
            return
        until = self.seen_until
        if until is not None:  # paused now: up to the pause's start (never before the suspension)
            t_end = max(min(t_end, until), record.susp_at if record.susp_at is not None else until)
        self.step_started(record, t_end)

    def snapshot(self, now: float, names: dict[int, str], in_step: dict[int, float] | None = None) -> list[UnitRecord]:
        """Every unit as ``close_live`` and ``all_records`` would give them if the run ended
        now, built from copies: the ledger goes on untouched (a report taken while the
        program runs). `in_step` maps ``id(record)`` of the units running a step right now
        to that step's start, so their running time so far counts."""
        view = TaskLedger(self.kind)
        view._named_kept = self._named_kept
        view.unseen_before, view.seen_until = self.unseen_before, self.seen_until
        view.finished = {key: record.copy() for key, record in list(self.finished.items())}
        steps = in_step or {}
        for key, record in list(self.live.items()):
            copy = record.copy()
            start = steps.get(id(record))
            if start is not None and copy.susp_at is None and copy.first_run is not None:
                copy.running_s += max(0.0, now - start)
            view.live[key] = copy
        view.close_live(now, names)
        return list(view.all_records())

    def all_records(self) -> Iterator[UnitRecord]:
        """Every finished (or closed) record, folded ones included."""
        yield from self.finished.values()


def note_wait(record: UnitRecord, where: tuple[Site, Any], io: float, waiting: float, lock: bool = False) -> None:
    """Add one suspension's wait to its await site; a new callee starts an episode. The
    callee token is a weak reference to the awaited coroutine (equal while it lives, so a
    new coroutine at a reused address is still a new call) or a frame's id."""
    site, callee = where
    if record.waits is None:
        record.waits = {}
    numbers = record.waits.get(site)
    if numbers is None:
        numbers = record.waits[site] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, 0.0]
    spent = io + waiting
    numbers[0] += 1
    numbers[1] += io
    numbers[2] += waiting
    if lock:
        numbers[7] += waiting
    if callee is None or callee != numbers[6]:
        numbers[3] += 1
        numbers[5] = 0.0
        numbers[6] = callee
    numbers[5] += spent
    if numbers[5] > numbers[4]:
        numbers[4] = numbers[5]


def fold(into: UnitRecord, record: UnitRecord) -> None:
    """Add `record` to the folded entry `into` (sums in the time fields)."""
    into.count += record.count
    into.wall_s += record.wall_s
    into.running_s += record.running_s
    into.steps += record.steps
    into.io_s += record.io_s
    into.waiting_s += record.waiting_s
    into.scheduling_s += record.scheduling_s
    into.lock_s += record.lock_s
    if record.cpu_s is not None:
        into.cpu_s = (into.cpu_s or 0.0) + record.cpu_s
    if record.longest_step_s > into.longest_step_s:
        into.longest_step_s = record.longest_step_s
    if record.created < into.created:
        into.created = record.created
    if record.ended is not None and (into.ended is None or record.ended > into.ended):
        into.ended = record.ended
    into.add_samples(record)
