"""examples/gevent_server/ end to end: the service under the middleware, driven by a
bounded loopback client; its two deliberate bottlenecks are found, on their lines, with
the routes they slow down, and the per-route breakdown matches what each route does."""

from __future__ import annotations

import json
import os
from typing import Any

from .conftest import REPO, TOKEN, per_request

APP = str(REPO / "examples" / "gevent_server" / "app.py")


def test_example_service_findings_and_routes(server_factory: Any) -> None:
    server = server_factory([APP, "--port", "0"], env={"ADVISOR_TOKEN": TOKEN})
    plan = [("GET", f"/products/{index}") for index in (1, 7, 42)] + [
        ("GET", "/report"), ("POST", "/orders"), ("GET", "/health"), ("GET", "/products/9999")]
    seen = server.drive(plan, 140)
    assert seen["GET /report 200"] == seen["POST /orders 201"] == seen["GET /health 200"] == 20
    assert seen["GET /products/9999 404"] == 20
    report = server.report()
    routes = {route["route"]: route for route in report["routes"]}
    assert {name: route["count"] for name, route in routes.items()} == {
        "GET /products/{id}": 80, "GET /report": 20, "POST /orders": 20, "GET /health": 20}

    products = routes["GET /products/{id}"]
    assert per_request(products, "waiting_s") >= 0.018  # the store's 20 ms cooperative round trip
    assert products["p50_s"] >= 0.019 and products["blocking_s"] < 0.05 * products["wall_s"]
    build = routes["GET /report"]
    assert build["breakdown"]["compute_s"] + build["breakdown"]["scheduling_s"] >= 0.9 * build["wall_s"]
    assert build["hot"][0]["function"].endswith("price_report")
    orders = routes["POST /orders"]
    # the rate limiter's 20 blocking sleeps of 10 ms: the sampler's watch sees each, and the
    # part of the step after its look is the request's, charged when the request ends
    assert orders["blocking_s"] >= 0.75 * 20 * 0.010 and orders["p50_s"] >= 0.009, orders
    probes = {probe["name"]: probe for probe in report["run"]["probes"]}
    assert probes["sampler"]["active"], probes["sampler"]  # it did not stop (it once did)

    # the hub waits for events most of its life: its compute, and the greenlets', fit in
    # the CPU the whole server process used by then (the hub once showed more than all of it)
    process_cpu = process_cpu_s(server.process.pid)
    greenlets = [unit for unit in report["tasks"] if unit["kind"] == "greenlet"]
    (hub,) = [unit for unit in greenlets if unit["name"] == "Hub"]
    assert sum(unit["breakdown"]["compute_s"] for unit in greenlets) <= process_cpu, (process_cpu, greenlets)
    assert hub["breakdown"]["compute_s"] < 0.5 * hub["wall_s"], hub

    findings = {finding["rule"]: finding for finding in report["findings"]}
    overhead = report["run"]["overhead"]
    assert set(findings) >= {"cpu-in-event-loop", "blocking-sleep"}, \
        (list(findings), orders["blocking_s"], orders["measured"], overhead["traced_share"], overhead["sampler_ticks"])
    assert findings["cpu-in-event-loop"]["location"]["function"].endswith("price_report")
    assert findings["cpu-in-event-loop"]["routes"] == ["GET /report"]
    assert findings["blocking-sleep"]["location"]["function"].endswith("rate_limit")
    assert findings["blocking-sleep"]["routes"] == ["POST /orders"]
    assert findings["blocking-sleep"]["location"]["file"] == "examples/gevent_server/app.py"

    err = server.stop()
    assert server.process.returncode == 0 and "Traceback" not in err, err
    final = sorted(server.dump_dir.glob(f"advisor-{server.process.pid}-light-*.json"))
    assert final and json.loads(final[-1].read_text())["run"]["partial"] is False


def process_cpu_s(pid: int) -> float:
    """A process's user and system CPU seconds so far, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_reports_asked_over_http_are_built_off_the_server_s_greenlets(server_factory: Any) -> None:
    # each report is milliseconds of CPU: built in the request's greenlet, it showed as the
    # server's compute (its MainThread's and its request greenlets'), in advisor's code
    server = server_factory([APP, "--port", "0"], env={"ADVISOR_TOKEN": TOKEN, "STORE_LATENCY_S": "0.001"})
    # findings and samples to report: a price report holds the hub ~50 ms a time
    server.drive([("GET", "/health"), ("GET", "/products/3"), ("GET", "/report"), ("POST", "/orders")], 24)
    before, cpu_before = server.report(), process_cpu_s(server.process.pid)
    for _ in range(15):
        server.report()
        server.drive([("GET", "/health")], 2)  # the server serves on between reports
    after, cpu_after = server.report(), process_cpu_s(server.process.pid)
    # the server's CPU meanwhile was mostly the reports' (~10 ms each; 30 requests for /health
    # came between, and the waits: 0.25 of it in all)
    grown = {name: compute(after, name) - compute(before, name) for name in ("MainThread", "greenlets")}
    used = cpu_after - cpu_before
    assert all(seconds < 0.6 * used for seconds in grown.values()), (grown, used)  # 0.9 and more before
    routes = {route["route"] for route in after["routes"]}
    assert routes == {"GET /health", "GET /products/{id}", "GET /report", "POST /orders"}  # the endpoint is no route
    server.stop()


def compute(report: dict[str, Any], name: str) -> float:
    """A thread's compute, or (``greenlets``) all request greenlets' (the hub's left out)."""
    if name == "greenlets":
        return sum(unit["breakdown"]["compute_s"] for unit in report["tasks"]
                   if unit["kind"] == "greenlet" and unit["name"] != "Hub")
    (unit,) = [unit for unit in report["tasks"] if unit["name"] == name]
    return float(unit["breakdown"]["compute_s"])
