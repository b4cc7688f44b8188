"""The deep-capture signal handler (SIGUSR2) of a server's agent: given back when the agent
closes, and one per process in a server that forks its workers after the agent started
(gunicorn ``--preload``): each worker installs its own, and the parent's, inherited, does
nothing there but chain."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from advisor.embed.agent import Agent

from .conftest import run_program


def test_closing_the_agent_gives_the_program_its_handler_back() -> None:
    calls: list[int] = []

    def programs(number: int, frame: Any) -> None:
        calls.append(number)

    before = signal.signal(signal.SIGUSR2, programs)
    try:
        agent = Agent(mode="light")
        agent.ensure_started()
        assert signal.getsignal(signal.SIGUSR2) is not programs  # advisor's, which chains the program's
        agent.close()
        assert signal.getsignal(signal.SIGUSR2) is programs
    finally:
        signal.signal(signal.SIGUSR2, before)


FORKED_WORKER = """
import json
import os
import signal
import time

from advisor.embed.agent import Agent

agent = Agent(mode="light", deep_seconds=0.2)
agent.ensure_started()  # in the parent, before the fork
parents = agent.trigger
pid = os.fork()
if pid == 0:
    agent.ensure_started()  # the worker's first request
    os.kill(os.getpid(), signal.SIGUSR2)
    deadline = time.monotonic() + 60.0
    while agent.trigger.last_report is None and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps({"own": agent.trigger is not parents, "worker_captured": agent.trigger.last_report is not None,
                      "parents_captured": parents.active is not None or bool(parents.finished)}), flush=True)
    agent.close()
    os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({"parent_captured": parents.active is not None or bool(parents.finished)}), flush=True)
agent.close()
"""


def test_a_forked_worker_captures_on_its_own_handler(tmp_path: Path) -> None:
    done = run_program(tmp_path, "worker.py", FORKED_WORKER)
    worker, parent = (json.loads(line) for line in done.stdout.splitlines())
    assert worker == {"own": True, "worker_captured": True, "parents_captured": False}
    assert parent == {"parent_captured": False}
