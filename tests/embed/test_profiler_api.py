"""The public API: ``advisor.Profiler`` start/snapshot/stop and as a context manager, and
``advisor.analyze`` — on real work in this process, with known sleeps and CPU."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import greenlet
import pytest

import advisor
from advisor.profile import load_report, report_json

from .conftest import run_program


def spin(cpu_seconds: float) -> None:
    """Work until this thread got `cpu_seconds` of CPU (a busy machine stretches the wall)."""
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        sum(range(100))


async def napper(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def fan_out() -> None:
    await asyncio.gather(*(asyncio.create_task(napper(0.1), name=f"napper-{index}") for index in range(3)))


def test_snapshot_reports_so_far_without_stopping_the_probes() -> None:
    profiler = advisor.Profiler()
    profiler.start()
    try:
        worker = threading.Thread(target=spin, args=(0.15,), name="spinner")
        worker.start()
        worker.join()
        first = profiler.snapshot()
        ticks = first.run.overhead.sampler_ticks
        asyncio.run(fan_out())
        second = profiler.snapshot()
        assert profiler.running
    finally:
        report = profiler.stop()
    assert not profiler.running
    assert first.run.partial and second.run.partial and not report.run.partial
    assert second.run.overhead.sampler_ticks > ticks  # the sampler kept sampling after the first
    spinner = next(task for task in first.tasks if task.name == "spinner")
    assert spinner.kind == "thread" and spinner.breakdown.compute_s >= 0.1
    assert not [task for task in first.tasks if task.name.startswith("napper")]
    for taken in (second, report):
        nappers = [task for task in taken.tasks if task.name.startswith("napper")]
        assert len(nappers) == 3
        for task in nappers:
            assert task.breakdown.waiting_s >= 0.09  # asyncio.sleep(0.1) is a timer wait
            assert abs(task.breakdown.total() - task.wall_s) <= 0.05 * task.wall_s
    assert profiler.stop() is report  # stopping twice hands back the same report


def test_context_manager_and_analyze_on_a_saved_report(tmp_path: Path) -> None:
    with advisor.Profiler(mode="light") as profiler:
        spin(0.05)
    report = profiler.last_report
    assert report is not None and report.run.mode == "light"
    main = next(task for task in report.tasks if task.name == "MainThread")
    assert main.breakdown.compute_s >= 0.03
    path = tmp_path / "report.json"
    path.write_text(report_json(report))
    again = advisor.analyze(load_report(path), select=["blocking-sleep"])
    assert again.tasks == load_report(path).tasks
    assert all(finding.rule == "blocking-sleep" for finding in again.findings)


def test_snapshot_from_another_thread_while_tasks_run() -> None:
    profiler = advisor.Profiler()
    profiler.start()
    taken: list[advisor.profile.Report] = []

    def take_snapshots() -> None:
        for _ in range(5):
            taken.append(profiler.snapshot())
            time.sleep(0.02)

    async def many() -> None:
        async def short(index: int) -> None:
            for _ in range(20):
                await asyncio.sleep(0)
        snapper = threading.Thread(target=take_snapshots)
        snapper.start()
        for _ in range(20):
            await asyncio.gather(*(short(index) for index in range(50)))
            await asyncio.sleep(0.005)
        snapper.join()

    try:
        asyncio.run(many())
    finally:
        report = profiler.stop()
    assert len(taken) == 5
    folded = [task for task in report.tasks if task.target.endswith("short")]
    assert sum(task.count for task in folded) == 1000


def test_misuse_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="mode"):
        advisor.Profiler(mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sample_rate"):
        advisor.Profiler(sample_rate=0.0)
    profiler = advisor.Profiler()
    with pytest.raises(RuntimeError, match="not running"):
        profiler.snapshot()
    with pytest.raises(RuntimeError, match="never started"):
        profiler.stop()
    with pytest.raises(advisor.engine.UsageError):
        advisor.Profiler(select=["no-such-rule"])


FORKS_WHILE_PROFILED = """
import asyncio
import json
import os
import sys
import threading

import advisor


def hooks():
    return [sys.getprofile() is None, threading.getprofile() is None,
            asyncio.events.Handle._run.__module__, sys.getswitchinterval()]


async def named(name):
    async def sleeper():
        await asyncio.sleep(0.02)

    await asyncio.create_task(sleeper(), name=name)


bare = hooks()
profiler = advisor.Profiler(mode="light")
profiler.start()
asyncio.run(named("parent-task"))
pid = os.fork()
if pid == 0:
    inherited = [profiler.running, hooks()]
    # the child's own profiler sees the child's own tasks only
    own = advisor.Profiler(mode="light")
    with own:
        asyncio.run(named("child-task"))
    names = sorted(task.name for task in own.last_report.tasks if task.name.endswith("-task"))
    print(json.dumps({"bare": bare, "inherited": inherited, "names": names, "after": hooks()}), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
report = profiler.stop()
print(json.dumps(sorted(task.name for task in report.tasks if task.name.endswith("-task"))))
"""


def test_a_forked_child_gets_the_bare_hooks_and_can_profile_itself(tmp_path: Path) -> None:
    # the inherited probes would slow the child for a report no one takes (2x on an asyncio
    # loop): in the child the profiler is stopped and the hooks are the program's
    done = run_program(tmp_path, "forks.py", FORKS_WHILE_PROFILED)
    child_line, parent_line = done.stdout.splitlines()
    child = json.loads(child_line)
    assert child["inherited"] == [False, child["bare"]]
    assert child["names"] == ["child-task"]
    assert child["after"] == child["bare"]
    assert json.loads(parent_line) == ["parent-task"]


FORKS_WHILE_A_PROBE_LOCK_IS_HELD = """
import os
import signal
import threading
import time

import advisor

profiler = advisor.Profiler(mode="standard", calibrate=False)
profiler.start()
lock = profiler.capture.hot_calls._lock
held, release = threading.Event(), threading.Event()


def sampler_like():  # the sampler's thread holds it an instant at each call-counting window
    with lock:
        held.set()
        release.wait()


holder = threading.Thread(target=sampler_like)
holder.start()
held.wait()
pid = os.fork()
if pid == 0:
    os._exit(0 if profiler.running is False else 3)
release.set()
holder.join()
deadline = time.monotonic() + 60.0
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("child exit", os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.05)
else:
    os.kill(pid, signal.SIGKILL)
    print("child stuck in advisor's at-fork hook")
profiler.stop()
"""


def test_a_fork_while_a_probe_lock_is_held_does_not_hang_the_child(tmp_path: Path) -> None:
    # the Profiler's at-fork hook runs before its probes' own (it was registered first):
    # it renews their locks itself before it stops them, or the child waits for ever
    done = run_program(tmp_path, "held.py", FORKS_WHILE_A_PROBE_LOCK_IS_HELD)
    assert done.stdout == "child exit 0\n"


def test_two_profilers_stopped_in_the_order_they_started() -> None:
    # a test's own profiler around a server whose agent starts one at its first request:
    # the first stops while the second still runs
    originals = (asyncio.events.Handle._run, asyncio.base_events.BaseEventLoop.create_task,
                 threading.Thread._bootstrap_inner)  # type: ignore[attr-defined]
    trace_before = greenlet.gettrace()

    async def job() -> None:
        await asyncio.sleep(0.005)

    async def tasks(prefix: str, count: int) -> None:
        await asyncio.gather(*(asyncio.create_task(job(), name=f"{prefix}-{index}") for index in range(count)))

    def names(report: advisor.Report, prefix: str) -> int:
        return sum(task.count for task in report.tasks if task.name.startswith(prefix))

    first, second = advisor.Profiler(mode="light", calibrate=False), advisor.Profiler(mode="light", calibrate=False)
    first.start()
    second.start()
    asyncio.run(tasks("both", 3))
    first_report = first.stop()
    asyncio.run(tasks("second-only", 4))  # the second still sees its tasks
    second_report = second.stop()
    asyncio.run(tasks("neither", 2))
    assert (asyncio.events.Handle._run, asyncio.base_events.BaseEventLoop.create_task,
            threading.Thread._bootstrap_inner) == originals  # type: ignore[attr-defined]
    # the greenlet trace too: the first one's was the second's previous, put back stopped
    assert greenlet.gettrace() is trace_before
    assert (names(first_report, "both"), names(first_report, "second-only")) == (3, 0)
    assert (names(second_report, "both"), names(second_report, "second-only")) == (3, 4)
    # the first one's hooks recorded nothing once it stopped (they passed calls through)
    (capture, _threads), = first._detach
    recorded = {record.name.split("-")[0] for record in capture.asyncio_probe.ledger.all_records()}
    assert "both" in recorded and not recorded & {"second", "neither"}


PROFILES_A_FORKED_WORKER = """
import json
import os
import threading
import time

import advisor


def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


pid = os.fork()  # a pre-forking server's worker: nothing of advisor's ran before the fork
if pid == 0:
    stale = threading.main_thread().native_id != threading.get_native_id()
    with advisor.Profiler(mode="light") as profiler:
        spin(0.3)
    main = [task for task in profiler.last_report.tasks if task.name == "MainThread"]
    print(json.dumps({"stale": stale, "main": [(task.cpu_s, task.breakdown.compute_s) for task in main]}),
          flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_a_profiler_started_in_a_forked_worker_reads_its_main_threads_cpu(tmp_path: Path) -> None:
    """Python 3.11 leaves the parent's kernel thread id on main_thread() in a forked child:
    read by it, the worker's main thread had no CPU clock and its 0.3 s of CPU went
    unseen (a gunicorn --preload worker's profiler)."""
    done = run_program(tmp_path, "worker.py", PROFILES_A_FORKED_WORKER)
    child = json.loads(done.stdout)
    assert len(child["main"]) == 1, child
    cpu, compute = child["main"][0]
    assert 0.25 <= cpu <= 0.6 and 0.25 <= compute <= 0.6, child
