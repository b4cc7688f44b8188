"""Targets that do hostile things to the process advisor lives in: fork, replace the event
loop (policy, uvloop), mix asyncio with gevent, install their own profile and trace hooks,
recurse to near the recursion limit, or leave with ``os._exit``. Each is run bare and under
``advisor run``: the program's stdout and exit status must be the bare run's, and the report
must be written once, by the profiled process, with the program's units in it.

(Exceptions, ``sys.exit(n)``, SIGINT and SIGTERM are in ``tests/e2e/cli/test_exit_status.py``;
task factories, several ``asyncio.run`` calls and loops in threads in
``tests/e2e/truth/test_asyncio_units.py``.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from advisor.profile import Report

from .conftest import advisor_env

REPORT_START = '{\n  "schema_version"'


@dataclass
class Compared:
    """A program run bare and under advisor (``--format json --json report.json``)."""

    bare: subprocess.CompletedProcess[str]
    profiled: subprocess.CompletedProcess[str]
    work: Path

    @property
    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.work / "report.json").read_text(encoding="utf-8"))
        Report.model_validate(document)
        return document

    def units(self, kind: str) -> dict[str, dict[str, Any]]:
        return {task["name"]: task for task in self.report["tasks"] if task["kind"] == kind}

    def reports_on_stderr(self) -> int:
        return self.profiled.stderr.count(REPORT_START)


@pytest.fixture
def compare(tmp_path: Path, program: Callable[[Path, str], Path], bare_python: Callable[..., Any],
            run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., Compared]:
    """``compare(source, *args, mode="standard")``: run the program bare, then under advisor,
    and check what must always hold: the same stdout and exit status."""

    def run(source: str, *args: str, mode: str = "standard") -> Compared:
        script = program(tmp_path / "target.py", source)
        bare = bare_python([str(script), *args], tmp_path)
        profiled = run_advisor(["run", "--mode", mode, "--format", "json", "--json", "report.json", str(script),
                                *args])
        assert profiled.returncode == bare.returncode, (bare.returncode, profiled.stderr[-4000:])
        assert profiled.stdout == bare.stdout, profiled.stderr[-4000:]
        assert "Traceback" not in profiled.stderr or "Traceback" in bare.stderr, profiled.stderr[-4000:]
        return Compared(bare, profiled, tmp_path)

    return run


# -- leaving without unwinding --

OS_EXIT = """
    import atexit
    import os

    atexit.register(print, "atexit: not run by os._exit")
    print("leaving", flush=True)
    os._exit(7)
"""


def test_os_exit_keeps_its_status_and_writes_no_report(compare: Callable[..., Compared]) -> None:
    # os._exit ends the process on the spot: no Python code runs after it, advisor's neither
    # (documented in the README); the status and what was flushed are the program's
    run = compare(OS_EXIT)
    assert run.profiled.returncode == 7
    assert run.profiled.stdout == "leaving\n"
    assert not (run.work / "report.json").exists()
    assert run.reports_on_stderr() == 0
    assert not [path.name for path in run.work.iterdir() if path.name.endswith(".tmp")]


PROGRAM_STATE_AT_EXIT = """
    import atexit
    import os
    import signal
    import sys
    from pathlib import Path

    here = os.path.dirname(os.path.abspath(__file__))
    Path(here, "late_helper.py").write_text("VALUE = 42\\n")
    sys.path.insert(0, os.path.join(here, "plugins"))  # the program's own entry before its directory
    sys.argv.append("--added")


    def graceful(number, frame):
        print("graceful")


    signal.signal(signal.SIGTERM, graceful)


    @atexit.register
    def bye():
        import late_helper  # imported late, from the program's directory

        print("at exit", sys.argv[1:], sys.path[0] == os.path.join(here, "plugins"), sys.path[1] == here,
              signal.getsignal(signal.SIGTERM) is graceful, late_helper.VALUE)
"""


def test_atexit_handlers_find_what_the_program_left(compare: Callable[..., Compared]) -> None:
    # they run after advisor's report: the program's argv, its sys.path (its directory
    # included) and its own SIGTERM handler must be there as in a bare run
    run = compare(PROGRAM_STATE_AT_EXIT, "--port", "80")
    assert run.profiled.stdout == "at exit ['--port', '80', '--added'] True True True 42\n"
    assert run.reports_on_stderr() == 1


REMOVES_ITS_DIRECTORY = """
    import os
    import tempfile

    scratch = tempfile.mkdtemp()
    os.chdir(scratch)
    os.rmdir(scratch)  # its working directory is gone when advisor makes the report
    print("done")
"""

REPLACES_THE_CLOCK = """
    import time
    from unittest import mock

    # a tool's timing code with a scripted clock, never put back: two readings, then none
    time.perf_counter = mock.Mock(side_effect=[100.0, 103.5])
    start = time.perf_counter()
    total = sum(i * i for i in range(200_000))
    print(f"took {time.perf_counter() - start:.1f}s total={total}")
"""


@pytest.mark.parametrize("source", [REMOVES_ITS_DIRECTORY, REPLACES_THE_CLOCK], ids=["removed-cwd", "mock-clock"])
def test_what_the_program_leaves_behind_does_not_cost_the_report(
        source: str, compare: Callable[..., Compared]) -> None:
    # both were "advisor: internal error, no report" (os.getcwd() failed; capture.stop read
    # time.perf_counter from the module, the program's exhausted mock)
    run = compare(source)
    assert "internal error" not in run.profiled.stderr, run.profiled.stderr[-3000:]
    assert run.reports_on_stderr() == 1
    report = run.report
    assert report["run"]["cwd"] == str(run.work)
    assert 0.0 < report["run"]["wall_s"] < 60.0


CLOSES_EVERY_DESCRIPTOR = """
    import os
    import threading
    import time

    done = threading.Event()
    worker = threading.Thread(target=done.wait)
    worker.start()
    time.sleep(0.05)  # the sampler has seen the thread
    os.closerange(3, 65536)  # as a daemon does
    reader, writer = os.pipe()  # the lowest free numbers
    done.set()
    worker.join()  # the thread ends: advisor lets go of what it held for it
    time.sleep(0.05)
    os.write(writer, b"hello")
    print(os.read(reader, 5))
"""

FEW_DESCRIPTORS = """
    import resource
    import threading

    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    ready, go = threading.Barrier(41), threading.Event()
    failed = []


    def worker():
        try:
            held = open(__file__)
        except OSError as error:
            failed.append(error.errno)
            held = None
        ready.wait()
        go.wait()
        if held:
            held.close()


    threads = [threading.Thread(target=worker) for _ in range(40)]
    for thread in threads:
        thread.start()
    ready.wait()
    go.set()
    for thread in threads:
        thread.join()
    print("failed opens:", len(failed))
"""


@pytest.mark.parametrize("source", [CLOSES_EVERY_DESCRIPTOR, FEW_DESCRIPTORS], ids=["closerange", "limit-64"])
def test_advisors_descriptors_stay_out_of_the_programs_way(source: str, compare: Callable[..., Compared]) -> None:
    # one descriptor per thread (its schedstat file) sat among the program's: advisor closed
    # the program's pipe that had got the number after a closerange, and 40 threads left a
    # program with a limit of 64 short of 11 opens. They live high now, checked before close.
    run = compare(source, mode="light")
    assert run.profiled.stdout in ("b'hello'\n", "failed opens: 0\n")
    assert run.reports_on_stderr() == 1


CHAINS_THE_HANDLER_IT_REPLACED = """
    import os
    import signal
    import sys
    import time


    def on_term(signum, frame):
        print("cleaning up", flush=True)
        if callable(previous):
            previous(signum, frame)  # whoever was there before runs too
        sys.exit(0)  # a graceful end


    previous = signal.signal(signal.SIGTERM, on_term)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    print("not reached")
"""


def test_a_handler_that_chains_the_one_it_replaced_ends_as_bare(compare: Callable[..., Compared]) -> None:
    # bare, the handler replaced is SIG_DFL and nothing is chained; under advisor it is
    # advisor's, which wrote a partial report and killed the process (status 143, no
    # graceful end): called from a handler that replaced it, it now does nothing
    run = compare(CHAINS_THE_HANDLER_IT_REPLACED)
    assert run.profiled.stdout == "cleaning up\n" and run.profiled.returncode == 0
    assert run.report["run"]["exit_code"] == 0 and run.report["run"]["partial"] is False


LEAVES_AN_EXECUTOR_OPEN = """
    import threading
    from concurrent.futures import ThreadPoolExecutor


    class Worker(threading.Thread):
        def join(self, timeout=None):  # re-raises the thread's error: called by no exit of Python's
            super().join(timeout)
            raise RuntimeError("join() was called at exit")


    pool = ThreadPoolExecutor(2)  # never shut down: Python's exit tells its workers to end
    print(pool.submit(pow, 2, 10).result())
    Worker(target=lambda: None).start()
"""


def test_the_programs_threads_end_as_at_pythons_exit(compare: Callable[..., Compared]) -> None:
    # advisor joined every non-daemon thread: an open executor's idle workers, which only
    # Python's exit hooks tell to end, were waited for for ever (the run hung), and a Thread
    # subclass's join() ran where Python's exit never calls it
    run = compare(LEAVES_AN_EXECUTOR_OPEN)
    assert run.profiled.stdout == "1024\n" and run.profiled.returncode == 0
    assert run.report["run"]["exit_code"] == 0


OWN_NAMESAKES = """
    import email
    import statistics

    print(email.send_welcome("ann"))
    print(statistics.summarize([1, 2, 3]))
"""


def test_the_programs_own_modules_named_like_the_standard_librarys_are_its_own(
        tmp_path: Path, program: Callable[[Path, str], Path], bare_python: Callable[..., Any],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # advisor imports email and statistics (among ~70 modules) before the program runs: the
    # program's own, beside it, were shadowed (AttributeError); bare, its directory comes
    # first. (In app/: `python -m advisor` run from the program's directory would import
    # the program's email.py for advisor itself, as `python -m` does for any tool.)
    app = tmp_path / "app"
    program(app / "main.py", OWN_NAMESAKES)
    program(app / "email.py", 'def send_welcome(name):\n    return f"welcome mail queued for {name}"\n')
    program(app / "statistics.py", 'def summarize(values):\n    return {"n": len(values)}\n')
    bare = bare_python(["app/main.py"], tmp_path)
    profiled = run_advisor(["run", "--format", "json", "--json", "report.json", "app/main.py"])
    assert bare.stdout == "welcome mail queued for ann\n{'n': 3}\n", bare.stderr
    assert profiled.returncode == 0 and profiled.stdout == bare.stdout, profiled.stderr[-3000:]
    assert "Traceback" not in profiled.stderr
    assert (tmp_path / "report.json").exists()


# -- forking --

FORKS = """
    import os
    import sys

    pid = os.fork()
    if pid == 0:
        print("child", flush=True)
        sys.exit(5)  # the child unwinds through advisor's runner: it must not write a report
    _, status = os.waitpid(pid, 0)
    print("parent saw", os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_that_exits_normally_writes_no_report(compare: Callable[..., Compared]) -> None:
    run = compare(FORKS)
    assert run.profiled.stdout == "child\nparent saw 5\n"
    assert run.profiled.returncode == 0
    assert run.reports_on_stderr() == 1  # the parent's only
    report = run.report
    assert report["run"]["exit_code"] == 0
    assert report["run"]["cpu_s"] >= 0.0
    assert list(run.units("thread")) == ["MainThread"]


MULTIPROCESSING = """
    import asyncio
    import multiprocessing
    import sys


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
        with context.Pool(2) as pool:
            print(sys.argv[1], pool.map(square, range(6)))
        child = context.Process(target=square, args=(3,), name="one-child")
        child.start()
        child.join()
        print("child exit", child.exitcode)
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_children_are_unaffected_and_not_reported(
        method: str, compare: Callable[..., Compared]) -> None:
    run = compare(MULTIPROCESSING, method)
    assert run.profiled.stdout == f"{method} [1, 2, 5, 10, 17, 26]\nchild exit 0\n"
    assert run.reports_on_stderr() == 1
    # the children's tasks ran in other processes: not in the parent's report, not reported twice
    assert not [name for name in run.units("asyncio-task") if name.startswith("child-task")]
    assert "MainThread" in run.units("thread")
    assert run.report["run"]["exit_code"] == 0 and run.report["run"]["partial"] is False


HOOKS_IN_CHILDREN = """
    import asyncio
    import os
    import sys
    import threading


    def hooks(where):
        loop_hooks = (asyncio.events.Handle._run.__module__, asyncio.base_events.BaseEventLoop.create_task.__module__)
        print(where, sys.getprofile(), threading.getprofile(), loop_hooks, sys.getswitchinterval(), flush=True)


    async def main():
        await asyncio.sleep(0.05)  # the sampler ticks, the probes see a task
        pid = os.fork()  # inside a task's step
        if pid == 0:
            hooks("child")
            await asyncio.sleep(0)
            os._exit(0)
        os.waitpid(pid, 0)


    asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["light", "standard"])
def test_a_forked_child_runs_without_the_probes(mode: str, compare: Callable[..., Compared]) -> None:
    # a child no one profiles must not pay for the probes (an asyncio loop ran 2x slower in
    # one): its hooks are the bare program's, the switch interval too
    run = compare(HOOKS_IN_CHILDREN, mode=mode)
    assert run.profiled.stdout.startswith("child None None ('asyncio.events', 'asyncio.base_events')")
    assert run.reports_on_stderr() == 1
    assert len(run.units("asyncio-task")) == 1  # asyncio.run's, in the parent


SIGTERM_IN_CHILDREN = """
    import multiprocessing
    import os
    import signal


    def disposition(where):
        print(where, "default" if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else "changed", flush=True)


    if __name__ == "__main__":
        pid = os.fork()
        if pid == 0:
            disposition("os.fork child")
            os._exit(0)
        os.waitpid(pid, 0)
        child = multiprocessing.get_context("fork").Process(target=disposition, args=("Process child",))
        child.start()
        child.join()
        with multiprocessing.get_context("fork").Pool(1) as pool:
            pool.apply(disposition, ("pool worker",))
"""


def test_forked_children_keep_the_programs_sigterm(compare: Callable[..., Compared]) -> None:
    # advisor's SIGTERM handler (the parent's partial report) is not the children's: a pool
    # worker that inherited it could miss Pool.terminate's SIGTERM and hang its parent
    run = compare(SIGTERM_IN_CHILDREN)
    assert run.profiled.stdout == "os.fork child default\nProcess child default\npool worker default\n"
    assert run.reports_on_stderr() == 1


# -- replacing the event loop --

POLICY = """
    import asyncio


    class CountingLoop(asyncio.SelectorEventLoop):
        created = 0

        def create_task(self, coro, **kwargs):
            CountingLoop.created += 1
            return super().create_task(coro, **kwargs)


    class Policy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self):
            return CountingLoop()


    asyncio.set_event_loop_policy(Policy())


    async def job(n):
        await asyncio.sleep(0.05)
        return n


    async def main():
        return sum(await asyncio.gather(*(asyncio.create_task(job(n), name=f"job-{n}") for n in range(4))))


    print(asyncio.run(main()), type(asyncio.get_event_loop_policy()).__name__, CountingLoop.created)
"""


def test_a_program_event_loop_policy_and_loop_class_are_profiled(compare: Callable[..., Compared]) -> None:
    run = compare(POLICY)
    # its loop made every task (the main one, four jobs, asyncio.run's shutdown): as bare
    assert run.profiled.stdout.startswith("6 Policy ")
    tasks = run.units("asyncio-task")
    for n in range(4):
        job = tasks[f"job-{n}"]
        assert job["count"] == 1
        assert job["breakdown"]["waiting_s"] == pytest.approx(0.05, abs=0.02)


UVLOOP = """
    import asyncio

    import uvloop


    async def job(n):
        await asyncio.sleep(0.05)
        return n


    async def main():
        return sum(await asyncio.gather(*(asyncio.create_task(job(n), name=f"job-{n}") for n in range(4))))


    print(uvloop.run(main()))
"""


def test_uvloop_program_runs_unchanged_with_its_thread_profiled(compare: Callable[..., Compared]) -> None:
    pytest.importorskip("uvloop")
    run = compare(UVLOOP)
    assert run.profiled.stdout == "6\n"
    main = run.units("thread")["MainThread"]
    assert main["wall_s"] >= 0.05
    assert all(probe["active"] for probe in run.report["run"]["probes"]), run.report["run"]["probes"]


@pytest.mark.xfail(strict=True, reason="uvloop's Loop.create_task and handles are C code: the class-level hooks on "
                                       "BaseEventLoop.create_task and Handle._run never see its tasks")
def test_uvloop_tasks_have_entries(compare: Callable[..., Compared]) -> None:
    pytest.importorskip("uvloop")
    run = compare(UVLOOP)
    assert {f"job-{n}" for n in range(4)} <= set(run.units("asyncio-task"))


GEVENT_AND_ASYNCIO = """
    import asyncio
    import threading

    import gevent


    def nap(n):
        gevent.sleep(0.05)
        return n


    async def job(n):
        await asyncio.sleep(0.05)
        return n


    async def jobs():
        return sum(await asyncio.gather(*(asyncio.create_task(job(n), name=f"job-{n}") for n in range(3))))


    results = []
    loop_thread = threading.Thread(target=lambda: results.append(asyncio.run(jobs())), name="loop-thread")
    loop_thread.start()
    greenlets = [gevent.spawn(nap, n) for n in range(3)]
    for n, glet in enumerate(greenlets):
        glet.name = f"nap-{n}"
    gevent.joinall(greenlets)
    loop_thread.join()
    print(sum(glet.value for glet in greenlets), results[0], asyncio.run(jobs()))
"""


def test_asyncio_and_gevent_in_one_process_are_both_profiled(compare: Callable[..., Compared]) -> None:
    run = compare(GEVENT_AND_ASYNCIO)
    assert run.profiled.stdout == "3 3 3\n"
    tasks = [task for task in run.report["tasks"] if task["kind"] == "asyncio-task" and task["name"].startswith("job-")]
    assert sum(task["count"] for task in tasks) == 6  # three in the thread's loop, three in the main thread's
    greenlets = run.units("greenlet")
    for n in range(3):
        assert greenlets[f"nap-{n}"]["breakdown"]["waiting_s"] == pytest.approx(0.05, abs=0.02)
    assert "Hub" in greenlets
    assert {"MainThread", "loop-thread"} <= set(run.units("thread"))
    assert all(probe["active"] for probe in run.report["run"]["probes"]), run.report["run"]["probes"]


# -- the program's own profile and trace hooks --

OWN_HOOKS = """
    import asyncio
    import sys
    import threading

    import greenlet

    calls = {"sys": 0, "thread": 0, "greenlet": 0}


    def count_sys(frame, event, arg):
        if event == "call":
            calls["sys"] += 1


    def count_thread(frame, event, arg):
        if event == "call":
            calls["thread"] += 1


    previous = greenlet.gettrace()


    def trace(event, args):
        calls["greenlet"] += 1
        if previous is not None:
            previous(event, args)  # a well-behaved tracer chains the one it replaced


    def work(n):
        return sum(range(n))


    def in_thread():
        for _ in range(10):
            work(10)


    def glet():
        greenlet.getcurrent().parent.switch(1)


    async def nap():
        await asyncio.sleep(0.01)


    async def main():
        await asyncio.gather(*(asyncio.create_task(nap(), name=f"nap-{n}") for n in range(3)))


    greenlet.settrace(trace)
    sys.setprofile(count_sys)
    threading.setprofile(count_thread)
    thread = threading.Thread(target=in_thread, name="profiled-thread")
    thread.start()
    thread.join()
    for _ in range(10):
        work(10)
    runner = greenlet.greenlet(glet)
    runner.switch()
    runner.switch()
    asyncio.run(main())
    sys.setprofile(None)
    threading.setprofile(None)
    print(calls["sys"] >= 10, calls["thread"] >= 10, calls["greenlet"])
"""


@pytest.mark.parametrize("mode", ["standard", "deep"])
def test_a_program_that_sets_its_own_profile_and_trace_functions(mode: str, compare: Callable[..., Compared]) -> None:
    run = compare(OWN_HOOKS, mode=mode)
    # its hooks saw what they see bare: the calls, and all four greenlet switches
    assert run.profiled.stdout == "True True 4\n"
    assert {"MainThread", "profiled-thread"} <= set(run.units("thread"))
    assert {f"nap-{n}" for n in range(3)} <= set(run.units("asyncio-task"))
    assert sum(task["count"] for task in run.units("greenlet").values()) == 1  # advisor's tracer, chained, too
    assert run.report["run"]["exit_code"] == 0


# -- deep recursion --

RECURSES = """
    import sys
    import time


    def down(n):
        return 0 if n == 0 else 1 + down(n - 1)


    depth = sys.getrecursionlimit() - 60  # advisor's runner sits below the program: ~10 frames
    total = rounds = 0
    started = time.perf_counter()
    while time.perf_counter() - started < 1.0:  # long enough for standard mode to count its calls
        total += down(depth)
        rounds += 1
    print(total == rounds * depth)
"""


@pytest.mark.parametrize("mode", ["standard", "deep"])
def test_recursion_near_the_limit_does_not_overflow(mode: str, compare: Callable[..., Compared]) -> None:
    run = compare(RECURSES, mode=mode)
    assert run.profiled.stdout == "True\n"
    assert run.profiled.returncode == 0
    # counted whatever its rank: in deep mode the ranking is by corrected self time, which a
    # busy machine's calibration can reorder between `down` and the module
    down = [entry for entry in run.report["functions"] if entry["function"].endswith(".down")]
    assert down, [entry["function"] for entry in run.report["functions"]]
    assert down[0]["calls"] is not None and down[0]["calls"] > 0


MEASURES_ITS_DEPTH = """
    def depth(n=1):
        try:
            return depth(n + 1)
        except RecursionError:
            return n


    print("deepest", depth())
"""


@pytest.mark.parametrize("how", ["script", "module"])
def test_the_program_recurses_exactly_as_deep_as_bare(
        how: str, tmp_path: Path, program: Callable[[Path, str], Path], bare_python: Callable[..., Any],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # advisor's runner adds its frames below the program's (6 for a script): the limit grows
    # by as many, where a program recursing near it failed
    program(tmp_path / "measures.py", MEASURES_ITS_DEPTH)
    target = ["measures.py"] if how == "script" else ["-m", "measures"]
    bare = bare_python(target, tmp_path)
    profiled = run_advisor(["run", "--mode", "light", "--format", "json", "--json", "report.json", *target])
    assert profiled.returncode == bare.returncode == 0, profiled.stderr[-3000:]
    assert profiled.stdout == bare.stdout


MUTUAL_RECURSION = """
    import sys
    import time


    def expression(n):
        return 0 if n == 0 else 1 + term(n - 1)


    def term(n):
        return 0 if n == 0 else 1 + factor(n - 1)


    def factor(n):
        return 0 if n == 0 else 1 + expression(n - 1)


    depth = sys.getrecursionlimit() - 20  # a parser's descent, close to the limit
    started, rounds = time.perf_counter(), 0
    while time.perf_counter() - started < 1.0:  # long enough for standard mode to count its calls
        assert expression(depth) == depth
        rounds += 1
    print("ok")
"""


def test_counted_calls_add_few_frames_however_many_functions_recurse(compare: Callable[..., Compared]) -> None:
    # standard mode's counting wrapper adds a frame per counted call; the cap on its nesting
    # was per function, and three mutually recursive ones stacked 27 wrapper frames
    run = compare(MUTUAL_RECURSION, mode="standard")
    assert run.profiled.stdout == "ok\n"


# -- stopped mid-run while tasks and a thread are alive --

BUSY_SERVER = """
    import asyncio
    import threading
    import time


    def background():
        while True:
            time.sleep(0.01)


    async def serve(n):
        while True:
            await asyncio.sleep(0.01)


    async def main():
        tasks = [asyncio.create_task(serve(n), name=f"conn-{n}") for n in range(3)]
        tasks += [asyncio.create_task(serve(n)) for n in range(20)]
        await asyncio.sleep(0.2)
        print("ready", flush=True)
        await asyncio.gather(*tasks)


    threading.Thread(target=background, name="background", daemon=True).start()
    asyncio.run(main())
"""


def stop_when_ready(command: list[str], cwd: Path, signum: int) -> tuple[int, str, str]:
    """Start `command`, wait (bounded) for its ``ready`` line, send `signum`, collect."""
    process = subprocess.Popen(command, cwd=cwd, env=advisor_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"  # bounded by the test's timeout
        time.sleep(0.1)
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        return process.returncode, "ready\n" + out, err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_writes_a_partial_report_with_the_live_units(
        name: str, tmp_path: Path, program: Callable[[Path, str], Path]) -> None:
    signum = getattr(signal, name)
    script = program(tmp_path / "server.py", BUSY_SERVER)
    bare = stop_when_ready([sys.executable, str(script)], tmp_path, signum)
    assert bare[0] == -signum
    status, out, err = stop_when_ready([sys.executable, "-m", "advisor", "run", "--json", "report.json",
                                        str(script)], tmp_path, signum)
    assert (status, out) == bare[:2], err[-3000:]
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    Report.model_validate(report)
    assert report["run"]["partial"] is True
    assert report["run"]["exit_code"] == 128 + signum
    names = {task["name"]: task for task in report["tasks"]}
    for n in range(3):
        # alive until the signal: at least the 0.3 s before it, mostly waiting on timers
        assert names[f"conn-{n}"]["wall_s"] >= 0.3
        assert names[f"conn-{n}"]["breakdown"]["waiting_s"] >= 0.2
    assert names["__main__.serve"]["count"] == 20
    assert "background" in names and "MainThread" in names


# -- a program that closes its standard streams (as a daemon does) --

CLOSES_STREAMS = {
    "sys.stderr.close()": "import sys\nprint('bye')\nsys.stderr.close()\n",
    "os.close(1), os.close(2)": "import os\nprint('bye', flush=True)\nos.close(2)\nos.close(1)\n",
}


@pytest.mark.parametrize("how", list(CLOSES_STREAMS))
def test_a_program_that_closes_its_streams_keeps_its_status(how: str, compare: Callable[..., Compared]) -> None:
    # advisor cannot print its report there any more: the files are still written, and the
    # exit status stays the program's (it used to become 1, with "lost sys.stderr")
    run = compare(CLOSES_STREAMS[how])
    assert run.profiled.returncode == 0
    assert run.profiled.stdout == "bye\n"
    assert run.report["run"]["exit_code"] == 0
    assert "MainThread" in run.units("thread")


# -- a program that profiles itself with yappi --

OWN_YAPPI = """
    import yappi


    def work():
        return sum(i * i for i in range(20000))


    yappi.set_clock_type("cpu")
    yappi.start()
    for _ in range(20):
        work()
    yappi.stop()
    print("profiled", any(stat.name == "work" for stat in yappi.get_func_stats()))
    yappi.clear_stats()
"""


@pytest.mark.parametrize("mode", [
    "standard", "light",
    pytest.param("deep", marks=pytest.mark.xfail(strict=True, reason=(
        "deep mode is yappi: there is one yappi per process, and a program that sets yappi's clock type "
        "while advisor's stats exist gets yappi's 'clock type cannot be changed' error"))),
])
def test_a_program_that_uses_yappi_itself(mode: str, compare: Callable[..., Compared]) -> None:
    run = compare(OWN_YAPPI, mode=mode)
    assert run.profiled.stdout == "profiled True\n"
    assert run.report["run"]["exit_code"] == 0


# -- forking while advisor's sampler holds its lock --

SLOW_SAMPLER = """
import os

if os.environ.get("ADVISOR_TEST_SLOW_SAMPLER"):
    import time

    import advisor.probes.sampler as sampler

    _add_weights = sampler.add_weights

    def _slow_add_weights(*args):
        time.sleep(0.005)  # called under the sampler's lock: now it holds it a third of the time
        return _add_weights(*args)

    sampler.add_weights = _slow_add_weights
"""

FORKS_IN_A_STEP = """
    import asyncio
    import os
    import time


    async def forks():
        statuses = []
        for _ in range(20):
            started = time.perf_counter()
            while time.perf_counter() - started < 0.01:  # a step long enough to be sampled
                pass
            pid = os.fork()
            if pid == 0:
                return None  # the child finishes the step, and the run, through the probe's hook
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        return statuses


    statuses = asyncio.run(forks())
    if statuses is None:
        print("child", flush=True)
        os._exit(0)
    print("parent", statuses)
"""


def test_a_fork_while_the_sampler_holds_its_lock_does_not_hang_the_child(
        tmp_path: Path, program: Callable[[Path, str], Path]) -> None:
    # the child ends the step in advisor's hook, which takes the sampler's lock: a lock the
    # parent's sampler thread held at the fork used to stay held there forever
    program(tmp_path / "faults" / "sitecustomize.py", SLOW_SAMPLER)
    program(tmp_path / "forks.py", FORKS_IN_A_STEP)
    env = advisor_env({"PYTHONPATH": str(tmp_path / "faults"), "ADVISOR_TEST_SLOW_SAMPLER": "1"})
    # a session of its own, so that a hung child is killed with it
    process = subprocess.Popen([sys.executable, "-m", "advisor", "run", "--json", "report.json", "forks.py"],
                               cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert process.returncode == 0, err[-3000:]
    assert out == "child\n" * 20 + f"parent {[0] * 20}\n"
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["run"]["exit_code"] == 0


SETS_A_LOW_LIMIT = """
    import sys

    sys.setrecursionlimit(45)  # the program's own, low: advisor's report needs more
    print(sys.getrecursionlimit())
"""


def test_the_program_sees_its_own_limit_and_a_low_one_costs_no_report(compare: Callable[..., Compared]) -> None:
    run = compare(SETS_A_LOW_LIMIT)
    assert run.profiled.stdout == "45\n"
    assert "internal error" not in run.profiled.stderr, run.profiled.stderr[-3000:]
    assert run.reports_on_stderr() == 1


COUNTS_ON_ITSELF = """
    import time


    def tick(x):
        tick.calls += 1
        return x + 1


    tick.calls = 0
    made, started = 0, time.perf_counter()
    while time.perf_counter() - started < 1.0:  # hot: standard mode counts its calls a while
        for value in range(1000):
            tick(value)
        made += 1000
    print("lost calls:", made - tick.calls)
"""


def test_a_counted_function_keeps_its_own_attributes(compare: Callable[..., Compared]) -> None:
    # standard mode's counting wrapper copied the function's attribute dict: the increments
    # made through it while it stood in were lost
    run = compare(COUNTS_ON_ITSELF, mode="standard")
    assert run.profiled.stdout == "lost calls: 0\n"
    (tick,) = [entry for entry in run.report["functions"] if entry["function"].endswith(".tick")]
    assert tick["calls"], tick  # it was counted


HOLDS_AND_PICKLES_ITS_FUNCTION = """
    import pickle
    import time


    def work(n):
        total = 0
        for i in range(n):
            total += i * i
        return total


    SAVED = work  # held from the start, as a registry or a task queue would hold it
    failures, identity_lost = 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < 1.5:  # hot: standard mode counts its calls a while
        for _ in range(200):
            work(300)
        try:
            pickle.loads(pickle.dumps(SAVED))  # by reference: the name must still be this object
        except pickle.PicklingError:
            failures += 1
        identity_lost += globals()["work"] is not SAVED
    print("pickling failed:", failures, "name not the function:", identity_lost)
"""


def test_a_counted_function_stays_the_same_object(compare: Callable[..., Compared]) -> None:
    # standard mode counted a hot function's calls by rebinding its name to a wrapper: a
    # reference held from before no longer was what the name gave, and pickling it (a task
    # for a process pool) failed ("it's not the same object as __main__.work") in 250 of
    # 250 tries of this program's window
    run = compare(HOLDS_AND_PICKLES_ITS_FUNCTION, mode="standard")
    assert run.profiled.stdout == "pickling failed: 0 name not the function: 0\n"
    (work,) = [entry for entry in run.report["functions"] if entry["function"].endswith(".work")]
    assert work["calls"], work  # it was counted: the window was open while the program pickled
