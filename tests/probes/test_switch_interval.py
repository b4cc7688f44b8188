"""The switch interval the sampler asks for, and gives back.

With one program thread the sampler sets a 10 µs interval (so that its samples land where
the thread spends its time); with more, and once it stops, the program's own interval is
back; an interval the program sets itself is left alone. Python keeps the interval in
whole microseconds, so the 1e-05 set reads back as 9.999999999999999e-06: an equality test
took it for the program's, and the 10 µs stayed after the profiler stopped and in every
thread-rich program.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import advisor
from advisor.probes.sampler import SAMPLING_SWITCH_INTERVAL, is_sampling_interval

PROGRAMS_OWN = 0.004
DEADLINE_S = 10.0


@pytest.fixture
def programs_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(PROGRAMS_OWN)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def until(condition: Callable[[], bool]) -> bool:
    """Wait (spinning, as a program thread does) until `condition` holds: the sampler
    retunes at its ticks."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if condition():
            return True
        sum(range(1000))
    return condition()


def sampling() -> bool:
    return sys.getswitchinterval() == pytest.approx(SAMPLING_SWITCH_INTERVAL, rel=0.01)


def programs() -> bool:
    return sys.getswitchinterval() == pytest.approx(PROGRAMS_OWN)


def test_the_interval_read_back_is_the_samplers() -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(SAMPLING_SWITCH_INTERVAL)
        assert sys.getswitchinterval() != SAMPLING_SWITCH_INTERVAL  # why a tolerance is needed
        assert is_sampling_interval(sys.getswitchinterval())
    finally:
        sys.setswitchinterval(before)
    assert not is_sampling_interval(0.005) and not is_sampling_interval(2e-5)


def test_one_thread_gets_the_short_interval_several_and_the_end_the_programs(programs_interval: None) -> None:
    profiler = advisor.Profiler(mode="light")
    profiler.start()
    release = threading.Event()
    other = threading.Thread(target=release.wait, name="second")
    try:
        assert until(sampling), sys.getswitchinterval()
        other.start()
        assert until(programs), sys.getswitchinterval()  # two threads share the GIL as they would bare
        release.set()
        other.join()
        assert until(sampling), sys.getswitchinterval()
    finally:
        release.set()
        if other.is_alive():
            other.join()
        profiler.stop()
    assert programs(), sys.getswitchinterval()


def test_an_interval_the_program_sets_is_left_alone(programs_interval: None) -> None:
    profiler = advisor.Profiler(mode="light")
    profiler.start()
    try:
        assert until(sampling), sys.getswitchinterval()
        sys.setswitchinterval(0.002)
        ticks = profiler_ticks(profiler)
        assert until(lambda: profiler_ticks(profiler) >= ticks + 3)
        assert sys.getswitchinterval() == pytest.approx(0.002)
    finally:
        profiler.stop()
    assert sys.getswitchinterval() == pytest.approx(0.002)


def profiler_ticks(profiler: advisor.Profiler) -> int:
    capture = profiler.capture
    assert capture is not None
    return capture.sampler.ticks
