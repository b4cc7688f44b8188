"""The sampler's watch (``_stacks.wait_tick``) on a hold clock this test writes itself: a
capsule of a double, as the C switch hook's ``hold_clock`` is. A hold already looked at
waits for ``not_before``; any other hold is looked at once it is long enough; the look
before the one that found a hold comes back with the hub thread's CPU clock then."""

from __future__ import annotations

import ctypes
import threading
import time

import pytest

from advisor.probes import sampler
from advisor.probes.threads import thread_cpu_clock

pytestmark = pytest.mark.skipif(sampler.wait_tick is None, reason="the sampler's watch was not built")

CAPSULE_NAME = b"advisor.probes.hold_clock"
_new_capsule = ctypes.pythonapi.PyCapsule_New
_new_capsule.restype = ctypes.py_object
_new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def hold_clock() -> tuple[ctypes.c_double, object]:
    """A double and a capsule of it under the hook's name (the double must outlive it)."""
    held_since = ctypes.c_double(0.0)
    return held_since, _new_capsule(ctypes.addressof(held_since), CAPSULE_NAME, None)


def test_nothing_held_waits_the_whole_interval() -> None:
    _since, capsule = hold_clock()
    begin = time.monotonic()
    assert sampler.wait_tick(0.05, 0.005, 0.0025, capsule) is False
    assert time.monotonic() - begin >= 0.05


def test_a_new_hold_is_looked_at_once_long_enough_and_the_same_one_not_before_its_time() -> None:
    since, capsule = hold_clock()
    since.value = time.monotonic() - 1.0  # a greenlet has held its hub for a second
    not_before = time.monotonic() + 10.0
    begin = time.monotonic()
    # the hold looked at last (`seen`): not again before not_before, so the interval passes
    assert sampler.wait_tick(0.05, 0.005, 0.0025, capsule, not_before, since.value) is False
    assert time.monotonic() - begin >= 0.05
    # another hold (a new step began since) is looked at within one watch, not_before or not
    found = sampler.wait_tick(1.0, 0.005, 0.0025, capsule, not_before, since.value - 0.5)
    assert found is not False and found[0] == since.value
    assert time.monotonic() - begin < 0.05 + 0.5
    assert found[2] == -1.0  # no CPU clock given


def test_a_hold_is_looked_at_only_once_it_lasted_the_hold_time() -> None:
    since, capsule = hold_clock()
    since.value = time.monotonic() + 0.05  # a step that begins 50 ms from now (as the hook writes)
    begin = time.monotonic()
    found = sampler.wait_tick(2.0, 0.005, 0.02, capsule)
    assert found is not False and time.monotonic() - begin >= 0.05 + 0.02


def test_the_look_before_comes_with_the_threads_cpu_clock() -> None:
    """A thread burns CPU; a step of it begins 30 ms into the wait: the look returned is the
    one before the hold was found, no later than the step's start plus the hold time, and
    the CPU clock read then is the thread's (between its CPU at the start and now)."""
    since, capsule = hold_clock()
    stop = threading.Event()
    ready = threading.Event()
    clock: list[int] = []

    def burn() -> None:
        clock.append(thread_cpu_clock(threading.get_native_id()) or 0)
        ready.set()
        while not stop.is_set():
            sum(range(1000))

    worker = threading.Thread(target=burn)
    worker.start()
    try:
        ready.wait(5)
        cpu_before = time.clock_gettime(clock[0])
        since.value = time.monotonic() + 0.03
        found = sampler.wait_tick(2.0, 0.005, 0.01, capsule, 0.0, 0.0, clock[0])
        cpu_after = time.clock_gettime(clock[0])
    finally:
        stop.set()
        worker.join()
    assert found is not False
    start, looked, looked_cpu = found
    assert start == since.value and looked < start + 0.01
    assert cpu_before <= looked_cpu <= cpu_after


def test_bad_arguments_are_refused() -> None:
    _since, capsule = hold_clock()
    with pytest.raises(ValueError, match="watch must be positive"):
        sampler.wait_tick(-0.001, 0.005, 0.0025, capsule)
    with pytest.raises(ValueError):
        sampler.wait_tick(0.01, 0.005, 0.0025, object())
