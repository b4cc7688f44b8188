"""The task ledger on made-up timestamps: it reads no clock, so every sum is exact.

A unit's wall time (creation to end) must come out as its steps (running) plus the
gaps between them split into I/O, waiting and scheduling, with nothing lost and nothing
counted twice; finished anonymous units fold by target, named ones keep their names.
"""

from __future__ import annotations

import pytest

from advisor.probes import task_ledger
from advisor.probes.records import UnitRecord
from advisor.probes.task_ledger import (
    IO,
    LOCK,
    NAMED_UNITS_KEPT,
    READY,
    TIMER,
    WAITING,
    TaskLedger,
    fold,
    split_gap,
)

EXACT = 1e-9


def parts(record: UnitRecord) -> float:
    return record.running_s + record.io_s + record.waiting_s + record.scheduling_s


# -- split_gap ------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "expected"), [
    (IO, (0.5, 0.0, 0.0)),
    (WAITING, (0.0, 0.5, 0.0)),
    (LOCK, (0.0, 0.5, 0.0)),
    (READY, (0.0, 0.0, 0.5)),
])
def test_split_gap_puts_the_whole_gap_in_its_kind(kind: int, expected: tuple[float, float, float]) -> None:
    assert split_gap(kind, 10.0, 10.5, 0.0) == pytest.approx(expected, abs=EXACT)


def test_split_gap_timer_waits_until_due_then_is_ready() -> None:
    # due 0.2 s after suspending, resumed 0.5 s after: 0.2 waiting, 0.3 held up (scheduling)
    assert split_gap(TIMER, 10.0, 10.5, 10.2) == pytest.approx((0.0, 0.2, 0.3), abs=EXACT)


def test_split_gap_timer_woken_before_due_is_all_waiting() -> None:
    # cancelled (or woken) early: it never became due, so it never waited for the loop
    assert split_gap(TIMER, 10.0, 10.1, 10.5) == pytest.approx((0.0, 0.1, 0.0), abs=EXACT)


def test_split_gap_timer_due_in_the_past_is_all_scheduling() -> None:
    assert split_gap(TIMER, 10.0, 10.3, 9.0) == pytest.approx((0.0, 0.0, 0.3), abs=EXACT)


@pytest.mark.parametrize("kind", [IO, WAITING, LOCK, READY, TIMER])
@pytest.mark.parametrize("resumed", [10.0, 9.9])
def test_split_gap_no_gap_is_nothing(kind: int, resumed: float) -> None:
    assert split_gap(kind, 10.0, resumed, 10.5) == (0.0, 0.0, 0.0)


# -- step sequences -------------------------------------------------------------------------

def test_a_task_life_splits_exactly() -> None:
    ledger = TaskLedger("asyncio-task")
    record = ledger.create(1, "app.fetch", "/app/app.py", 3, 100.0)
    assert ledger.live == {1: record}

    ledger.step_started(record, 100.25)  # ready from creation until its first step
    ledger.step_ended(record, 100.25, 100.5, TIMER, 100.75)  # asyncio.sleep(0.25)
    ledger.step_started(record, 101.0)  # due at 100.75, ran at 101.0: 0.25 held up
    ledger.step_ended(record, 101.0, 101.125, IO, 0.0)  # a socket read
    ledger.step_started(record, 101.625)
    ledger.step_ended(record, 101.625, 101.75, LOCK, 0.0)  # a held asyncio.Lock
    ledger.step_started(record, 102.0)
    ledger.step_ended(record, 102.0, 102.0625, WAITING, 0.0)  # a queue
    ledger.step_started(record, 102.5)
    ledger.step_ended(record, 102.5, 102.5625, READY, 0.0)  # asyncio.sleep(0)
    ledger.step_started(record, 102.6875)
    ledger.step_ended(record, 102.6875, 103.0, READY, 0.0)  # the last step: it returned
    finished = ledger.finish(1, 103.0, "fetcher-1")

    assert finished is record
    assert ledger.live == {}
    assert record.steps == 6
    assert record.running_s == pytest.approx(0.25 + 0.125 + 0.125 + 0.0625 + 0.0625 + 0.3125, abs=EXACT)
    assert record.longest_step_s == pytest.approx(0.3125, abs=EXACT)
    assert record.io_s == pytest.approx(0.5, abs=EXACT)
    assert record.waiting_s == pytest.approx(0.25 + 0.25 + 0.4375, abs=EXACT)
    assert record.lock_s == pytest.approx(0.25, abs=EXACT)
    assert record.scheduling_s == pytest.approx(0.25 + 0.25 + 0.125, abs=EXACT)
    assert record.first_run == 100.25
    assert record.ended == 103.0
    assert record.wall_s == pytest.approx(3.0, abs=EXACT)
    assert parts(record) == pytest.approx(record.wall_s, abs=EXACT)
    assert record.name == "fetcher-1"
    assert record.named


def test_a_step_start_without_a_suspension_adds_nothing() -> None:
    """A second step_started with no step_ended between them (a wake-up that found the task
    already running) must not count the same gap twice."""
    ledger = TaskLedger("asyncio-task")
    record = ledger.create(1, "t", "", 0, 0.0)
    ledger.step_started(record, 0.5)
    ledger.step_ended(record, 0.5, 1.0, IO, 0.0)
    ledger.step_started(record, 2.0)
    ledger.step_started(record, 2.5)
    assert (record.io_s, record.waiting_s, record.scheduling_s) == pytest.approx((1.0, 0.0, 0.5), abs=EXACT)


def test_wait_sites_count_suspensions_and_episodes() -> None:
    """Await sites: each suspension adds to its site; a new awaited object starts an episode."""
    ledger = TaskLedger("asyncio-task")
    record = ledger.create(1, "t", "", 0, 0.0)
    site = ((test_wait_sites_count_suspensions_and_episodes.__code__, 7),)
    ledger.step_started(record, 0.0)
    t = 0.0
    for callee, (kind, gap) in zip((11, 11, 22), ((IO, 0.25), (IO, 0.5), (WAITING, 0.125)), strict=True):
        ledger.step_ended(record, t, t, kind, 0.0, (site, callee))
        t += gap
        ledger.step_started(record, t)
    suspensions, io, waiting, episodes, longest, current, last, lock = record.waits[site]
    assert (suspensions, episodes, last, lock) == (3, 2, 22, 0.0)
    assert (io, waiting) == pytest.approx((0.75, 0.125), abs=EXACT)
    assert longest == pytest.approx(0.75, abs=EXACT)  # callee 11 was awaited for 0.25 + 0.5
    assert current == pytest.approx(0.125, abs=EXACT)
    assert record.wait_site is None


# -- finishing and folding ------------------------------------------------------------------

def run_unit(ledger: TaskLedger, key: int, target: str, name: str, created: float = 0.0, io: float = 0.25,
             step: float = 0.125, line: int = 1) -> UnitRecord:
    """One unit's life: ready 0.0625 s, a step, an I/O wait of `io`, a last step of `step`."""
    record = ledger.create(key, target, "/app/app.py", line, created)
    t = created + 0.0625
    ledger.step_started(record, t)
    ledger.step_ended(record, t, t + step, IO, 0.0)
    t += step + io
    ledger.step_started(record, t)
    ledger.step_ended(record, t, t + step, READY, 0.0)
    finished = ledger.finish(key, t + step, name)
    assert finished is record
    return record


@pytest.mark.parametrize("name", ["", "Task-1", "Task-123456", "Greenlet-7"])
def test_default_names_are_anonymous(name: str) -> None:
    record = run_unit(TaskLedger("asyncio-task"), 1, "app.work", name)
    assert not record.named
    assert record.key == ("anonymous", "app.work", "/app/app.py", 1)


@pytest.mark.parametrize("name", ["fetcher", "Task-1-retry", "task-1", "Task-", "Greenlet-x", "worker-1"])
def test_explicit_names_are_named(name: str) -> None:
    record = run_unit(TaskLedger("asyncio-task"), 1, "app.work", name)
    assert record.named
    assert record.name == name


def test_anonymous_units_fold_by_target_with_sums() -> None:
    ledger = TaskLedger("asyncio-task")
    for key in range(200):
        run_unit(ledger, key, "app.work", f"Task-{key + 10}", created=float(key), io=0.25)
    for key in range(200, 203):
        run_unit(ledger, key, "app.other", f"Task-{key + 10}", created=0.5, io=0.5, line=9)
    assert ledger.live == {}
    assert len(ledger.finished) == 2
    work = ledger.finished[("anonymous", "app.work", "/app/app.py", 1)]
    other = ledger.finished[("anonymous", "app.other", "/app/app.py", 9)]
    assert work.count == 200
    assert other.count == 3
    assert work.steps == 400
    assert work.io_s == pytest.approx(200 * 0.25, abs=1e-6)
    assert work.scheduling_s == pytest.approx(200 * 0.0625, abs=1e-6)
    assert work.running_s == pytest.approx(200 * 0.25, abs=1e-6)
    assert work.wall_s == pytest.approx(200 * 0.5625, abs=1e-6)
    assert parts(work) == pytest.approx(work.wall_s, abs=1e-6)
    assert work.created == 0.0
    assert work.ended == pytest.approx(199.5625, abs=EXACT)
    assert other.io_s == pytest.approx(1.5, abs=EXACT)


def test_same_target_on_another_line_is_another_fold() -> None:
    ledger = TaskLedger("asyncio-task")
    run_unit(ledger, 1, "app.work", "", line=1)
    run_unit(ledger, 2, "app.work", "", line=20)
    assert sorted(record.count for record in ledger.finished.values()) == [1, 1]


def test_named_units_are_kept_one_by_one() -> None:
    ledger = TaskLedger("asyncio-task")
    for key in range(3):
        run_unit(ledger, key, "app.work", "fetcher")  # the same explicit name, three units
    run_unit(ledger, 3, "app.work", "poller")
    run_unit(ledger, 4, "app.work", "Task-99")
    entries = sorted((record.name, record.count) for record in ledger.finished.values())
    assert entries == [("Task-99", 1), ("fetcher", 1), ("fetcher", 1), ("fetcher", 1), ("poller", 1)]


def test_named_units_past_the_cap_fold_by_name_and_never_into_another_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_ledger, "NAMED_UNITS_KEPT", 4)
    ledger = TaskLedger("asyncio-task")
    key = 0
    for _ in range(4):
        key += 1
        run_unit(ledger, key, "app.work", "early")
    assert len(ledger.finished) == 4
    for n in range(6):  # past the cap: each name folds with its own kind only
        for _ in range(n + 1):
            key += 1
            run_unit(ledger, key, "app.work", f"late-{n % 3}")
    key += 1
    run_unit(ledger, key, "app.other", "late-0")  # same name, another target: apart
    late = {(record.name, record.target): record.count for record in ledger.finished.values()
            if record.name.startswith("late")}
    assert late == {("late-0", "app.work"): 1 + 4, ("late-1", "app.work"): 2 + 5, ("late-2", "app.work"): 3 + 6,
                    ("late-0", "app.other"): 1}
    assert all(record.named for record in ledger.finished.values())
    folded = ledger.finished[("named", "late-1", "app.work")]
    assert folded.wall_s == pytest.approx(7 * 0.5625, abs=1e-9)


def test_named_cap_is_applied_at_the_default() -> None:
    ledger = TaskLedger("asyncio-task")
    for key in range(NAMED_UNITS_KEPT + 50):
        run_unit(ledger, key, "app.work", "handler")
    counts = sorted(record.count for record in ledger.finished.values())
    assert len(counts) == NAMED_UNITS_KEPT + 1
    assert counts[-1] == 50
    assert sum(counts) == NAMED_UNITS_KEPT + 50


def test_finish_of_an_unknown_key_is_none() -> None:
    ledger = TaskLedger("asyncio-task")
    assert ledger.finish(42, 1.0, "x") is None
    record = run_unit(ledger, 1, "app.work", "x")
    assert ledger.finish(1, 9.0, "x") is None  # finished twice: the second is ignored
    assert record.ended == pytest.approx(0.5625, abs=EXACT)


def test_fold_merges_cpu_extremes_and_samples() -> None:
    into = UnitRecord(1, "asyncio-task", "t", "", 0, 5.0)
    into.cpu_s, into.longest_step_s, into.ended = None, 0.25, 6.0
    into.samples = {(): [0.25, 0.5, 0.0, 0.0]}
    other = UnitRecord(2, "asyncio-task", "t", "", 0, 4.0)
    other.cpu_s, other.longest_step_s, other.ended, other.count = 0.125, 0.5, 7.0, 3
    other.samples = {(): [0.25, 0.25, 0.125, 0.0]}
    fold(into, other)
    assert into.count == 4
    assert into.cpu_s == 0.125
    assert into.longest_step_s == 0.5
    assert (into.created, into.ended) == (4.0, 7.0)
    assert into.samples[()][:3] == [0.5, 0.75, 0.125]


# -- closing the units still alive at the end of the run -----------------------------------

def test_close_live_accounts_the_last_gap_and_names() -> None:
    ledger = TaskLedger("asyncio-task")
    sleeping = ledger.create(10, "app.poll", "/app/app.py", 1, 0.0)
    ledger.step_started(sleeping, 0.0)
    ledger.step_ended(sleeping, 0.0, 0.25, TIMER, 10.25)  # asyncio.sleep(10), cut short by the end
    reading = ledger.create(11, "app.read", "/app/app.py", 2, 0.5)
    ledger.step_started(reading, 0.5)
    ledger.step_ended(reading, 0.5, 0.625, IO, 0.0)
    ledger.refs[10] = lambda: None  # type: ignore[assignment]

    ledger.close_live(2.0, {10: "poller", 11: "Task-3"})

    assert ledger.live == {}
    assert ledger.refs == {}
    assert sleeping.name == "poller" and sleeping.named
    assert sleeping.waiting_s == pytest.approx(1.75, abs=EXACT)
    assert sleeping.scheduling_s == 0.0
    assert reading.io_s == pytest.approx(1.375, abs=EXACT)
    assert not reading.named
    for record, wall in ((sleeping, 2.0), (reading, 1.5)):
        assert record.wall_s == pytest.approx(wall, abs=EXACT)
        assert parts(record) == pytest.approx(wall, abs=EXACT)
        assert record.susp_at is None
    assert len(list(ledger.all_records())) == 2


def test_close_live_a_unit_without_a_known_name_is_anonymous() -> None:
    ledger = TaskLedger("asyncio-task")
    record = ledger.create(7, "app.work", "/app/app.py", 1, 0.0)
    ledger.step_started(record, 0.0)
    ledger.step_ended(record, 0.0, 0.5, READY, 0.0)
    ledger.close_live(1.0, {})
    assert not record.named
    assert record.key == ("anonymous", "app.work", "/app/app.py", 1)
    assert record.scheduling_s == pytest.approx(0.5, abs=EXACT)


def test_close_live_a_unit_that_never_ran_was_ready_all_along() -> None:
    ledger = TaskLedger("asyncio-task")
    never_ran = ledger.create(12, "app.late", "/app/app.py", 3, 1.75)
    ledger.close_live(2.0, {12: "late"})
    assert never_ran.wall_s == pytest.approx(0.25, abs=EXACT)
    assert never_ran.scheduling_s == pytest.approx(0.25, abs=EXACT)
    assert parts(never_ran) == pytest.approx(never_ran.wall_s, abs=EXACT)


# -- a unit whose object is garbage-collected before it finished ---------------------------------

class _Unit:
    """Stands in for a task object: weak-referenceable, collected as soon as it is dropped."""


def collected_while_suspended() -> tuple[TaskLedger, UnitRecord]:
    ledger = TaskLedger("asyncio-task")
    unit = _Unit()
    record = ledger.create(id(unit), "app.stuck", "/app/app.py", 1, 0.0)
    ledger.watch(id(unit), unit, lambda: 2.0)
    ledger.step_started(record, 0.25)
    ledger.step_ended(record, 0.25, 0.5, WAITING, 0.0)  # awaits a future nobody will set
    del unit  # collected here, at t=2.0 by the ledger's clock
    return ledger, record


def test_a_unit_collected_while_suspended_ends_when_collected() -> None:
    ledger, record = collected_while_suspended()
    assert ledger.live == {}
    assert ledger.refs == {}
    assert record.ended == 2.0
    assert record.wall_s == pytest.approx(2.0, abs=EXACT)
    assert list(ledger.all_records()) == [record]


def test_a_unit_collected_while_suspended_accounts_its_last_wait() -> None:
    _, record = collected_while_suspended()
    assert record.waiting_s == pytest.approx(1.5, abs=EXACT)
    assert parts(record) == pytest.approx(record.wall_s, abs=EXACT)
