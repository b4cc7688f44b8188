"""The WSGI middleware under a threaded server (the standard library's wsgiref with a
thread per request): each request is measured on its thread — CPU as compute, a plain
sleep as waiting, and no blocking (a thread that sleeps holds no loop) — and the memory
of the always-on measurement does not grow with the number of requests."""

from __future__ import annotations

import gc
import http.client
import threading
import time
import tracemalloc
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from advisor.embed import AdvisorWSGIMiddleware


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def spin(cpu_seconds: float) -> None:
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        sum(range(100))


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/cpu":
        spin(0.01)
    elif environ["PATH_INFO"] == "/sleep":
        time.sleep(0.02)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@pytest.fixture
def served() -> Iterator[tuple[AdvisorWSGIMiddleware, int]]:
    middleware = AdvisorWSGIMiddleware(app, deep_signal=None)
    server = make_server("127.0.0.1", 0, middleware, server_class=ThreadingServer, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield middleware, server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        middleware.agent.close()


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_thread_per_request_server(served: tuple[AdvisorWSGIMiddleware, int]) -> None:
    middleware, port = served
    for _ in range(20):
        assert get(port, "/cpu") == 200
        assert get(port, "/sleep") == 200
    report = middleware.profiler.snapshot()
    routes = {route.route: route for route in report.routes}
    cpu, sleep = routes["GET /cpu"], routes["GET /sleep"]
    assert cpu.count == sleep.count == 20
    # each request is measured on its thread, but the first one's thread started before the
    # profiler did (it starts at the first request) and is not known to it
    assert cpu.measured >= 19 and sleep.measured == 20
    # the request thread's own CPU clock: 19 or 20 x 10 ms of CPU, exactly
    assert 0.95 * 0.01 * cpu.measured <= cpu.breakdown.compute_s <= 0.2 + 0.01
    assert cpu.breakdown.io_s + cpu.breakdown.waiting_s <= 0.25 * cpu.wall_s
    assert sleep.breakdown.waiting_s >= 0.9 * 20 * 0.02  # 20 x 20 ms asleep
    assert sleep.breakdown.compute_s <= 0.1 * sleep.wall_s
    assert abs(sleep.breakdown.total() - sleep.wall_s) <= 0.01 * sleep.wall_s
    assert sleep.blocking_s == 0.0 and cpu.blocking_s == 0.0


def test_memory_does_not_grow_with_requests() -> None:
    middleware = AdvisorWSGIMiddleware(app, deep_signal=None, max_routes=50)
    environ = {"REQUEST_METHOD": "GET", "REMOTE_ADDR": "127.0.0.1"}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        pass

    def serve(count: int, offset: int) -> None:
        for index in range(count):
            middleware(dict(environ, PATH_INFO=f"/item/{offset + index}"), start_response)

    try:
        serve(2_000, 0)  # every distinct route past the cap counts under "other"
        tracemalloc.start()
        serve(2_000, 2_000)
        gc.collect()  # what is garbage is not kept: count only what lives on
        before = tracemalloc.take_snapshot()
        serve(20_000, 4_000)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        # the sampler's stack tables grow with the distinct (function, line) stacks it meets,
        # bounded by the program's code, not by requests: counted apart, below
        sampler = [tracemalloc.Filter(False, "*/probes/sampler.py"), tracemalloc.Filter(False, "*/probes/records.py")]
        grown = sum(stat.size_diff for stat in after.filter_traces(sampler).compare_to(
            before.filter_traces(sampler), "filename"))
        assert grown < 16 * 1024, f"{grown} bytes more after 20,000 more requests"
        stacks = sum(len(info.record.samples or {}) for info in middleware.profiler.capture.threads.alive.values())
        assert stacks < 2_000
        routes = middleware.profiler.routes.aggregates()
        assert len(routes) == 51
        assert sum(route.count for route in routes) == 24_000
    finally:
        middleware.agent.close()
