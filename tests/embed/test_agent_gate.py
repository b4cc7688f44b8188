"""The middleware's short way past the agent (its gate): once a route was seen and the agent
has nothing to do per request, a request in a traced greenlet goes from the middleware
straight to the C switch hook. What the gate must keep: the same numbers as the agent's
way, and the agent's way again whenever there is something to do (a deep capture starts
or ends, the meter is disabled, the process forked, a span listener listens), plus one
request in REQUEST_FALL_THROUGH, which checks the process id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from advisor.embed import AdvisorWSGIMiddleware
from advisor.embed import agent as agent_module
from advisor.probes import greenlet_probe
from advisor.span_stats import add_listener

WAIT_S = 0.02
FALL_THROUGH = 256  # REQUEST_FALL_THROUGH in probes/_switch_hook.c

pytestmark = pytest.mark.skipif(greenlet_probe.SwitchHook is None, reason="the C switch hook was not built")


def waits(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/wait":
        gevent.sleep(WAIT_S)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def serve(app: Any, path: str = "/wait") -> bytes:
    """One request, in a greenlet of its own as gevent.pywsgi runs each connection."""
    def request() -> bytes:
        body = app({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda status, headers, exc_info=None: None)
        return b"".join(body)

    return gevent.spawn(request).get(timeout=10)


def measured(app: AdvisorWSGIMiddleware, route: str) -> int:
    """The route's requests (stats() adds up those the C hook left unfolded)."""
    return next((stats.count for stats in app.profiler.routes.stats() if stats.route == route), 0)


class CountedBegin:
    """Counts the requests that take the agent's way."""

    def __init__(self, app: AdvisorWSGIMiddleware) -> None:
        self.calls = 0
        self._begin = app.agent.begin
        app.agent.begin = self  # type: ignore[method-assign]

    def __call__(self, route: str) -> Any:
        self.calls += 1
        return self._begin(route)


@pytest.fixture
def app() -> Iterator[AdvisorWSGIMiddleware]:
    middleware = AdvisorWSGIMiddleware(waits, deep_signal=None)
    try:
        yield middleware
    finally:
        middleware.agent.close()


def test_a_seen_route_takes_the_gate_and_is_measured_the_same(app: AdvisorWSGIMiddleware) -> None:
    counted = CountedBegin(app)
    assert serve(app) == b"ok"
    assert counted.calls == 1 and app.agent.fast is not None  # the first request opened it
    for _ in range(9):
        serve(app)
    assert counted.calls == 1
    stats = {route.route: route for route in app.profiler.routes.stats()}
    route = stats["GET /wait"]
    assert route.count == route.measured == 10
    parts = route.breakdown
    assert 10 * WAIT_S * 0.95 <= parts.waiting_s <= 10 * (WAIT_S + 0.015), parts
    assert abs(parts.total() - route.wall_s) <= 1e-6 + 1e-3 * route.wall_s
    # a route not seen before goes the agent's way once, to be made
    serve(app, "/new")
    serve(app, "/new")
    assert counted.calls == 2


def test_one_request_in_the_fall_through_checks_the_process(app: AdvisorWSGIMiddleware,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[int] = []
    getpid = agent_module.os.getpid

    def counted_getpid() -> int:
        checked.append(1)
        return getpid()

    serve(app, "/fast")
    monkeypatch.setattr(agent_module.os, "getpid", counted_getpid)
    counted = CountedBegin(app)
    for _ in range(2 * FALL_THROUGH):
        serve(app, "/fast")
    assert counted.calls == 2 and len(checked) == 2
    assert measured(app, "GET /fast") == 2 * FALL_THROUGH + 1


def test_a_deep_capture_closes_the_gate_until_its_profiler_is_detached(app: AdvisorWSGIMiddleware) -> None:
    serve(app)
    counted = CountedBegin(app)
    assert app.agent.fast is not None
    assert app.agent.trigger.trigger(0.3)
    assert app.agent.fast is None
    deadline = time.monotonic() + 10
    while app.agent.trigger.active is not None and time.monotonic() < deadline:
        serve(app)
    assert app.agent.trigger.active is None and app.agent.trigger.last_report is not None
    during = counted.calls
    assert during >= 3  # every request during the capture attached its deep profiler
    # the requests after it detach its profiler, then the gate opens again
    for _ in range(5):
        serve(app)
    assert app.agent.fast is not None and not app.agent.trigger.finished
    before = counted.calls
    for _ in range(5):
        serve(app)
    assert counted.calls == before


def test_a_disabled_meter_closes_the_gate_and_the_requests_go_on(app: AdvisorWSGIMiddleware) -> None:
    serve(app)
    assert app.agent.fast is not None
    app.agent.meter.disable(RuntimeError("injected"))
    assert app.agent.fast is None
    for _ in range(3):
        assert serve(app) == b"ok"
    assert app.agent.fast is None
    assert measured(app, "GET /wait") == 1


def test_a_fork_closes_the_gate(app: AdvisorWSGIMiddleware) -> None:
    serve(app)
    assert app.agent.fast is not None
    counted = CountedBegin(app)
    agent_module._forked()  # what the child runs after a fork
    assert app.agent.fast is None
    serve(app)
    assert counted.calls == 1


def test_a_span_listener_sees_the_requests_of_an_open_gate(app: AdvisorWSGIMiddleware) -> None:
    serve(app)
    assert app.agent.fast is not None
    seen: list[Any] = []

    class Listener:
        def started(self, opened: Any) -> Any:
            seen.append((opened.kind, opened.name))

        def ended(self, finished: Any, handle: Any) -> None:
            pass

    remove = add_listener(Listener())
    try:
        serve(app)
        serve(app)
    finally:
        remove()
    assert measured(app, "GET /wait") == 3
    assert seen == [("request", "GET /wait")] * 2
