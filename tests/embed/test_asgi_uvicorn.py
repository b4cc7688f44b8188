"""The ASGI middleware under a real uvicorn server on 127.0.0.1 (port 0), driven by a
bounded loopback client: per-route counts and breakdowns against the ground truth, the
finding on the line that held the loop with its route, and the control endpoint."""

from __future__ import annotations

import json
from typing import Any

from .conftest import PROGRAMS, TOKEN, per_request, route_named

TRUTH = str(PROGRAMS / "asgi_truth.py")
PLAN = [("GET", "/wait/20"), ("GET", "/cpu"), ("GET", "/block"), ("GET", "/ok")]


def test_uvicorn_routes_from_ground_truth(server_factory: Any) -> None:
    server = server_factory([TRUTH], env={"ADVISOR_TOKEN": TOKEN})
    seen = server.drive(PLAN, 160)
    assert seen == {f"GET {path} 200": 40 for _, path in PLAN}
    status, body = server.request("GET", "/_advisor/report")
    assert status == 401 and b"Traceback" not in body
    report = server.report()
    routes = {route["route"]: route for route in report["routes"]}
    assert set(routes) == {"GET /wait/{ms}", "GET /cpu", "GET /block", "GET /ok"}  # /wait/20 by its template
    for route in routes.values():
        assert route["count"] == 40
        # the first request runs in a task created before the probes started: not measured
        assert route["measured"] >= 39
        assert abs(sum(route["breakdown"].values()) - route["wall_s"]) <= 0.05 * route["wall_s"] + 1e-4

    wait = routes["GET /wait/{ms}"]
    assert per_request(wait, "waiting_s") >= 0.018  # asyncio.sleep(0.02): a timer wait
    assert per_request(wait, "compute_s") < 0.005
    assert wait["blocking_s"] < 0.05 * wait["wall_s"]

    cpu = routes["GET /cpu"]
    # the CPU the program measured itself; on a busy machine the rest is the run queue
    # (scheduling), never waiting or io
    measured = server.burn_cpu_s
    assert abs(cpu["breakdown"]["compute_s"] - measured) <= 0.3 * measured, (json.dumps(cpu), measured)
    assert cpu["breakdown"]["compute_s"] + cpu["breakdown"]["scheduling_s"] >= 0.9 * cpu["wall_s"], cpu
    assert cpu["breakdown"]["io_s"] + cpu["breakdown"]["waiting_s"] <= 0.1 * cpu["wall_s"], cpu
    assert cpu["hot"] and cpu["hot"][0]["function"].endswith("burn")

    block = routes["GET /block"]
    assert block["p50_s"] >= 0.019
    assert block["blocking_s"] >= 0.25 * block["wall_s"]

    by_rule = {finding["rule"]: finding for finding in report["findings"]}
    assert "blocking-sleep" in by_rule, [f["rule"] for f in report["findings"]]
    assert by_rule["blocking-sleep"]["location"]["function"].endswith("hold_the_loop")
    assert by_rule["blocking-sleep"]["routes"] == ["GET /block"]
    err = server.stop()
    assert "Traceback" not in err, err
    final = sorted(server.dump_dir.glob(f"advisor-{server.process.pid}-light-*.json"))
    assert final, "the last report is written at the lifespan shutdown"
    assert json.loads(final[-1].read_text())["run"]["partial"] is False


def test_sigusr2_deep_capture_under_uvicorn(server_factory: Any) -> None:
    server = server_factory([TRUTH], env={"ADVISOR_TOKEN": TOKEN})
    deep = server.deep_capture_by_signal(PLAN)
    assert deep, "a deep report in the dump directory"
    report = json.loads(deep[0].read_text())
    assert report["run"]["mode"] == "deep"
    assert any(function["function"].endswith("burn") and function["calls"] for function in report["functions"])
    assert server.request("GET", "/ok")[0] == 200  # still serving
    # the always-on probes kept measuring during the deep window: their steps ran through
    # both hooks
    wait = route_named(server.report(), "GET /wait/{ms}")
    assert wait["count"] >= 10 and per_request(wait, "waiting_s") >= 0.018, wait
    err = server.stop()
    assert "Traceback" not in err, err
