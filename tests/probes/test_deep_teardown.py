"""Deep mode changes yappi's state only where no other thread can be inside its callback.

In a server, a deep capture starts and stops from a control thread while the server's
threads run. yappi frees its tables in clear_stats; a thread cut inside yappi's callback
(by a finalizer that hands the GIL over) came back to them freed: a segfault, seen in the
example gevent server under load with finalizers, 5 of 6 rounds of 25 s. So: with other
threads running, the calibration profiles its own thread only, the end-of-run calibration
is skipped, and the tables are freed at the next capture's start."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

yappi = pytest.importorskip("yappi")

from advisor.probes import deep  # noqa: E402


def profiled() -> int:
    return sum(range(10))


def profile_then_clear() -> None:
    """A capture's end: yappi profiled a function, then the probe clears."""
    probe = deep.DeepProbe()
    probe._yappi = yappi
    yappi.start(builtins=False, profile_threads=False)
    profiled()
    yappi.stop()
    probe.clear()


@pytest.fixture
def other_thread() -> Iterator[threading.Event]:
    """A thread that runs Python code until told to stop."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(100))

    thread = threading.Thread(target=spin, name="spinner")
    thread.start()
    yield stop
    stop.set()
    thread.join()


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """profile_threads of each yappi.start."""
    seen: list[bool] = []
    real = yappi.start

    def start(builtins: bool = False, profile_threads: bool = True, **options: Any) -> None:
        seen.append(profile_threads)
        real(builtins=builtins, profile_threads=profile_threads, **options)

    monkeypatch.setattr(yappi, "start", start)
    return seen


def test_with_other_threads_the_calibration_profiles_its_own_thread_only(other_thread: threading.Event,
                                                                          starts: list[bool]) -> None:
    assert deep.others_run()
    cost = deep._calibrate(yappi, rounds=2_000)
    assert cost.wall_s > 0.0
    assert starts and not any(starts), starts


def test_with_other_threads_the_tables_are_freed_at_the_next_start(other_thread: threading.Event,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cleared: list[int] = []
    real = yappi.clear_stats
    monkeypatch.setattr(yappi, "clear_stats", lambda: (cleared.append(1), real())[1])
    profile_then_clear()
    assert cleared == [] and deep._STALE[0]
    assert not yappi.get_func_stats().empty(), "the tables are kept"
    other_thread.set()
    deep.DeepProbe().prepare()  # the next capture: frees them before anything else
    assert cleared and not deep._STALE[0]


def test_alone_the_tables_are_freed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deep, "others_run", lambda ignored=(): False)
    profile_then_clear()
    assert yappi.get_func_stats().empty() and not deep._STALE[0]


def test_advisors_own_threads_are_not_others(other_thread: threading.Event) -> None:
    """The live status line's thread (in the capture's ignored set) leaves `advisor run`'s
    calibration as it was: on every thread, and measured at the end too."""
    everyone = set(sys._current_frames())
    spinner = next(thread.ident for thread in threading.enumerate() if thread.name == "spinner")
    assert deep.others_run(everyone - {spinner})
    assert not deep.others_run(everyone)
