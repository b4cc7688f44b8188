"""Trace windows: the always-on agent pauses greenlet tracing under load to keep within its
budget, and what it measured stays right.

The decisions are checked on numbers (``TraceWindows``); the pause itself on real greenlets
(a greenlet's waits are charged for the traced time only, none across a pause); and the
whole on a real gevent server on loopback, bounded in requests, whose route breakdowns come
from the requests run inside windows and still match what the app did."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent import socket
from gevent.pywsgi import WSGIServer

from advisor import Profiler
from advisor.embed import AdvisorWSGIMiddleware
from advisor.embed.windows import MIN_CAPACITY, MIN_SHARE, REQUEST_COST_S, SWITCH_COST_S, TraceWindows
from advisor.probes.greenlet_probe import SwitchHook
from advisor.probes.threads import CallerRunDelay

from .conftest import count_handed

needs_c_hook = pytest.mark.skipif(SwitchHook is None, reason="the C switch hook was not built")


# -- the decisions --------------------------------------------------------------------------
def test_a_server_within_budget_is_traced_all_the_time() -> None:
    windows = TraceWindows(budget=0.01, window_s=0.25)
    assert windows.change(0.0, 0, 0) is None and windows.next_change == 0.25
    # 1,000 switches and 100 requests a second: 0.35% of a core
    for second in range(1, 5):
        assert windows.change(second * 0.25, second * 250, second * 25) is None
    assert windows.tracing and windows.share == 1.0 and windows.next_change == 1.25


def test_a_busy_server_pauses_so_that_the_traced_share_meets_the_budget() -> None:
    windows = TraceWindows(budget=0.01, window_s=0.25)
    windows.change(10.0, 0, 0)
    # a window of 0.25 s with 7,500 switches and 2,500 requests: 30,000 + 10,000 a second
    cost = (7_500 * SWITCH_COST_S + 2_500 * REQUEST_COST_S) / 0.25
    assert windows.change(10.25, 7_500, 2_500) == "pause"
    assert windows.share == pytest.approx(0.01 / cost)
    # traced 0.25 s, paused long enough that the traced share is the share decided
    paused = windows.next_change - 10.25
    assert 0.25 / (0.25 + paused) == pytest.approx(windows.share)
    assert windows.change(10.26, 7_500, 2_600) is None  # not yet
    assert windows.change(windows.next_change, 7_500, 9_000) == "resume"
    assert windows.tracing and windows.next_change == pytest.approx(10.25 + paused + 0.25)


def test_a_share_is_never_below_the_floor() -> None:
    windows = TraceWindows(budget=0.001, window_s=0.1)
    windows.change(0.0, 0, 0)
    assert windows.change(0.1, 10_000_000, 1_000_000) == "pause"
    assert windows.share == MIN_SHARE
    assert windows.next_change == pytest.approx(0.1 + 0.1 * (1 - MIN_SHARE) / MIN_SHARE)


def test_a_thread_that_waited_for_a_cpu_is_held_to_the_budget_of_what_it_got() -> None:
    """Two windows at the same rates: in the second the thread waited half its seconds for
    a CPU (a core shared with another worker), so tracing costs twice the share of what it
    could run, and the traced share is halved."""
    alone, shared = TraceWindows(budget=0.01, window_s=0.25), TraceWindows(budget=0.01, window_s=0.25)
    alone.change(0.0, 0, 0, 3.0)
    shared.change(0.0, 0, 0, 3.0)
    assert alone.change(0.25, 750, 250, 3.0) == "pause"  # nothing waited in this window
    assert shared.change(0.25, 750, 250, 3.125) == "pause"  # 0.125 s of its 0.25 s waited
    cost = (750 * SWITCH_COST_S + 250 * REQUEST_COST_S) / 0.25
    assert alone.share == pytest.approx(0.01 / cost)
    assert shared.share == pytest.approx(alone.share / 2)
    # the window's waits only: the 3.0 s waited before it opened are not counted
    unknown = TraceWindows(budget=0.01, window_s=0.25)
    unknown.change(0.0, 0, 0, None)
    assert unknown.change(0.25, 750, 250, 3.125) == "pause"  # no reading at the start: the whole window
    assert unknown.share == pytest.approx(alone.share)


def test_a_starved_thread_is_costed_at_its_floor_of_capacity() -> None:
    windows = TraceWindows(budget=0.01, window_s=0.25)
    windows.change(0.0, 0, 0, 0.0)
    assert windows.change(0.25, 75, 25, 0.2499) == "pause"  # it ran 0.1 ms of its 0.25 s
    cost = (75 * SWITCH_COST_S + 25 * REQUEST_COST_S) / (MIN_CAPACITY * 0.25)
    assert windows.share == pytest.approx(max(MIN_SHARE, 0.01 / cost))


@pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(os, "sched_setaffinity"),
                    reason="run-queue time (schedstat) and pinning: Linux")
def test_the_run_delay_is_the_time_a_thread_waited_for_its_core() -> None:
    """This thread and a busy process pinned to one core: for 0.4 s of this thread's spinning
    it waited for the core about half the time; alone on it, about none."""
    reader = CallerRunDelay()
    cpu = sorted(os.sched_getaffinity(0))[-1]
    before = os.sched_getaffinity(0)

    def spin(seconds: float) -> tuple[float, float]:
        start_delay, start = reader(), time.perf_counter()
        while time.perf_counter() - start < seconds:
            pass
        end_delay = reader()
        assert start_delay is not None and end_delay is not None
        return end_delay - start_delay, time.perf_counter() - start

    os.sched_setaffinity(0, {cpu})  # this thread only
    try:
        alone_waited, alone_wall = spin(0.2)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                               preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        try:
            time.sleep(0.1)
            shared_waited, shared_wall = spin(0.4)
        finally:
            hog.kill()
            hog.wait()
    finally:
        os.sched_setaffinity(0, before)
        reader.close()
    assert 0.2 * shared_wall <= shared_waited <= 0.8 * shared_wall, (shared_waited, shared_wall)
    assert alone_waited < 0.5 * shared_waited, (alone_waited, alone_wall, shared_waited)


def test_a_pause_that_could_not_be_taken_opens_a_new_window() -> None:
    windows = TraceWindows(budget=0.01, window_s=0.25)
    windows.change(0.0, 0, 0)
    assert windows.change(0.25, 100_000, 10_000) == "pause"
    windows.restart(0.3, 100_000, 10_000)
    assert windows.tracing and windows.next_change == pytest.approx(0.55)


@pytest.mark.parametrize("budget", [0.0, -0.5, 1.5])
def test_a_budget_outside_one_core_is_refused(budget: float) -> None:
    with pytest.raises(ValueError, match="trace_budget"):
        AdvisorWSGIMiddleware(lambda environ, start: [b""], trace_budget=budget)


# -- a pause, on real greenlets ---------------------------------------------------------------
@needs_c_hook
def test_a_pause_charges_no_wait_it_did_not_see() -> None:
    """A greenlet sleeps 40 x 5 ms while another pauses the tracing for ~100 ms: the sleeper's
    waits are its traced ones (not the paused 100 ms, not the sleep the pause cut across),
    and the paused time is reported."""
    profiler = Profiler("light", gevent=True, calibrate=False)
    profiler.start()
    probe = profiler.capture.greenlet_probe  # type: ignore[union-attr]
    marks: dict[str, float] = {}

    def sleeper() -> None:
        for _ in range(40):
            gevent.sleep(0.005)

    def pauser() -> None:
        gevent.sleep(0.05)
        marks["paused"] = probe.now()
        marks["could"] = probe.pause_here(marks["paused"])
        gevent.sleep(0.1)
        marks["resumed"] = probe.now()
        probe.resume_here(marks["resumed"])

    try:
        started = time.perf_counter()
        gevent.joinall([gevent.spawn(sleeper), gevent.spawn(pauser)], raise_error=True)
        wall = time.perf_counter() - started
    finally:
        report = profiler.stop()
    assert marks["could"] is True
    paused = marks["resumed"] - marks["paused"]
    assert 0.095 <= paused <= 0.2
    assert report.run.overhead.trace_paused_s == pytest.approx(paused, abs=1e-6)
    assert report.run.overhead.traced_share < 1.0
    units = [task for task in report.tasks if task.target.endswith("sleeper")]
    assert len(units) == 1
    sleeper_unit = units[0]
    waited = sleeper_unit.breakdown.waiting_s + sleeper_unit.breakdown.scheduling_s
    # every traced sleep counts; the pause, and the sleep it cut across, do not
    assert wall - paused - 0.015 <= waited <= wall - paused + 0.002, (waited, wall, paused)


# -- a real gevent server ------------------------------------------------------------------
WAIT_S = 0.004


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/wait":
        gevent.sleep(WAIT_S)  # a remote call: a cooperative wait
    if path == "/error":
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


@pytest.fixture
def served() -> Iterator[tuple[AdvisorWSGIMiddleware, int]]:
    # a budget this small is over at any rate: windows of 50 ms, then pauses of ~2.45 s
    middleware = AdvisorWSGIMiddleware(app, deep_signal=None, trace_budget=1e-6)
    assert middleware.agent.windows is not None
    middleware.agent.windows.window_s = 0.05
    server = WSGIServer(("127.0.0.1", 0), middleware, log=None, error_log=None)
    server.start()
    try:
        yield middleware, server.server_port
    finally:
        server.stop(timeout=5)
        middleware.agent.close()


def keep_alive_client(port: int, paths: list[str], until: float, limit: int | None = None) -> int:
    """Requests, one at a time on one connection, until the time given (or `limit` were
    sent): how many were sent."""
    stream = socket.create_connection(("127.0.0.1", port), timeout=10)
    reader = stream.makefile("rb")
    sent = 0
    try:
        while time.perf_counter() < until and (limit is None or sent < limit):
            path = paths[sent % len(paths)]
            stream.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            status = int(reader.readline().split()[1])
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            assert status == (500 if path == "/error" else 200)
            sent += 1
    finally:
        stream.close()
    return sent


@needs_c_hook
def test_a_paused_server_counts_every_request_and_breaks_down_the_traced_ones(
        served: tuple[AdvisorWSGIMiddleware, int]) -> None:
    middleware, port = served
    until = time.perf_counter() + 3.0  # a window, a pause of ~2.45 s, another window
    clients = [gevent.spawn(keep_alive_client, port, ["/wait", "/ok", "/error"], until) for _ in range(4)]
    sent = sum(gevent.joinall(clients, raise_error=True) and [client.value for client in clients])
    report = middleware.profiler.snapshot()
    routes = {route.route: route for route in report.routes}
    wait, ok, error = routes["GET /wait"], routes["GET /ok"], routes["GET /error"]
    # every request counts, errors too, traced or not
    assert wait.count + ok.count + error.count == sent
    assert error.errors == error.count > 0
    # the breakdowns come from the requests inside windows: some, not all
    assert 0 < wait.measured < wait.count
    assert wait.measured <= 0.5 * wait.count
    # and they are right: each /wait request waited WAIT_S (it is queued a little behind the others)
    per_request = wait.breakdown.waiting_s / wait.measured
    assert 0.95 * WAIT_S <= per_request <= WAIT_S + 0.003, wait.breakdown
    assert abs(wait.breakdown.total() - wait.wall_s) <= 1e-3 * wait.wall_s + 1e-6
    assert wait.p50_s >= WAIT_S  # percentiles of the requests timed
    overhead = report.run.overhead
    assert overhead.trace_paused_s > 1.0 and overhead.traced_share < 0.7


@needs_c_hook
def test_while_paused_one_request_in_256_takes_the_agents_way_and_each_counts_once(
        served: tuple[AdvisorWSGIMiddleware, int]) -> None:
    """600 requests inside a pause: each counts once in its route and once in the hook's
    counter (the C call asks the hook through its capsule, where built, instead of calling
    request_begin: the same counting), and those the counter puts on a multiple of 256 go
    to the agent (which checks the process id): _serve asks the hook again, and so does the
    meter; a route's first request goes to _serve too."""
    middleware, port = served
    handed = count_handed(middleware)
    deadline = time.perf_counter() + 5.0
    keep_alive_client(port, ["/ok"], deadline, limit=1)  # the agent starts at the first request
    probe = middleware.profiler.capture.greenlet_probe  # type: ignore[union-attr]
    while not probe.paused:  # the first window (50 ms) ends at a request
        assert time.perf_counter() < deadline
        keep_alive_client(port, ["/ok"], deadline, limit=20)
    hook = probe._hook
    routes = middleware.profiler.routes
    before = {stat.route: (stat.count, stat.errors) for stat in routes.stats()}
    requests0, handed0 = hook.requests, handed[0]
    # (/error: its empty body goes out with the head, where /ok's waits on a delayed ACK)
    sent = gevent.spawn(keep_alive_client, port, ["/error"], time.perf_counter() + 10.0, 600).get(timeout=30)
    assert sent == 600 and probe.paused  # (a pause lasts ~2.45 s)
    counter, expected = requests0, 0
    for _ in range(sent):
        counter += 1
        if counter % 256 == 0:
            expected += 1
            counter += 2  # _serve's own ask, then the meter's
    assert handed[0] - handed0 == 1 + expected and expected >= 2  # (and the route's first request)
    assert hook.requests == requests0 + sent + 2 * expected
    count, errors = next((stat.count, stat.errors) for stat in routes.stats() if stat.route == "GET /error")
    assert (count, errors) == (600, 600) and "GET /error" not in before


@needs_c_hook
def test_without_a_budget_every_request_is_broken_down() -> None:
    middleware = AdvisorWSGIMiddleware(app, deep_signal=None, trace_budget=None)
    assert middleware.agent.windows is None
    server = WSGIServer(("127.0.0.1", 0), middleware, log=None, error_log=None)
    server.start()
    try:
        until = time.perf_counter() + 30.0  # a bound: 40 requests each take ~0.2 s
        clients = [gevent.spawn(keep_alive_client, server.server_port, ["/wait", "/ok"], until, 40)
                   for _ in range(4)]
        gevent.joinall(clients, raise_error=True)
        report = middleware.profiler.snapshot()
    finally:
        server.stop(timeout=5)
        middleware.agent.close()
    wait = {route.route: route for route in report.routes}["GET /wait"]
    # all but the first request of a connection's greenlet, which started before the probes did
    assert wait.count == 80 and wait.measured >= wait.count - 4
    assert report.run.overhead.traced_share == 1.0 and report.run.overhead.trace_paused_s == 0.0


@needs_c_hook
def test_a_pause_is_the_pausing_threads_own() -> None:
    """Greenlet tracing is per thread: another thread neither sees itself paused nor resumes
    the pausing thread's tracing; that thread's own request resumes it."""
    from gevent.monkey import get_original

    thread_type = get_original("threading", "Thread")  # a real thread, patched or not
    profiler = Profiler("light", gevent=True, calibrate=False)
    profiler.start()
    probe = profiler.capture.greenlet_probe  # type: ignore[union-attr]
    seen: dict[str, Any] = {}

    def elsewhere() -> None:
        seen["paused_there"] = probe.paused_here()
        probe.resume_here(probe.now())  # not its pause: nothing happens
        seen["still_paused"] = probe.paused

    def request() -> None:
        seen["could"] = probe.pause_here(probe.now())
        seen["paused_here"] = probe.paused_here()
        thread = thread_type(target=elsewhere)
        thread.start()
        thread.join()
        probe.resume_here(probe.now())
        seen["resumed"] = not probe.paused

    try:
        gevent.spawn(request).get(timeout=10)
    finally:
        profiler.stop()
    assert seen == {"could": True, "paused_here": True, "paused_there": False, "still_paused": True,
                    "resumed": True}


@needs_c_hook
def test_a_deep_capture_during_a_pause_traces_throughout(served: tuple[AdvisorWSGIMiddleware, int]) -> None:
    """A deep capture started while tracing pauses: the light probes resume first (the deep
    capture's hook chains theirs), trace all through it, and pause again after it."""
    middleware, port = served
    agent = middleware.agent
    keep_alive_client(port, ["/wait", "/ok"], time.perf_counter() + 0.3)  # past the first window
    probe = middleware.profiler.capture.greenlet_probe  # type: ignore[union-attr]
    assert probe.paused
    assert agent.trigger.trigger(0.6)
    client = gevent.spawn(keep_alive_client, port, ["/wait", "/ok"], time.perf_counter() + 0.4)
    client.get(timeout=20)
    assert not probe.paused and agent.trigger.active is not None  # traced while the capture runs
    deadline = time.perf_counter() + 10.0
    while agent.trigger.active is not None and time.perf_counter() < deadline:
        keep_alive_client(port, ["/ok"], time.perf_counter() + 0.05)
    deep = agent.trigger.last_report
    assert deep is not None and deep.run.mode == "deep"
    assert any(route.route == "GET /wait" and route.measured > 0 for route in deep.routes)
    keep_alive_client(port, ["/wait", "/ok"], time.perf_counter() + 0.3)  # settled: a window, then a pause
    assert probe.paused
    assert agent.meter.failed is None and probe.failed is None
