"""The request meter's two paths measure a request in a greenlet alike: the C switch hook's
(request_begin / request_end, where it was built) and the meter's Python path. A request
that waits 30 ms in gevent.sleep and then holds the CPU for 20 ms, three times in a row,
in a real traced greenlet: the route's counts, errors and breakdown against those times."""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest

from advisor.api import Profiler
from advisor.embed.meter import RequestMeter
from advisor.probes import greenlet_probe

WAIT_S = 0.03
SPIN_S = 0.02
REQUESTS = 3


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def python_path_only(meter: RequestMeter, capture: Any) -> None:
    meter._fast_begin = meter._fast_end = None
    meter._bound = capture


@pytest.mark.parametrize("path", ["c", "python"])
def test_both_paths_measure_a_request_in_a_greenlet_alike(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "c" and greenlet_probe.SwitchHook is None:
        pytest.skip("the C switch hook was not built")
    if path == "python":
        monkeypatch.setattr(RequestMeter, "_bind", python_path_only)
    profiler = Profiler("light", sample_rate=10.0, calibrate=False)
    profiler.start()
    try:
        meter = RequestMeter(profiler.routes)
        meter.capture = profiler.attach_current_thread()

        def request(error: bool) -> None:
            pending = meter.begin("GET /r")
            assert pending is not None and pending[1] is not None  # the greenlet's record
            gevent.sleep(WAIT_S)
            spin(SPIN_S)
            meter.end(pending, error)

        for index in range(REQUESTS):
            gevent.spawn(request, index == 1).join(timeout=5)
        assert (meter._fast_begin is not None) == (path == "c")
        (route,) = profiler.routes.stats()
    finally:
        profiler.stop()
    assert meter.failed is None
    assert route.count == route.measured == REQUESTS and route.errors == 1
    parts = route.breakdown
    assert REQUESTS * WAIT_S * 0.95 <= parts.waiting_s <= REQUESTS * (WAIT_S + 0.015), parts
    # the spin's wall time is the step's; on a busy machine part of it can be the run queue
    assert REQUESTS * SPIN_S * 0.95 <= parts.compute_s + parts.scheduling_s <= REQUESTS * (SPIN_S + 0.015), parts
    assert parts.io_s == 0.0
    assert abs(parts.total() - route.wall_s) <= 1e-6 + 1e-3 * route.wall_s
    assert route.p50_s >= WAIT_S + SPIN_S
