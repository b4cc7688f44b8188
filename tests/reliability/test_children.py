"""``advisor run --children``: the processes a target forks (``os.fork``, multiprocessing's
fork start method) each write a report of their own beside ``--json PATH``, which
``advisor merge`` joins to the parent's; without the option, children write nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from advisor.profile import Report

from .conftest import assert_usage_error

WORKERS = """
    import asyncio
    import multiprocessing
    import os
    import sys
    import time


    async def child_work(n):
        async def one(i):
            await asyncio.sleep(0.01)
            return i

        tasks = [asyncio.create_task(one(i), name=f"child-task-{i}") for i in range(n)]
        return sum(await asyncio.gather(*tasks))


    def square(n):
        return n * n + asyncio.run(child_work(2))


    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[1])
        pool = context.Pool(2)
        print(sys.argv[1], pool.map(square, range(6)))
        pool.close()
        pool.join()
        child = context.Process(target=square, args=(3,), name="one-child")
        child.start()
        child.join()
        print("process exit", child.exitcode)
        pid = os.fork()
        if pid == 0:
            asyncio.run(child_work(1))
            spin_until = time.thread_time() + 0.2  # CPU the child's report must see on its main thread
            while time.thread_time() < spin_until:
                pass
            sys.exit(5)  # through advisor's runner, as a program's own fork ends
        print("fork exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""

OUTPUT = "{method} [1, 2, 5, 10, 17, 26]\nprocess exit 0\nfork exit 5\n"


def reports(work: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(work.glob("report*.json")):
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        Report.model_validate(document)
        found[path.name] = document
    return found


def named_tasks(document: dict[str, Any]) -> int:
    return sum(task["count"] for task in document["tasks"] if task["name"].startswith("child-task-"))


@pytest.mark.parametrize("mode", ["standard", "light"])
def test_forked_children_write_their_own_reports_and_merge(
        mode: str, tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    program(tmp_path / "workers.py", WORKERS)
    done = run_advisor(["run", "--mode", mode, "--children", "--json", "report.json", "workers.py", "fork"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == OUTPUT.format(method="fork")
    found = reports(tmp_path)
    parent = found.pop("report.json")
    # two pool workers, the Process and the os.fork child: one report each, named by pid
    assert len(found) == 4, sorted(found)
    assert all(name.split(".")[1].isdigit() for name in found)
    assert named_tasks(parent) == 0  # the children's tasks are theirs alone
    assert sorted(document["run"]["exit_code"] for document in found.values()) == [0, 0, 0, 5]
    # 6 squares of 2 tasks in the pool, 2 in the Process, 1 in the fork
    assert sum(named_tasks(document) for document in found.values()) == 15
    (forked,) = [document for document in found.values() if document["run"]["exit_code"] == 5]
    (forked_main,) = [task for task in forked["tasks"] if task["name"] == "MainThread"]
    # read on the child's own main thread's clock (Python 3.11 leaves the parent's id on it)
    assert 0.2 <= forked_main["breakdown"]["compute_s"] <= 0.5, forked_main
    for document in found.values():
        assert document["run"]["mode"] == mode
        assert [task["name"] for task in document["tasks"] if task["kind"] == "thread"] == ["MainThread"]
        assert all(probe["active"] for probe in document["run"]["probes"]), document["run"]["probes"]
    merged = run_advisor(["merge", "report.json", *sorted(found), "-o", "all.json"])
    assert merged.returncode == 0, merged.stderr[-3000:]
    everything = json.loads((tmp_path / "all.json").read_text(encoding="utf-8"))
    assert everything["run"]["merged_runs"] == 5
    assert named_tasks(everything) == 15
    assert everything["run"]["exit_code"] == 5
    (main,) = [task for task in everything["tasks"] if task["name"] == "MainThread"]
    assert main["count"] == 5


def test_without_the_option_children_write_nothing(
        tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    program(tmp_path / "workers.py", WORKERS)
    done = run_advisor(["run", "--json", "report.json", "workers.py", "fork"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == OUTPUT.format(method="fork")
    assert list(reports(tmp_path)) == ["report.json"]


def test_spawned_children_run_without_advisor(
        tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # a spawned process is a fresh interpreter: only the program's own os.fork is profiled
    program(tmp_path / "workers.py", WORKERS)
    done = run_advisor(["run", "--children", "--json", "report.json", "workers.py", "spawn"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == OUTPUT.format(method="spawn")
    found = reports(tmp_path)
    assert len(found) == 2
    (child,) = [document for name, document in found.items() if name != "report.json"]
    assert child["run"]["exit_code"] == 5


def test_children_need_a_json_path(tmp_path: Path, program: Callable[[Path, str], Path],
                                   run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    program(tmp_path / "workers.py", WORKERS)
    assert_usage_error(run_advisor(["run", "--children", "workers.py", "fork"]), "--children needs --json")
