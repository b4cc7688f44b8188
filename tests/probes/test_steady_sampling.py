"""Steady sampling (an always-on server's): stacks at the steady rate while a gevent hub's
greenlets switch, and a hold of the hub (a blocking call) looked at as soon as the sampler's
watch of the C switch hook's clock sees it, without the GIL in between. The holds' time and
line must come out as at the full rate; the threads' own samples only at the steady ticks;
a program without a hub sampled at the full rate."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import gevent
import pytest

from advisor import Profiler
from advisor.probes import greenlet_probe, sampler

pytestmark = pytest.mark.skipif(greenlet_probe.SwitchHook is None or sampler.wait_tick is None,
                                reason="the C switch hook or the sampler's watch was not built")

HOLDS, HOLD_S = 20, 0.01


def chatter(switches: int) -> None:
    for _ in range(switches):
        gevent.sleep(0)


def holder(blocked: list[float]) -> None:
    for _ in range(HOLDS):
        gevent.sleep(0.02)
        begin = time.perf_counter()
        time.sleep(HOLD_S)  # time's own sleep: the hub is held (this process is not patched)
        blocked.append(time.perf_counter() - begin)


def run(steady_rate: float | None, hold: bool) -> tuple[dict[str, Any], int, int, float, float]:
    """(report, steady ticks, early ticks, wall, blocked seconds the program measured)."""
    profiler = Profiler("light", steady_rate=steady_rate, gevent=True, calibrate=False)
    profiler.start()
    capture = profiler.capture
    assert capture is not None
    blocked: list[float] = []
    begin = time.perf_counter()
    jobs = [gevent.spawn(chatter, 15_000) for _ in range(3)]
    if hold:
        jobs.append(gevent.spawn(holder, blocked))
    gevent.joinall(jobs, timeout=60, raise_error=True)
    wall = time.perf_counter() - begin
    ticks, early = capture.sampler.ticks, capture.sampler.early_ticks
    report = json.loads(profiler.stop().model_dump_json())
    return report, ticks, early, wall, sum(blocked)


def blocking_finding(report: dict[str, Any]) -> dict[str, Any]:
    found = [finding for finding in report["findings"] if finding["rule"] == "blocking-sleep"]
    assert len(found) == 1, [finding["rule"] for finding in report["findings"]]
    return found[0]


def test_holds_are_seen_at_the_full_rate_between_steady_ticks() -> None:
    report, ticks, early, wall, blocked = run(steady_rate=2.0, hold=True)
    # the steady ticks keep their schedule: two a second
    assert ticks <= 2.0 * wall + 1
    # each hold of 10 ms is seen (a tick every 10 ms would see each once, too)
    assert early >= 0.8 * HOLDS
    finding = blocking_finding(report)
    assert finding["location"]["function"].endswith("holder")
    assert finding["location"]["line"] == holder.__code__.co_firstlineno + 4
    # a hold seen is charged from its start: the time is the program's own, not a count of ticks
    assert 0.8 * blocked <= finding["evidence"]["blocked_s"] <= blocked + 0.01, (finding["evidence"], blocked)


def test_without_holds_only_the_steady_ticks_are_taken() -> None:
    _report, ticks, early, wall, _blocked = run(steady_rate=5.0, hold=False)
    assert early == 0
    assert ticks <= 5.0 * wall + 1


def burner(seconds: float) -> None:
    """Holds the hub with CPU in 20 ms bursts, back to back, for `seconds`."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        burst = time.perf_counter() + 0.02
        while time.perf_counter() < burst:
            pass
        gevent.sleep(0)


def test_the_sampler_lives_through_ticks_that_run_past_the_next_steady_one() -> None:
    """A tick that ends past the next steady tick's time (a loaded machine descheduled the
    sampler; here each tick's listener takes 30 ms, the steady interval 25) left a negative
    wait, which the watch refused, and the sampler stopped: in a busy server, no hold of the
    hub was seen after the first second or two."""
    profiler = Profiler("light", steady_rate=40.0, gevent=True, calibrate=False)
    profiler.start()
    capture = profiler.capture
    assert capture is not None
    capture.sampler.after_tick.append(lambda _now: time.sleep(0.03))
    begin = time.perf_counter()
    gevent.joinall([gevent.spawn(burner, 1.0)], timeout=60, raise_error=True)
    wall = time.perf_counter() - begin
    ticks, early, failed = capture.sampler.ticks, capture.sampler.early_ticks, capture.sampler.failed
    profiler.stop()
    assert failed is None
    # a tick every ~30 ms, steady or early, the whole run long
    assert ticks + early >= 0.5 * wall / 0.03 and ticks >= 5, (ticks, early, wall)


def test_the_full_rate_without_a_steady_rate() -> None:
    report, ticks, early, wall, blocked = run(steady_rate=None, hold=True)
    assert early == 0 and ticks >= 0.5 * 100 * wall
    assert 0.8 * blocked <= blocking_finding(report)["evidence"]["blocked_s"] <= blocked + 0.01


def test_a_program_without_a_hub_is_sampled_at_the_full_rate() -> None:
    """An asyncio server holds no gevent hub: nothing to watch, so every interval is a tick
    (its loop's holds are seen that way)."""
    profiler = Profiler("light", steady_rate=2.0, gevent=False, calibrate=False)
    profiler.start()
    capture = profiler.capture
    assert capture is not None
    begin = time.perf_counter()
    asyncio.run(asyncio.sleep(0.5))
    wall = time.perf_counter() - begin
    ticks = capture.sampler.ticks
    profiler.stop()
    assert capture.greenlet_probe.hold_clock() is None
    assert ticks >= 0.5 * 100 * wall, ticks


def test_steady_rate_is_checked() -> None:
    with pytest.raises(ValueError, match="steady_rate"):
        Profiler("light", sample_rate=50.0, steady_rate=60.0)
