"""Deep mode's yappi context callbacks in C (_yappi_context.c): the same ids and names as
yappi's own Python callbacks, and no crash when another thread starts, stops and clears
yappi while greenlets run under it (a deep capture's calibration in a server's control
thread). With yappi's Python callbacks the program below crashes within a second, every
time: the profiled thread handed the GIL over inside yappi's callback and came back to
freed tables. It runs in a child process, so that a crash fails the test."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

greenlet = pytest.importorskip("greenlet")
yappi = pytest.importorskip("yappi")
context = pytest.importorskip("advisor.probes._yappi_context")

from advisor.probes.deep import use_c_context_callbacks  # noqa: E402

RACE = textwrap.dedent("""
    import sys, threading, time
    import greenlet, yappi
    from advisor.probes.deep import use_c_context_callbacks

    sys.setswitchinterval(1e-5)
    yappi.set_clock_type("wall")
    yappi.set_context_backend("greenlet")
    assert use_c_context_callbacks(yappi, True)
    stop = time.monotonic() + float(sys.argv[1])
    cycles = [0]


    def churn(depth, parent):
        if depth:
            return churn(depth - 1, parent) + 1
        parent.switch()
        return 0


    def toggle():
        while time.monotonic() < stop:
            yappi.start(builtins=False, profile_threads=True)
            time.sleep(0.0005)
            yappi.stop()
            yappi.clear_stats()
            cycles[0] += 1


    thread = threading.Thread(target=toggle)
    thread.start()
    main = greenlet.getcurrent()
    while time.monotonic() < stop:
        alive = [greenlet.greenlet(churn) for _ in range(8)]
        for index, glet in enumerate(alive):
            glet.switch(3 + 5 * index, main)
        for glet in alive:
            glet.switch()
    thread.join()
    print(cycles[0])
""")


def test_greenlets_survive_yappi_cleared_from_another_thread() -> None:
    run = subprocess.run([sys.executable, "-X", "faulthandler", "-c", RACE, "2.0"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout.split()[-1]) >= 50  # start, stop and clear, again and again


class Named(greenlet.greenlet):  # type: ignore[misc]
    pass


@pytest.fixture(autouse=True)
def yappis_own_callbacks_after() -> object:
    yield None
    yappi.set_context_backend("native_thread")  # yappi's own callbacks again, for other tests


def test_greenlet_ids_and_names_are_yappis() -> None:
    use_c_context_callbacks(yappi, True)
    seen: list[tuple[int, int, str]] = []

    def run() -> None:
        first = context.greenlet_id()
        seen.append((first, context.greenlet_id(), context.greenlet_name()))

    plain, named = greenlet.greenlet(run), Named(run)
    plain.switch()
    named.switch()
    (id_a, again_a, name_a), (id_b, again_b, name_b) = seen
    assert id_a == again_a == plain._yappi_tid and id_b == again_b == named._yappi_tid
    assert id_b != id_a
    assert (name_a, name_b) == ("greenlet", "Named")
    # the next id is the one yappi's own callback would have handed out
    assert yappi.GREENLET_COUNTER() > id_b


def test_thread_names_are_yappis() -> None:
    use_c_context_callbacks(yappi, False)
    names: list[object] = []

    class Worker(threading.Thread):
        def run(self) -> None:
            names.append(context.thread_name())

    worker = Worker()
    worker.start()
    worker.join()
    assert names == ["Worker"]
    assert context.thread_name() == type(threading.current_thread()).__name__
    # a thread threading does not know (yet): None, as yappi's callback says
    import _thread

    unknown: list[object] = []
    done = threading.Event()

    def bare() -> None:
        unknown.append(context.thread_name())
        done.set()

    _thread.start_new_thread(bare, ())
    assert done.wait(10)
    assert unknown == [None]
