"""The probes under fault: an exception raised inside a probe's hook is contained. The
program's output and exit status are the bare run's, the report is still written, and the
failed probe says in ``run.probes`` that it disabled itself.

The fault is injected from outside advisor: a ``sitecustomize`` module on the PYTHONPATH
of the profiled process (written into the test's tmp dir) replaces one method of a probe
with one that raises. No test hook lives in advisor's own code.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from advisor.profile import Report

# Imports the probe module and replaces one method with a raising one: `when` limits the
# fault to the calls that matter (the start of the program's "worker" thread, in that
# thread: not the sampler's adoption of it, which can come first on a busy machine).
SITECUSTOMIZE = """
import importlib
import os
import threading

_fault = os.environ.get("ADVISOR_TEST_FAULT")
if _fault:
    _module, _class, _method, _when = _fault.split(":")
    _owner = getattr(importlib.import_module(_module), _class)
    _original = getattr(_owner, _method)

    def _raising(*args, **kwargs):
        # (args[1] is the thread being recorded: its start is recorded in itself, before its
        # ident is set; the sampler adopts it from another thread, with its ident set)
        if _when == "in-worker" and not (len(args) > 1 and getattr(args[1], "name", None) == "worker"
                                         and getattr(args[1], "ident", None) in (None, threading.get_ident())):
            return _original(*args, **kwargs)
        raise RuntimeError("injected fault")

    setattr(_owner, _method, _raising)
"""

# Everything the probes hook: asyncio tasks, a thread, gevent greenlets, a hot function.
TARGET = """
    import asyncio
    import sys
    import threading
    import time

    import gevent


    def checksum(n):
        total = 0
        for value in range(n):
            total = (total * 31 + value) % 1_000_003
        return total


    async def fetch(n):
        await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        return n


    async def main():
        tasks = [asyncio.create_task(fetch(n), name=f"fetch-{n}") for n in range(5)]
        return sum(await asyncio.gather(*tasks))


    def nap(n):
        gevent.sleep(0.01)
        return n


    results = []
    worker = threading.Thread(target=lambda: results.append(checksum(50_000)), name="worker")
    worker.start()
    print("tasks", asyncio.run(main()))
    greenlets = [gevent.spawn(nap, n) for n in range(4)]
    gevent.joinall(greenlets)
    print("greenlets", sum(glet.value for glet in greenlets))
    started, rounds = time.perf_counter(), 0
    while time.perf_counter() - started < 0.5:  # hot long enough for standard mode's call counting
        checksum(2_000)
        rounds += 1
    worker.join()
    print("thread", results[0], "hot", rounds > 0)
    print("to stderr", file=sys.stderr)
    sys.exit(4)
"""

# fault -> (module:class:method:when, the probe that must say it disabled itself)
FAULTS = {
    "asyncio-step": ("advisor.probes.asyncio_probe:AsyncioProbe:_after_step:always", "asyncio"),
    "asyncio-create-task": ("advisor.probes.asyncio_probe:AsyncioProbe:_track:always", "asyncio"),
    "greenlet-switch": ("advisor.probes.greenlet_probe:GreenletProbe:_switch:always", "greenlet"),
    "sampler-tick": ("advisor.probes.sampler:Sampler:tick:always", "sampler"),
    "hot-calls": ("advisor.probes.hot_calls:HotCallProbe:_instrument_hottest:always", "hot-calls"),
    "thread-start": ("advisor.probes.threads:ThreadRegistry:_new_record:in-worker", "threads"),
}


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, program: Callable[[Path, str], Path],
         bare_python: Callable[..., subprocess.CompletedProcess[str]]) -> subprocess.CompletedProcess[str]:
    work = tmp_path_factory.mktemp("bare")
    script = program(work / "target.py", TARGET)
    done = bare_python([str(script)], work)
    assert done.returncode == 4, done.stderr
    assert done.stdout.startswith("tasks 10\ngreenlets 6\nthread ")
    return done


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_probe_hook_leaves_the_program_alone(
        fault: str, bare: subprocess.CompletedProcess[str], tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    where, probe_name = FAULTS[fault]
    program(tmp_path / "faults" / "sitecustomize.py", SITECUSTOMIZE)
    script = program(tmp_path / "target.py", TARGET)
    done = run_advisor(["run", "--json", "report.json", str(script)],
                       env={"PYTHONPATH": str(tmp_path / "faults"), "ADVISOR_TEST_FAULT": where})
    assert done.returncode == 4, done.stderr[-4000:]
    assert done.stdout == bare.stdout
    assert done.stderr.startswith(bare.stderr), done.stderr[-4000:]
    # nothing of the fault reached the program's stderr (advisor's report may name it, and
    # its hot functions may hold one called Traceback: gevent._tblib's class, sampled once)
    assert "Traceback (most recent call last)" not in done.stderr, done.stderr[-4000:]
    assert "Exception ignored" not in done.stderr, done.stderr[-4000:]
    document: dict[str, Any] = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    Report.model_validate(document)
    assert document["run"]["exit_code"] == 4
    probes = {probe["name"]: probe for probe in document["run"]["probes"]}
    assert probes[probe_name]["active"] is False, probes
    assert probes[probe_name]["note"] == "disabled itself: RuntimeError: injected fault", probes
    # the other probes went on working
    assert [name for name, probe in probes.items() if not probe["active"]] == [probe_name]
    assert any(task["name"] == "MainThread" for task in document["tasks"])


RAISING_HASH = """
    import time


    class Key:
        def __init__(self, n):
            self.n = n

        def __hash__(self):
            raise ValueError("Key objects must not be hashed")


    def score(key, factor):
        return sum(i * factor for i in range(key.n))


    started, total = time.perf_counter(), 0
    while time.perf_counter() - started < 0.6:  # hot: standard mode counts score()'s calls
        total += score(Key(200), 3) > 0
    print("scored", total > 0)
"""


def test_arguments_whose_hash_raises_do_not_reach_the_program(
        tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # standard mode hashes the arguments of the hottest functions; a __hash__ that raises
    # anything is its problem, not the program's (the program never hashes them)
    program(tmp_path / "keys.py", RAISING_HASH)
    done = run_advisor(["run", "--json", "report.json", "keys.py"])
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout == "scored True\n"
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    (score,) = [f for f in document["functions"] if f["function"].endswith("score")]
    assert score["window"] is not None and score["window"]["calls"] > 0
    assert score["window"]["unhashable_calls"] == score["window"]["calls"]
