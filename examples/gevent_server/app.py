"""A small catalog service on gevent's WSGI server, profiled by advisor while it serves.

Routes: ``GET /health``; ``GET /products/<id>`` looks a product up in a (simulated) remote
store, a 20 ms cooperative wait; ``GET /report`` builds a price report in pure Python on
every call, holding the hub for ~50 ms (a CPU bottleneck: every other
request waits behind it); ``POST /orders`` records an order and then calls a legacy
rate limiter that pauses with an unpatched ``time.sleep`` (imported before gevent's
monkey-patching, so it blocks the whole hub: the second bottleneck).

Run it: ``python examples/gevent_server/app.py --port 8080 --dump-dir /tmp/advisor``, send
it traffic, and read the reports written to the dump directory (every ``--dump-every``
seconds, and at exit), or ask the running server for one:
``curl -H "Authorization: Bearer $ADVISOR_TOKEN" 127.0.0.1:8080/_advisor/report``.
"""

from __future__ import annotations

# the legacy rate limiter's import, before gevent patches `time`: this name keeps blocking
from time import sleep

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

from advisor.embed import AdvisorWSGIMiddleware  # noqa: E402
from advisor.embed.windows import DEFAULT_BUDGET  # noqa: E402

STORE_LATENCY_S = float(os.environ.get("STORE_LATENCY_S", "0.02"))  # the benchmark shortens it
PRODUCTS = {number: {"id": number, "name": f"product-{number}", "price": 3 + number % 17} for number in range(1, 600)}
ORDERS: list[dict[str, Any]] = []
PRODUCT_PATH = re.compile(r"^/products/(\d+)$")


def fetch_product(number: int) -> dict[str, Any] | None:
    gevent.sleep(STORE_LATENCY_S)  # the remote store's round trip (cooperative: other requests run)
    return PRODUCTS.get(number)


def price_report() -> dict[str, Any]:
    """Recomputed on every call, in pure Python, while the hub waits."""
    totals: dict[int, float] = {}
    for day in range(3 * 365):
        for number, product in PRODUCTS.items():
            discount = (day * 7 + number * 13) % 11 / 100.0
            totals[number] = totals.get(number, 0.0) + product["price"] * (1.0 - discount)
    return {"days": 3 * 365, "revenue": round(sum(totals.values()), 2)}


def rate_limit() -> None:
    sleep(0.01)  # blocks the hub: no other request runs meanwhile


def respond(start_response: Callable[..., Any], status: str, document: Any) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
    if path == "/health":
        return respond(start_response, "200 OK", {"ok": True})
    match = PRODUCT_PATH.match(path)
    if match and method == "GET":
        product = fetch_product(int(match.group(1)))
        if product is None:
            return respond(start_response, "404 Not Found", {"error": "no such product"})
        return respond(start_response, "200 OK", product)
    if path == "/report" and method == "GET":
        return respond(start_response, "200 OK", price_report())
    if path == "/orders" and method == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        order = json.loads(environ["wsgi.input"].read(size) or b"{}")
        ORDERS.append(order)
        rate_limit()
        return respond(start_response, "201 Created", {"order": len(ORDERS)})
    return respond(start_response, "404 Not Found", {"error": "no such route"})


# the routes' path templates: requests of /products/1 and /products/2 are one route,
# "GET /products/{id}" (a path that matches none is its own, as "GET /health")
ROUTES = ["/products/{id}"]


def trace_budget() -> float | None:
    """``$ADVISOR_TRACE_BUDGET``: the share of a core advisor's tracing may cost (``none``:
    trace every request; unset: advisor's default)."""
    value = os.environ.get("ADVISOR_TRACE_BUDGET", "").strip().lower()
    if not value:
        return DEFAULT_BUDGET
    return None if value in ("none", "off") else float(value)


def create_app() -> Any:
    """The service under advisor's middleware, configured from the environment: for
    gunicorn, ``gunicorn -k gevent -w 4 'app:create_app()'`` (each worker writes its own
    reports to ``$ADVISOR_DUMP_DIR``; ``advisor merge`` combines them)."""
    return AdvisorWSGIMiddleware(app, routes=ROUTES, dump_dir=os.environ.get("ADVISOR_DUMP_DIR"),
                                 dump_interval_s=float(os.environ.get("ADVISOR_DUMP_EVERY", "60")),
                                 control_token=os.environ.get("ADVISOR_TOKEN"), trace_budget=trace_budget())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port (see --port-file)")
    parser.add_argument("--port-file", help="write the port listened on to this file")
    parser.add_argument("--dump-dir", help="write advisor's reports here")
    parser.add_argument("--dump-every", type=float, default=60.0, help="seconds between reports")
    parser.add_argument("--bare", action="store_true", help="serve without advisor (for comparisons)")
    options = parser.parse_args(argv)
    served: Any = app
    if not options.bare:
        served = AdvisorWSGIMiddleware(app, routes=ROUTES, dump_dir=options.dump_dir,
                                       dump_interval_s=options.dump_every,
                                       control_token=os.environ.get("ADVISOR_TOKEN"), trace_budget=trace_budget())
    server = WSGIServer((options.host, options.port), served, log=None)
    server.start()
    if options.port_file:
        with open(options.port_file + ".tmp", "w") as out:
            out.write(str(server.server_port))
        os.replace(options.port_file + ".tmp", options.port_file)
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    server.serve_forever()
    if not options.bare:
        served.agent.close()  # the last report, written to the dump directory
    return 0


if __name__ == "__main__":
    sys.exit(main())
