"""The middleware's two calls measure alike: _gate.c's (a request the agent's gate lets
through, in C) and the Python one (PythonCall, what runs where _gate.c was not built). A
real gevent.pywsgi server on 127.0.0.1 (port 0) in this process, driven over keep-alive
loopback connections: a 20 ms cooperative wait, a 500, a streamed body, an app that
raises, and the control endpoint; the route table each way against the known numbers,
and how many requests the C call handed to the Python one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent import socket
from gevent.pywsgi import WSGIServer

from advisor.embed import wsgi
from advisor.embed.wsgi import AdvisorWSGIMiddleware, PythonCall

from .conftest import count_handed

WAIT_S = 0.02
ROUNDS = 12
TOKEN = "a-long-enough-token"

pytestmark = pytest.mark.skipif(wsgi._GatedCall is None, reason="the C call was not built")


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/raise":
        raise RuntimeError("the app failed")
    if path == "/wait":
        gevent.sleep(WAIT_S)
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (chunk for chunk in (b"a", b"b"))
    start_response("500 Internal Server Error" if path == "/error" else "200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


class PythonMiddleware(AdvisorWSGIMiddleware):
    """The middleware with the Python call, as where _gate.c was not built."""

    __call__ = PythonCall.__call__


def get(stream: socket.socket, reader: Any, path: str, token: str | None = None) -> int:
    """One request on a keep-alive connection: its status code (the body read whole)."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    stream.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode())
    status = int(reader.readline().split()[1])
    length, chunked = 0, False
    while True:
        line = reader.readline()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line.lower().startswith(b"transfer-encoding: chunked"):
            chunked = True
        if line in (b"\r\n", b""):
            break
    if chunked:
        while True:
            size = int(reader.readline().strip(), 16)
            reader.read(size + 2)
            if size == 0:
                break
    else:
        reader.read(length)
    return status


@pytest.fixture(params=["c", "python"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[AdvisorWSGIMiddleware, list[int], str]]:
    kind = AdvisorWSGIMiddleware if request.param == "c" else PythonMiddleware
    # no trace windows: each window's end hands a request to _serve (see windows.py), and
    # this test counts the requests the C call hands over
    middleware = kind(app, deep_signal=None, control_token=TOKEN, trace_budget=None)
    handed = count_handed(middleware)
    server = WSGIServer(("127.0.0.1", 0), middleware, log=None, error_log=None)
    server.start()
    try:
        yield middleware, handed, f"{server.server_port}"
    finally:
        server.stop(timeout=5)
        middleware.agent.close()


def test_both_calls_measure_the_routes_alike(served: tuple[AdvisorWSGIMiddleware, list[int], str]) -> None:
    middleware, handed, port = served
    paths = ["/wait", "/error", "/stream", "/raise", "/ok"]

    def client() -> dict[str, list[int]]:
        stream = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        reader = stream.makefile("rb")
        seen: dict[str, list[int]] = {}
        try:
            for _ in range(ROUNDS):
                for path in paths:
                    if path == "/raise":  # pywsgi answers 500 and closes the connection
                        once = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
                        seen.setdefault(path, []).append(get(once, once.makefile("rb"), path))
                        once.close()
                        continue
                    seen.setdefault(path, []).append(get(stream, reader, path))
            seen["control"] = [get(stream, reader, "/_advisor/report"),
                               get(stream, reader, "/_advisor/report", TOKEN)]
        finally:
            stream.close()
        return seen

    seen = gevent.spawn(client).get(timeout=60)
    assert seen["/error"] == [500] * ROUNDS and seen["/raise"] == [500] * ROUNDS
    assert seen["/wait"] == seen["/stream"] == seen["/ok"] == [200] * ROUNDS
    assert seen["control"] == [401, 200]
    stats = {route.route: route for route in middleware.profiler.routes.stats()}
    assert {name: stats[name].count for name in stats} == {f"GET {path}": ROUNDS for path in paths}
    assert stats["GET /error"].errors == ROUNDS and stats["GET /raise"].errors == ROUNDS
    assert stats["GET /ok"].errors == stats["GET /stream"].errors == 0
    wait = stats["GET /wait"]
    assert wait.measured == ROUNDS
    assert ROUNDS * WAIT_S * 0.95 <= wait.breakdown.waiting_s <= ROUNDS * (WAIT_S + 0.015), wait.breakdown
    assert abs(wait.breakdown.total() - wait.wall_s) <= 1e-6 + 1e-3 * wait.wall_s
    if isinstance(middleware, PythonMiddleware):
        assert handed[0] == ROUNDS * len(paths) + 2
    else:
        # the first request of each route, and the control endpoint's (its path has the
        # prefix); /raise runs on a new connection each time, all in C but the first
        assert handed[0] == len(paths) + 2, handed[0]
