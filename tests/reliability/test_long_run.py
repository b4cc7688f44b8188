"""A long run compressed: a server's hour of requests, each handled by a task with its own
name (``req-<n>``) or by an anonymous one, as 200,000 tasks in batches; or by a thread of
its own. advisor's memory must stay bounded: finished units fold, and past the caps a new
name folds under its pattern (``req-*``) instead of adding an entry per request."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.probes import task_ledger
from advisor.probes.task_ledger import MAX_FINISHED_ENTRIES, TaskLedger
from advisor.probes.threads import THREADS_KEPT

TOTAL = 200_000
BATCH = 1_000

SERVER = """
    import asyncio
    import os
    import sys


    def rss_kb():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


    async def handle(number):
        await asyncio.sleep(0)
        return 1


    async def serve(total, batch):
        done, marks = 0, []
        while done < total:
            tasks = [asyncio.create_task(handle(n), name=f"req-{done + n}") for n in range(batch // 2)]
            tasks += [asyncio.create_task(handle(n)) for n in range(batch // 2)]
            done += sum(await asyncio.gather(*tasks))
            marks.append(rss_kb())
        return done, marks


    done, marks = asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
    # resident memory once a quarter of the requests were served, and at the end
    print(done, marks[len(marks) // 4], marks[-1])
"""


def test_an_hour_of_named_requests_keeps_memory_and_report_bounded(
        tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    program(tmp_path / "server.py", SERVER)
    done = run_advisor(["run", "--mode", "light", "--json", "report.json", "server.py", str(TOTAL), str(BATCH)])
    assert done.returncode == 0, done.stderr[-3000:]
    served, quarter_kb, end_kb = (int(word) for word in done.stdout.split())
    assert served == TOTAL
    # the last three quarters (150,000 more tasks, half of them with new names) added no
    # memory per task: a few MiB of allocator slack at most, against ~1 KiB a kept entry
    assert end_kb - quarter_kb < 8 * 1024, (quarter_kb, end_kb)
    path = tmp_path / "report.json"
    assert path.stat().st_size < 16 * 1024 * 1024
    tasks = [task for task in json.loads(path.read_text(encoding="utf-8"))["tasks"] if task["kind"] == "asyncio-task"]
    assert len(tasks) <= MAX_FINISHED_ENTRIES + 2
    assert sum(task["count"] for task in tasks) == TOTAL + 1  # and asyncio.run's main task
    counts = {task["name"]: task["count"] for task in tasks if task["count"] > 1}
    assert counts["__main__.handle"] == TOTAL // 2  # the anonymous ones: one fold
    assert counts["req-*"] > TOTAL // 2 - MAX_FINISHED_ENTRIES  # the names past the cap: their pattern
    assert sum(1 for task in tasks if task["name"].startswith("req-") and task["count"] == 1) >= 5_000


def finish_named(ledger: TaskLedger, key: int, name: str, target: str = "app.handle") -> None:
    record = ledger.create(key, target, "app.py", 1, 0.0)
    ledger.step_started(record, 0.1)
    ledger.step_ended(record, 0.1, 0.2, 0, 0.0)
    ledger.finish(key, 0.2, name)


def test_past_the_caps_names_fold_by_pattern_then_by_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_ledger, "NAMED_UNITS_KEPT", 2)
    monkeypatch.setattr(task_ledger, "MAX_FINISHED_ENTRIES", 4)
    monkeypatch.setattr(task_ledger, "PATTERNS_KEPT", 2)
    ledger = TaskLedger("asyncio-task")
    names = ["req-1", "req-2", "req-3", "req-4",  # two kept one by one, two folded by their own name
             "req-5", "req-6",  # the table is full: their pattern
             "job-7f3a-9",  # a second pattern fills the patterns
             "worker", "other-8", "plain", "req-9"]  # new names and patterns: `*`; a known pattern folds there
    for key, name in enumerate(names):
        finish_named(ledger, key, name)
    entries = sorted((record.name, record.count) for record in ledger.finished.values())
    assert entries == [("*", 3), ("job-*-*", 1), ("req-*", 3), ("req-1", 1), ("req-2", 1), ("req-3", 1),
                       ("req-4", 1)]
    assert sum(count for _, count in entries) == len(names)
    assert len(ledger.finished) <= 4 + 2 + 1  # the caps, and one `*` entry per target
    assert all(record.named for record in ledger.finished.values())


THREAD_PER_REQUEST = """
    import sys
    import threading


    def handle(number):
        return sum(range(number % 100))


    for number in range(int(sys.argv[1])):
        name = f"conn-{number}" if number % 2 else None  # half named per request, half Thread-N
        thread = threading.Thread(target=handle, args=(number,), name=name)
        thread.start()
        thread.join()
    print("served", number + 1)
"""


def test_a_thread_per_request_keeps_the_thread_table_bounded(
        tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    requests = 3 * THREADS_KEPT
    program(tmp_path / "threaded.py", THREAD_PER_REQUEST)
    done = run_advisor(["run", "--mode", "light", "--json", "report.json", "threaded.py", str(requests)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == f"served {requests}\n"
    threads = [task for task in json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["tasks"]
               if task["kind"] == "thread"]
    # the first THREADS_KEPT one by one (it used to be every thread: an entry per request)
    assert len(threads) == THREADS_KEPT + 3
    assert sum(task["count"] for task in threads) == requests + 1  # and MainThread
    folds = {task["name"]: task["count"] for task in threads if task["count"] > 1}
    assert folds == {"__main__.handle": THREADS_KEPT, "conn-*": THREADS_KEPT}
    assert sum(1 for task in threads if task["name"].startswith("conn-") and task["count"] == 1) == THREADS_KEPT // 2
