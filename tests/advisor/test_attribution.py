"""task_entry / thread_entry / unit_entries on hand-built UnitRecords.

The records are built the way the probes build them (the ledger for gaps, add_weights for
samples), with made-up times, so the breakdown each entry must show is known exactly:
the four parts add up to the wall time, the time a task's steps spent off the CPU in a
blocking call is its blocking time (never more than the steps lasted), and a thread's
time off the CPU is split in the proportions its samples show.
"""

from __future__ import annotations

import socket
import time

import pytest

from advisor.attribution import task_entry, thread_entry, unit_entries
from advisor.probes.records import UnitRecord, add_weights
from advisor.probes.task_ledger import IO, READY, TIMER, TaskLedger
from advisor.profile import Task

EXACT = 2e-6  # entries are rounded to the microsecond


# Lines the stacks below point at: a sleep, a socket read, plain arithmetic (no call).
def blocks_in_sleep() -> None:
    time.sleep(0.2)


def blocks_in_recv(sock: socket.socket) -> bytes:
    return sock.recv(1024)


def computes(values: list[int]) -> int:
    total = 0
    for value in values:
        total += value * value
    return total


SLEEP = ((blocks_in_sleep.__code__, blocks_in_sleep.__code__.co_firstlineno + 1),)
RECV = ((blocks_in_recv.__code__, blocks_in_recv.__code__.co_firstlineno + 1),)
PLAIN = ((computes.__code__, computes.__code__.co_firstlineno + 3),)


def parts(entry: Task) -> float:
    return entry.breakdown.total()


def task_record(steps: list[tuple[float, float, int, float]], created: float = 0.0, name: str = "worker",
                end_gap: float = 0.0) -> UnitRecord:
    """A finished task: steps (start, end, what it then waited for, due) through the ledger."""
    ledger = TaskLedger("asyncio-task")
    record = ledger.create(1, "app.worker", "/app/app.py", 1, created)
    for t0, t1, kind, due in steps:
        ledger.step_started(record, t0)
        ledger.step_ended(record, t0, t1, kind, due)
    ledger.finish(1, steps[-1][1] + end_gap, name)
    return record


def thread_record(wall: float, cpu: float | None, name: str = "downloader") -> UnitRecord:
    record = UnitRecord(1, "thread", "app.download", "/app/app.py", 1, 0.0)
    record.first_run = 0.0
    record.ended = record.wall_s = wall
    record.cpu_s = cpu
    record.name, record.named = name, True
    return record


def _samples(record: UnitRecord) -> dict:
    record.samples = {}
    return record.samples


# -- asyncio tasks --------------------------------------------------------------------------

def test_a_task_that_blocks_its_loop_in_time_sleep() -> None:
    # ready 0.1; step 0.1-0.5 (0.1 s CPU, then time.sleep 0.3 s); sleep(0.2) due 0.7, ran 0.8;
    # last step 0.8-0.9 on the CPU
    record = task_record([(0.1, 0.5, TIMER, 0.7), (0.8, 0.9, READY, 0.0)])
    samples = _samples(record)
    add_weights(samples, PLAIN, 0.2, 0.0, 0.0)
    add_weights(samples, SLEEP, 0.0, 0.3, 0.0)
    entry, _ = task_entry(record)
    assert entry.kind == "asyncio-task"
    assert entry.name == "worker"
    assert entry.wall_s == pytest.approx(0.9, abs=EXACT)
    assert entry.breakdown.compute_s == pytest.approx(0.2, abs=EXACT)
    assert entry.breakdown.io_s == pytest.approx(0.0, abs=EXACT)
    assert entry.breakdown.waiting_s == pytest.approx(0.2 + 0.3, abs=EXACT)
    assert entry.breakdown.scheduling_s == pytest.approx(0.1 + 0.1, abs=EXACT)
    assert entry.blocking_s == pytest.approx(0.3, abs=EXACT)
    assert entry.cpu_s == entry.breakdown.compute_s
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)
    assert [(site.kind, site.call, site.line) for site in entry.blocking] == [("waiting", "time.sleep", SLEEP[0][1])]


def test_a_task_that_blocks_its_loop_in_a_socket_read() -> None:
    record = task_record([(0.0, 0.25, IO, 0.0), (0.5, 0.625, READY, 0.0)])
    _samples(record)
    add_weights(record.samples, RECV, 0.0125, 0.1875, 0.0)
    entry, _ = task_entry(record)
    assert entry.breakdown.compute_s == pytest.approx(0.375 - 0.1875, abs=EXACT)
    assert entry.breakdown.io_s == pytest.approx(0.25 + 0.1875, abs=EXACT)
    assert entry.breakdown.waiting_s == pytest.approx(0.0, abs=EXACT)
    assert entry.blocking_s == pytest.approx(0.1875, abs=EXACT)
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)
    assert entry.blocking[0].kind == "io" and entry.blocking[0].call == "sock.recv"


def test_blocking_is_capped_by_the_time_the_steps_ran() -> None:
    """Samples can overstate a step's off-CPU time (a lead-in estimate): what the steps did
    not last cannot have been spent blocking, and the parts still add up."""
    record = task_record([(0.0, 0.1, TIMER, 0.6), (0.6, 0.7, READY, 0.0)])
    _samples(record)
    add_weights(record.samples, SLEEP, 0.0, 0.3, 0.0)
    add_weights(record.samples, RECV, 0.0, 0.1, 0.0)
    entry, _ = task_entry(record)
    assert record.running_s == pytest.approx(0.2)
    assert entry.blocking_s == pytest.approx(0.2, abs=EXACT)
    assert entry.breakdown.compute_s == pytest.approx(0.0, abs=EXACT)
    # scaled down in proportion: 3/4 of it a sleep, 1/4 a socket read
    assert entry.breakdown.waiting_s == pytest.approx(0.5 + 0.15, abs=EXACT)
    assert entry.breakdown.io_s == pytest.approx(0.05, abs=EXACT)
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)
    assert sum(site.seconds for site in entry.blocking) == pytest.approx(0.2, abs=EXACT)


def test_off_cpu_while_other_threads_ran_is_scheduling_not_blocking() -> None:
    """Off the CPU in plain Python code while other threads had it: waiting for the GIL."""
    record = task_record([(0.0, 0.5, READY, 0.0)])
    _samples(record)
    add_weights(record.samples, PLAIN, 0.2, 0.3, 0.3)
    entry, _ = task_entry(record)
    assert entry.breakdown.compute_s == pytest.approx(0.2, abs=EXACT)
    assert entry.breakdown.scheduling_s == pytest.approx(0.3, abs=EXACT)
    assert entry.breakdown.waiting_s == pytest.approx(0.0, abs=EXACT)
    assert entry.blocking_s == pytest.approx(0.0, abs=EXACT)
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)


def test_time_held_off_the_cpu_by_the_run_queue_or_the_sampler_is_scheduling() -> None:
    record = task_record([(0.0, 0.5, READY, 0.0)])
    _samples(record)
    add_weights(record.samples, PLAIN, 0.25, 0.0, 0.0, 0.25)
    entry, _ = task_entry(record)
    assert entry.breakdown.compute_s == pytest.approx(0.25, abs=EXACT)
    assert entry.breakdown.scheduling_s == pytest.approx(0.25, abs=EXACT)
    assert entry.blocking_s == pytest.approx(0.0, abs=EXACT)
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)


def test_a_task_without_samples_computes_for_all_its_steps() -> None:
    record = task_record([(0.25, 0.5, TIMER, 1.0), (1.0, 1.125, READY, 0.0)], name="Task-5")
    entry, _ = task_entry(record)
    assert entry.name == "Task-5"
    assert entry.count == 1
    assert entry.breakdown.compute_s == pytest.approx(0.375, abs=EXACT)
    assert entry.breakdown.waiting_s == pytest.approx(0.5, abs=EXACT)
    assert entry.breakdown.scheduling_s == pytest.approx(0.25, abs=EXACT)
    assert entry.blocking_s == 0.0
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)


def test_a_fold_of_anonymous_tasks_is_named_by_its_target_with_sums() -> None:
    ledger = TaskLedger("asyncio-task")
    for key in range(3):
        record = ledger.create(key, "app.work", "/app/app.py", 4, float(key))
        ledger.step_started(record, key + 0.125)
        ledger.step_ended(record, key + 0.125, key + 0.25, IO, 0.0)
        ledger.step_started(record, key + 0.75)
        ledger.step_ended(record, key + 0.75, key + 0.875, READY, 0.0)
        ledger.finish(key, key + 0.875, f"Task-{key + 2}")
    (folded,) = ledger.all_records()
    entry, _ = task_entry(folded)
    assert (entry.name, entry.target, entry.count) == ("app.work", "app.work", 3)
    assert entry.wall_s == pytest.approx(3 * 0.875, abs=EXACT)
    assert entry.breakdown.io_s == pytest.approx(1.5, abs=EXACT)
    assert entry.breakdown.compute_s == pytest.approx(0.75, abs=EXACT)
    assert entry.breakdown.scheduling_s == pytest.approx(0.375, abs=EXACT)
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)


def test_a_gevent_hub_waits_for_events_and_blocks_nothing() -> None:
    record = UnitRecord(1, "greenlet", "gevent.hub.Hub", "", 0, 0.0)
    record.key = ("hub", 1)
    record.name, record.named = "Hub", True
    record.running_s = record.wall_s = 1.0
    record.samples = {}
    add_weights(record.samples, SLEEP, 0.125, 0.875, 0.0)
    entry, _ = task_entry(record)
    assert entry.kind == "greenlet"
    assert entry.blocking_s == 0.0
    assert entry.breakdown.compute_s == pytest.approx(0.125, abs=EXACT)
    assert entry.breakdown.waiting_s == pytest.approx(0.875, abs=EXACT)



def hub_and_handlers(hub_running: float, hub_idle_seen: float, handlers_compute: float,
                     thread_cpu: float) -> list[Task]:
    """A server thread's units: its CPU clock, a hub whose idle spells the sampler saw only
    in part, and a fold of request greenlets that computed without waiting."""
    thread = thread_record(10.0, thread_cpu, name="MainThread")
    thread.ident = 7
    hub = UnitRecord(2, "greenlet", "gevent.hub.Hub", "", 0, 0.0)
    hub.key, hub.ident = ("hub", 7), 7
    hub.name, hub.named = "Hub", True
    hub.running_s = hub.wall_s = hub_running
    hub.samples = {}
    add_weights(hub.samples, SLEEP, 0.0, hub_idle_seen, 0.0)
    handlers = UnitRecord(3, "greenlet", "app.handle", "/app/app.py", 1, 0.0)
    handlers.ident, handlers.count = 7, 40
    handlers.running_s = handlers.wall_s = handlers_compute
    return unit_entries([thread, hub, handlers])


def test_a_hub_computes_no_more_than_its_thread_s_cpu_leaves_it() -> None:
    # the hub ran 7 s, 2.5 s of it seen idle; the thread used 2.3 s of CPU, 2.1 s of it in
    # the request greenlets: the hub computed 0.2 s at most, and the rest of its 7 s waited
    entries = {entry.name: entry for entry in hub_and_handlers(7.0, 2.5, 2.1, 2.3)}
    hub = entries["Hub"]
    assert hub.breakdown.compute_s == pytest.approx(0.2, abs=EXACT)
    assert hub.cpu_s == pytest.approx(0.2, abs=EXACT)
    assert hub.breakdown.waiting_s == pytest.approx(6.8, abs=EXACT)
    assert parts(hub) == pytest.approx(hub.wall_s, abs=EXACT)
    assert entries["app.handle"].breakdown.compute_s == pytest.approx(2.1, abs=EXACT)
    assert entries["MainThread"].breakdown.compute_s == pytest.approx(2.3, abs=EXACT)


def test_a_hub_within_its_thread_s_cpu_keeps_its_figures() -> None:
    # 0.5 s running, 0.4 s seen idle: 0.1 s of compute, well within 2.3 - 1.0 s
    hub = next(entry for entry in hub_and_handlers(0.5, 0.4, 1.0, 2.3) if entry.name == "Hub")
    assert hub.breakdown.compute_s == pytest.approx(0.1, abs=EXACT)
    assert hub.breakdown.waiting_s == pytest.approx(0.4, abs=EXACT)


# -- threads --------------------------------------------------------------------------------

def test_a_thread_splits_its_off_cpu_time_in_the_sampled_proportions() -> None:
    record = thread_record(2.0, 0.5)
    record.samples = {}
    add_weights(record.samples, RECV, 0.1, 0.6, 0.0)  # sampled: 0.6 s in a socket read
    add_weights(record.samples, SLEEP, 0.0, 0.3, 0.0)  # 0.3 s in time.sleep
    add_weights(record.samples, PLAIN, 0.3, 0.0, 0.0)
    entry, _ = thread_entry(record)
    assert entry.kind == "thread"
    assert entry.name == "downloader"
    assert entry.breakdown.compute_s == pytest.approx(0.5, abs=EXACT)
    assert entry.cpu_s == pytest.approx(0.5, abs=EXACT)
    assert entry.breakdown.io_s == pytest.approx(1.0, abs=EXACT)
    assert entry.breakdown.waiting_s == pytest.approx(0.5, abs=EXACT)
    assert entry.breakdown.scheduling_s == pytest.approx(0.0, abs=EXACT)
    assert entry.blocking_s == 0.0
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)


def test_a_thread_waiting_for_the_gil_or_the_run_queue_is_scheduling() -> None:
    record = thread_record(1.0, 0.4)
    record.samples = {}
    add_weights(record.samples, PLAIN, 0.4, 0.3, 0.3, 0.3)
    entry, _ = thread_entry(record)
    assert entry.breakdown.compute_s == pytest.approx(0.4, abs=EXACT)
    assert entry.breakdown.scheduling_s == pytest.approx(0.6, abs=EXACT)
    assert entry.breakdown.waiting_s == pytest.approx(0.0, abs=EXACT)
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)


def test_a_thread_without_samples_waits_for_all_but_its_cpu() -> None:
    entry, _ = thread_entry(thread_record(0.5, 0.125))
    assert entry.breakdown.compute_s == pytest.approx(0.125, abs=EXACT)
    assert entry.breakdown.waiting_s == pytest.approx(0.375, abs=EXACT)
    assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)


@pytest.mark.parametrize("cpu", [None, 0.0, 0.75])
def test_a_threads_cpu_is_capped_by_its_wall(cpu: float | None) -> None:
    entry, _ = thread_entry(thread_record(0.5, cpu))
    assert entry.breakdown.compute_s == pytest.approx(min(cpu or 0.0, 0.5), abs=EXACT)
    assert parts(entry) == pytest.approx(0.5, abs=EXACT)


# -- all units ------------------------------------------------------------------------------

def test_unit_entries_take_the_probes_cost_out_of_compute_and_wall() -> None:
    task = task_record([(0.0, 0.5, READY, 0.0)])
    thread = thread_record(1.0, 0.25)
    before = {entry.kind: entry for entry in unit_entries([task_record([(0.0, 0.5, READY, 0.0)]),
                                                            thread_record(1.0, 0.25)])}
    entries = unit_entries([task, thread], corrections={id(task): 0.125, id(thread): 5.0})
    by_kind = {entry.kind: entry for entry in entries}
    assert [entry.kind for entry in entries] == ["thread", "asyncio-task"]
    corrected = by_kind["asyncio-task"]
    assert corrected.breakdown.compute_s == pytest.approx(0.375, abs=EXACT)
    assert corrected.wall_s == pytest.approx(before["asyncio-task"].wall_s - 0.125, abs=EXACT)
    assert corrected.profiler_s == pytest.approx(0.125, abs=EXACT)
    # not shown as scheduling: the program had no contention of its own
    assert corrected.breakdown.scheduling_s == pytest.approx(before["asyncio-task"].breakdown.scheduling_s,
                                                             abs=EXACT)
    assert corrected.cpu_s == pytest.approx(0.375, abs=EXACT)
    # a correction larger than the compute takes all of it and no more
    assert by_kind["thread"].breakdown.compute_s == 0.0
    assert by_kind["thread"].profiler_s == pytest.approx(0.25, abs=EXACT)
    assert by_kind["thread"].wall_s == pytest.approx(0.75, abs=EXACT)
    for entry in entries:
        assert parts(entry) == pytest.approx(entry.wall_s, abs=EXACT)


def test_unit_entries_place_units_on_the_run_timeline() -> None:
    finished = task_record([(10.5, 10.75, READY, 0.0)], created=10.25)
    running = task_record([(10.5, 11.0, READY, 0.0)], created=10.5)
    running.ended = None  # still alive when the run ended
    early = task_record([(9.5, 10.5, READY, 0.0)], created=9.0)  # created before the probes started
    entries = unit_entries([finished, running, early], span=(10.0, 12.0))
    spans = {(entry.start_s, entry.end_s) for entry in entries}
    assert spans == {(0.25, 0.75), (0.5, 2.0), (0.0, 0.5)}
    assert all(entry.start_s is None and entry.end_s is None for entry in unit_entries([finished]))
