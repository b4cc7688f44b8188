"""Server errors per route, as the WSGI middleware reads them: from gevent.pywsgi's handler
(no wrapper around start_response) and through the wrapper any other server gets (the
standard library's wsgiref), for list bodies and streamed ones, on real servers on
127.0.0.1 (port 0)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import gevent
from gevent import socket as gsocket
from gevent.pywsgi import WSGIServer

from advisor.embed import AdvisorWSGIMiddleware

# path -> (status, streamed body?)
ROUTES = {"/ok": ("200 OK", False), "/boom": ("500 Internal Server Error", False),
          "/gone": ("404 Not Found", False), "/stream-fail": ("503 Service Unavailable", True),
          "/stream-ok": ("200 OK", True)}
PLAN = ["/ok", "/boom", "/ok", "/gone", "/stream-fail", "/stream-ok", "/boom"]


def app(environ: dict[str, Any], start_response: Any) -> Any:
    status, streamed = ROUTES[environ["PATH_INFO"]]
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "2")])

    def chunks() -> Iterator[bytes]:
        yield b"o"
        yield b"k"

    return chunks() if streamed else [b"ok"]


def errors_by_route(middleware: AdvisorWSGIMiddleware) -> dict[str, tuple[int, int]]:
    return {stat.route: (stat.count, stat.errors) for stat in middleware.agent.profiler.routes.stats()}


EXPECTED = {"GET /ok": (2, 0), "GET /boom": (2, 2), "GET /gone": (1, 0), "GET /stream-fail": (1, 1),
            "GET /stream-ok": (1, 0)}


def test_server_errors_counted_under_gevent_pywsgi() -> None:
    middleware = AdvisorWSGIMiddleware(app, deep_signal=None)
    server = WSGIServer(("127.0.0.1", 0), middleware, log=None)
    server.start()
    try:
        def client() -> None:
            stream = gsocket.create_connection(("127.0.0.1", server.server_port), timeout=5)
            reader = stream.makefile("rb")
            try:
                for path in PLAN:
                    stream.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    length = 0
                    while (line := reader.readline()) not in (b"\r\n", b""):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    assert reader.read(length) == b"ok"
            finally:
                reader.close()
                stream.close()

        gevent.spawn(client).get(timeout=10)
        gevent.sleep(0.05)  # the last streamed body is closed after its bytes went out
        assert errors_by_route(middleware) == EXPECTED
    finally:
        server.stop(timeout=2)
        middleware.agent.close()


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_server_errors_counted_under_wsgiref() -> None:
    middleware = AdvisorWSGIMiddleware(app, deep_signal=None)
    server = make_server("127.0.0.1", 0, middleware, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for path in PLAN:
            connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
            connection.request("GET", path)
            assert connection.getresponse().read() == b"ok"
            connection.close()
        assert errors_by_route(middleware) == EXPECTED
    finally:
        server.shutdown()
        server.server_close()
        middleware.agent.close()
