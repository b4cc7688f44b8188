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
