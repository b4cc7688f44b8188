"""lock-contention (ADV104) on hand-built reports: fires where threads or tasks queue for a
lock held across I/O; silent on small waits, on `with` of new objects, on CPU-only holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from advisor.engine import analyze
from advisor.profile import AwaitSite, BlockingSite, Breakdown, CodePlace, Finding, Report, Task
from advisor.rules.concurrency.lock_contention import acquired_lock, looks_like_lock

THREADS = """\
import threading
from concurrent.futures import ThreadPoolExecutor

cache = {}
cache_lock = threading.Lock()
slots = threading.Semaphore(2)


def lookup(pair):
    with cache_lock:
        if pair not in cache:
            cache[pair] = fetch(pair)
        return cache[pair]


def explicit(pair):
    cache_lock.acquire()
    try:
        return fetch(pair)
    finally:
        cache_lock.release()


def limited(pair):
    with slots:
        return fetch(pair)


def main(pairs):
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lookup, pairs))
"""
WITH_LINE, ACQUIRE_LINE, SEMAPHORE_LINE, POOL_LINE = 10, 17, 25, 30

TASKS = """\
import asyncio


async def worker(lock, items, out):
    for item in items:
        async with lock:
            out.append(await fetch(item))


async def helper(sem):
    await sem.acquire()
    sem.release()


async def other(event):
    await event.wait()
"""
ASYNC_WITH_LINE, SEM_ACQUIRE_LINE, EVENT_LINE = 6, 11, 15


def findings(report: Report) -> list[Finding]:
    return list(analyze(report, select=["lock-contention"]).findings)


def waiting_stack(unit: str, file: str, line: int, off: float, function: str = "app.lookup",
                  state: str = "waiting") -> tuple[str, list[tuple[str, str, int]], float, float, str]:
    return unit, [(function, file, line), ("app.main", file, 40)], 0.001, off, state


@pytest.fixture
def threads(build_task: Callable[..., Any], build_report: Callable[..., Report],
            write_source: Callable[[str, str], str]) -> Callable[..., Report]:
    """Four worker threads of a 0.8 s run; thread i waited waits[i] at `line` (sampled)."""

    def build(waits: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6), line: int = WITH_LINE, compute: float = 0.005,
              sites: bool = False, call: str = "cache_lock.acquire", wall: float = 0.8,
              cpu_bound: bool = False) -> Report:
        file = write_source("app.py", THREADS)
        tasks = []
        stacks = []
        for index, wait in enumerate(waits):
            if cpu_bound:
                compute = wall - wait
            unit = f"thread:{index + 2}"
            blocking = [BlockingSite(kind="waiting", call=call, function="app.lookup", file=file, line=line,
                                     seconds=wait)] if sites and wait else []
            tasks.append(Task(id=unit, name=f"worker-{index}", target="app.lookup", kind="thread", wall_s=wall,
                              cpu_s=compute, breakdown=Breakdown(compute_s=compute, io_s=wall - compute - wait,
                                                                 waiting_s=wait),
                              blocking=blocking))
            io = wall - compute - wait
            stacks.append((unit, [("socket.recv_into", "/usr/lib/python3.11/socket.py", 706),
                                  ("app.fetch", file, 40), ("app.lookup", file, 12)], compute, io, "io"))
            if wait and not sites:
                stacks.append(waiting_stack(unit, file, line, wait))
        return build_report(tasks, wall=wall, stacks=stacks)

    return build


def test_fires_at_the_with_line_from_sampled_stacks(threads: Callable[..., Report]) -> None:
    [finding] = findings(threads())
    assert finding.code == "ADV104"
    assert (finding.location.file, finding.location.line, finding.location.function) == \
        ("app.py", WITH_LINE, "app.lookup")
    assert finding.evidence["lock"] == "cache_lock"
    assert finding.evidence["lock_wait_s"] == pytest.approx(1.2, rel=0.02)
    # the last of four threads waited 0.6 s; the holders spent ~all their busy time in I/O
    assert finding.estimated_savings_s == pytest.approx(0.6, rel=0.03)
    assert finding.severity == "high"
    assert finding.fix is not None and "`cache_lock`" in finding.fix and "outside" in finding.fix


def test_fires_on_an_explicit_acquire_blocking_site(threads: Callable[..., Report]) -> None:
    [finding] = findings(threads(line=ACQUIRE_LINE, sites=True))
    assert finding.location.line == ACQUIRE_LINE
    assert finding.evidence["lock"] == "cache_lock"


def test_fires_on_a_python_level_semaphore_under_with(threads: Callable[..., Report]) -> None:
    [finding] = findings(threads(line=SEMAPHORE_LINE, sites=True, call="threading.Condition.wait"))
    assert finding.location.line == SEMAPHORE_LINE
    assert finding.fix is not None and "Semaphore" not in finding.message


def test_silent_on_a_with_of_a_new_object(threads: Callable[..., Report]) -> None:
    # the main thread waiting in ThreadPoolExecutor.__exit__ is not a lock
    assert findings(threads(line=POOL_LINE)) == []
    assert findings(threads(line=POOL_LINE, sites=True, call="threading.Thread._wait_for_tstate_lock")) == []


def test_silent_on_small_waits(threads: Callable[..., Report]) -> None:
    assert findings(threads(waits=(0.0, 0.01, 0.02, 0.03))) == []


def test_a_cpu_bound_critical_section_saves_little(threads: Callable[..., Report]) -> None:
    # the holders computed: the GIL serializes that work with or without the lock
    [finding] = findings(threads(cpu_bound=True))
    assert finding.estimated_savings_s < 0.05
    assert finding.severity in ("low", "info")


def test_acquired_lock_reads_the_line(write_source: Callable[[str, str], str]) -> None:
    file = write_source("app.py", THREADS)
    assert acquired_lock(file, WITH_LINE) == ("cache_lock", False)
    assert acquired_lock(file, ACQUIRE_LINE) == ("cache_lock", False)
    assert acquired_lock(file, SEMAPHORE_LINE) == ("slots", False)
    assert acquired_lock(file, POOL_LINE) is None
    assert acquired_lock(file, WITH_LINE + 2) is None  # a line inside the block
    tasks = write_source("tasks.py", TASKS)
    assert acquired_lock(tasks, ASYNC_WITH_LINE) == ("lock", True)
    assert acquired_lock(tasks, SEM_ACQUIRE_LINE) == ("sem", False)
    assert acquired_lock(tasks, EVENT_LINE) is None


@pytest.fixture
def tasks(build_task: Callable[..., Any], build_report: Callable[..., Report],
          write_source: Callable[[str, str], str]) -> Callable[..., Report]:
    """Four folded worker tasks that waited `lock` seconds in all, at `line`."""

    def build(lock: float = 4.0, line: int = ASYNC_WITH_LINE, io: float = 0.0, wall: float = 1.5,
              lock_s: float | None = None) -> Report:
        file = write_source("app.py", TASKS)
        chain = [CodePlace(function="app.worker", file=file, line=line)]
        extra = {"lock_s": lock_s} if lock_s is not None else {}
        sites = [
            AwaitSite(function="app.worker", file=file, line=line, chain=chain, suspensions=30, calls=30, io_s=io,
                      waiting_s=lock, longest_s=0.2, **extra),
            AwaitSite(function="app.worker", file=file, line=line + 1,
                      chain=[CodePlace(function="app.worker", file=file, line=line + 1)], suspensions=30, calls=30,
                      io_s=1.5, waiting_s=0.0, longest_s=0.05),
        ]
        worker = build_task("worker", id="asyncio:5", wall=4 * wall, compute=0.02, io=1.5, waiting=4 * wall - 1.52,
                            count=4, lock_wait_s=lock, awaits=sites, target="app.worker")
        return build_report([worker], wall=wall)

    return build


def test_fires_on_an_async_with_site_of_a_task_that_waited_for_locks(tasks: Callable[..., Report]) -> None:
    [finding] = findings(tasks())
    assert (finding.location.line, finding.location.function) == (ASYNC_WITH_LINE, "app.worker")
    assert finding.evidence["lock"] == "lock"
    # four folded units, 4.0 s in all: about 1.0 s each, nearly all of the holders' time is I/O
    assert finding.estimated_savings_s == pytest.approx(1.0 * (1 - 0.02 / (6.0 - 4.0)), rel=1e-3)
    assert finding.fix is not None and "don't await I/O while holding `lock`" in finding.fix
    assert finding.evidence["units"] == ["worker() x4"]


def test_silent_when_the_waiting_site_is_not_an_acquire(tasks: Callable[..., Report]) -> None:
    assert findings(tasks(line=EVENT_LINE)) == []


def test_silent_when_the_task_waited_for_no_lock(tasks: Callable[..., Report]) -> None:
    assert findings(tasks(lock=0.0)) == []


def test_a_measured_per_site_lock_time_is_used(tasks: Callable[..., Report]) -> None:
    [finding] = findings(tasks(lock=4.0, lock_s=2.0))
    assert finding.evidence["lock_wait_s"] == pytest.approx(2.0)


SQLITE = """\
import sqlite3


def save(conn, rows):
    for row in rows:
        with conn:
            conn.execute("insert into t values (?)", row)


def guarded(registry, key):
    with registry.locks[key]:
        return registry.load(key)


def bound(table):
    with table:
        return len(table)


table = make_table()
registry_lock = threading.RLock()
"""


def test_a_with_on_a_non_lock_is_not_taken_for_one(build_task: Callable[..., Any],
                                                   build_report: Callable[..., Report],
                                                   write_source: Callable[[str, str], str]) -> None:
    # sqlite3's `with conn:` commits in its C-level exit, sampled on the `with` line
    file = write_source("app.py", SQLITE)
    tasks, stacks = [], []
    for index in range(2):
        unit = f"thread:{index + 2}"
        tasks.append(build_task(f"writer-{index}", kind="thread", id=unit, wall=1.0, compute=0.1, waiting=0.9))
        stacks.append(waiting_stack(unit, file, 6, 0.9, function="app.save"))
    assert findings(build_report(tasks, wall=1.0, stacks=stacks)) == []


def test_looks_like_lock_by_name_or_binding(write_source: Callable[[str, str], str]) -> None:
    file = write_source("app.py", SQLITE + "other = threading.Lock()\nslots = asyncio.Semaphore(3)\n")
    assert looks_like_lock(file, "registry.locks[key]")
    assert looks_like_lock(file, "registry_lock")
    assert looks_like_lock(file, "other")
    assert looks_like_lock(file, "slots")
    assert not looks_like_lock(file, "conn")
    assert not looks_like_lock(file, "table")
