"""Threads under ``advisor run``: each thread's breakdown against the truth it measured.

(c) a client thread doing blocking socket round trips to a loopback server thread that
replies after 0.1 s (I/O), a thread in time.sleep (waiting), a thread computing (its
compute is its own thread_time). See this folder's conftest for truth and tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import Profiled, assert_adds_up, assert_matches, assert_report_consistent

Profile = Callable[[str], Profiled]

THREADS = ("reader", "napper", "cruncher", "server")


def test_threads_program_did_what_it_was_built_to_do(profile: Profile) -> None:
    threads = profile("threads_mix")
    assert threads.process.returncode == 0, threads.process.stderr[-4000:]
    truth = threads.truth
    assert truth["reader"]["io_s"] >= 0.4
    assert truth["napper"]["waiting_s"] == pytest.approx(0.4, abs=0.05)
    assert truth["cruncher"]["compute_s"] == pytest.approx(0.3, abs=0.01)
    assert truth["server"]["waiting_s"] == pytest.approx(0.4, abs=0.05)


@pytest.mark.parametrize("name", THREADS)
def test_thread_matches_its_truth(profile: Profile, name: str) -> None:
    threads = profile("threads_mix")
    unit = threads.unit(name, "thread")
    assert unit["count"] == 1
    assert unit["blocking_s"] == 0.0
    assert_matches(threads, name, "thread")
    assert_adds_up(unit)


def test_threads_are_what_their_names_say(profile: Profile) -> None:
    threads = profile("threads_mix")
    largest = {name: max(("compute_s", "io_s", "waiting_s"), key=lambda part, name=name:
                         threads.unit(name)["breakdown"][part]) for name in THREADS}
    assert largest == {"reader": "io_s", "napper": "waiting_s", "cruncher": "compute_s", "server": "waiting_s"}
    cruncher = threads.unit("cruncher")
    # a thread's CPU time is read exactly from its own clock
    assert cruncher["breakdown"]["compute_s"] == pytest.approx(threads.truth["cruncher"]["compute_s"], abs=0.02)
    assert cruncher["cpu_s"] == cruncher["breakdown"]["compute_s"]


@pytest.mark.parametrize("program", ["threads_mix"])
def test_every_unit_of_the_report_adds_up(profile: Profile, program: str) -> None:
    assert_report_consistent(profile(program))
