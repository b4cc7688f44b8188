"""Which event loop ran each task, recorded for the replay: two loops in two threads stay apart."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_tasks_name_the_thread_whose_loop_ran_them(run_advisor: Callable[..., subprocess.CompletedProcess[str]],
                                                    read_report: Callable[[Path], dict[str, Any]],
                                                    tmp_path: Path) -> None:
    """examples/blocking-io: the fetchers run on the main thread's loop, the reply service's
    handlers on the loop of its own thread ("service")."""
    out = tmp_path / "report.json"
    program = EXAMPLES / "blocking-io" / "bad.py"
    done = run_advisor(["run", "--no-status", "--json", str(out), program.name], cwd=program.parent, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    report = read_report(out)
    threads = {task["name"]: task["id"] for task in report["tasks"] if task["kind"] == "thread"}
    loops = {task["target"].rsplit(".", 1)[-1]: task["loop"] for task in report["tasks"]
             if task["kind"] == "asyncio-task"}
    assert loops["fetch"] == loops["main"] == threads["MainThread"]
    assert loops["answer"] == threads["service"]
    assert all(task["loop"] is None for task in report["tasks"] if task["kind"] == "thread")


GEVENT_PROGRAM = """\
import gevent


def worker(pause):
    gevent.sleep(pause)


def side_worker(pause):
    gevent.sleep(pause)


def in_thread():
    gevent.joinall([gevent.spawn(side_worker, 0.05)])


if __name__ == "__main__":
    import threading

    side = threading.Thread(target=in_thread, name="side")
    side.start()
    gevent.joinall([gevent.spawn(worker, 0.1), gevent.spawn(worker, 0.1)])
    side.join()
"""


def test_greenlets_name_the_thread_whose_hub_ran_them(run_advisor: Callable[..., subprocess.CompletedProcess[str]],
                                                       read_report: Callable[[Path], dict[str, Any]],
                                                       tmp_path: Path) -> None:
    """Each thread has its own gevent hub: the greenlets spawned in the side thread are on its
    hub. (Units of one target fold into one entry whatever their loop: the fold keeps its first
    unit's, hence two functions here.)"""
    (tmp_path / "app.py").write_text(GEVENT_PROGRAM, encoding="utf-8")
    out = tmp_path / "report.json"
    done = run_advisor(["run", "--no-status", "--json", str(out), "app.py"], cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    report = read_report(out)
    threads = {task["name"]: task["id"] for task in report["tasks"] if task["kind"] == "thread"}
    loops = {task["target"].rsplit(".", 1)[-1]: (task["loop"], task["count"]) for task in report["tasks"]
             if task["kind"] == "greenlet" and task["target"].endswith("worker")}
    assert loops == {"worker": (threads["MainThread"], 2), "side_worker": (threads["side"], 1)}
