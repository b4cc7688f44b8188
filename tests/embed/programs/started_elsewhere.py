"""A gevent server whose profiler is started and stopped by other OS threads than the
server's: prints what the report saw as JSON on stdout."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import http.client  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import greenlet  # noqa: E402
from gevent.monkey import get_original  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

import advisor  # noqa: E402
from advisor.embed import AdvisorWSGIMiddleware  # noqa: E402

start_new_thread = get_original("_thread", "start_new_thread")
real_sleep = get_original("time", "sleep")


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    gevent.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def in_another_thread(work: Any) -> Any:
    """Run `work` on a new OS thread and wait for it without blocking the hub."""
    result: list[Any] = []
    start_new_thread(lambda: result.append(work()), ())
    deadline = time.monotonic() + 30.0
    while not result and time.monotonic() < deadline:
        gevent.sleep(0.01)
    return result[0]


def main() -> None:
    profiler = advisor.Profiler()
    in_another_thread(lambda: profiler.start() or True)
    server = WSGIServer(("127.0.0.1", 0), AdvisorWSGIMiddleware(app, profiler=profiler, deep_signal=None), log=None)
    server.start()

    def client(count: int) -> None:
        for _ in range(count):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            connection.request("GET", "/x")
            connection.getresponse().read()
            connection.close()

    gevent.spawn(client, 30).join()
    report = in_another_thread(profiler.stop)
    traced_after_stop = greenlet.gettrace() is not None
    gevent.spawn(client, 2).join()  # the next request drops the stopped probe's trace here
    route = report.routes[0]
    print(json.dumps({
        "route": route.route, "count": route.count, "measured": route.measured,
        "waiting_s": route.breakdown.waiting_s,
        "greenlets": sum(task.count for task in report.tasks if task.kind == "greenlet" and task.name != "Hub"),
        "traced_after_stop": traced_after_stop, "traced_after_requests": greenlet.gettrace() is not None,
    }))
    server.stop()


if __name__ == "__main__":
    main()
