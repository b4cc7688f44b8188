"""The WSGI middleware in a real gevent.pywsgi server on 127.0.0.1 (port 0), driven by a
bounded loopback client: per-route counts and breakdowns against the program's ground
truth, findings that name their routes, the control endpoint, SIGUSR2 deep capture, and
the periodic dumps."""

from __future__ import annotations

import json
import time
from typing import Any

from .conftest import PROGRAMS, TOKEN, per_request

TRUTH = str(PROGRAMS / "gevent_truth.py")
PLAN = [("GET", "/wait"), ("GET", "/cpu"), ("GET", "/block"), ("GET", "/ok")]


def test_routes_breakdown_and_findings_from_ground_truth(server_factory: Any) -> None:
    server = server_factory([TRUTH], env={"ADVISOR_TOKEN": TOKEN, "GEVENT_MONITOR_THREAD_ENABLE": "true"})
    seen = server.drive(PLAN, 200)
    assert seen == {f"GET {path} 200": 50 for _, path in PLAN}
    report = server.report()
    assert report["run"]["partial"] is True  # a snapshot: the server goes on
    assert all(probe["active"] for probe in report["run"]["probes"]), report["run"]["probes"]
    routes = {route["route"]: route for route in report["routes"]}
    assert set(routes) == {"GET /wait", "GET /cpu", "GET /block", "GET /ok"}
    for route in routes.values():
        assert route["count"] == route["measured"] == 50
        parts = sum(route["breakdown"].values())
        assert abs(parts - route["wall_s"]) <= 0.05 * route["wall_s"] + 1e-4

    wait = routes["GET /wait"]
    assert per_request(wait, "waiting_s") >= 0.018  # gevent.sleep(0.02) is a cooperative wait
    assert wait["p50_s"] >= 0.019
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
    assert block["blocking_s"] > 0.0  # the unpatched sleep held the hub
    sites = block["blocking"]
    assert any(site["line"] and site["function"].endswith("hold_the_hub") for site in sites), json.dumps(block)

    assert routes["GET /ok"]["p99_s"] < 0.01

    by_rule = {finding["rule"]: finding for finding in report["findings"]}
    assert "blocking-sleep" in by_rule, [f["rule"] for f in report["findings"]]
    assert by_rule["blocking-sleep"]["location"]["function"].endswith("hold_the_hub")
    assert by_rule["blocking-sleep"]["routes"] == ["GET /block"]
    err = server.stop()
    assert "Traceback" not in err, err


def test_control_endpoint_needs_loopback_and_the_token(server_factory: Any) -> None:
    server = server_factory([TRUTH], env={"ADVISOR_TOKEN": TOKEN})
    server.drive([("GET", "/ok")], 5)
    status, body = server.request("GET", "/_advisor/report")
    assert status == 401 and b"token" in body
    for wrong in ({"Authorization": "Bearer not-the-token"}, {"X-Advisor-Token": TOKEN[:-1]},
                  {"Authorization": f"Basic {TOKEN}"}):
        status, body = server.request("GET", "/_advisor/report", headers=wrong)
        assert status in (401, 403), (wrong, status)
        assert b"Traceback" not in body and b"File " not in body and len(body) < 100
    status, body = server.request("GET", "/_advisor/report", headers={"X-Advisor-Token": TOKEN})
    assert status == 200 and json.loads(body)["routes"][0]["route"] == "GET /ok"
    status, body = server.request("POST", "/_advisor/deep?seconds=abc", headers={"X-Advisor-Token": TOKEN})
    assert status == 400 and b"Traceback" not in body
    status, _ = server.request("GET", "/_advisor/nothing", headers={"X-Advisor-Token": TOKEN})
    assert status == 404
    # a deep capture started over HTTP: 202 at once, its report at /_advisor/deep when done
    status, body = server.request("POST", "/_advisor/deep?seconds=0.5", headers={"X-Advisor-Token": TOKEN})
    assert status == 202 and json.loads(body)["seconds"] == 0.5
    status, _ = server.request("POST", "/_advisor/deep?seconds=0.5", headers={"X-Advisor-Token": TOKEN})
    assert status == 409  # one at a time
    deadline = time.monotonic() + 20.0
    while True:
        server.drive(PLAN, 4)
        status, body = server.request("GET", "/_advisor/deep", headers={"X-Advisor-Token": TOKEN})
        if status == 200 or time.monotonic() > deadline:
            break
    assert status == 200 and json.loads(body)["run"]["mode"] == "deep"


def test_control_endpoint_is_off_without_a_token(server_factory: Any) -> None:
    server = server_factory([TRUTH])
    status, body = server.request("GET", "/_advisor/report", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 404 and body == b"no such route\n"  # the app's own answer: advisor is not there


def test_sigusr2_deep_capture_lands_in_the_dump_dir(server_factory: Any) -> None:
    server = server_factory([TRUTH, "--deep-seconds", "1.0"])
    deep = server.deep_capture_by_signal(PLAN)
    assert deep, list(server.dump_dir.iterdir()) if server.dump_dir.exists() else "no dump dir"
    report = json.loads(deep[0].read_text())
    assert report["run"]["mode"] == "deep"
    assert report["functions"], "a deep capture has the deterministic function table"
    assert any(function["function"].endswith("burn") and function["calls"] for function in report["functions"])
    assert server.process.poll() is None  # the server is still serving
    assert server.request("GET", "/ok")[0] == 200
    err = server.stop()
    assert "Traceback" not in err, err


def test_periodic_dumps_rotate_and_the_last_report_is_written_at_exit(server_factory: Any) -> None:
    server = server_factory([TRUTH, "--dump-every", "0.2", "--keep", "3"])
    deadline = time.monotonic() + 20.0
    written = 0
    while time.monotonic() < deadline:
        server.drive(PLAN, 4)
        files = sorted(server.dump_dir.glob(f"advisor-{server.process.pid}-light-*.json"))
        written = max(written, int(files[-1].stem.rsplit("-", 1)[-1])) if files else 0
        if written >= 6:
            break
    assert written >= 6, "six periodic reports"
    files = sorted(server.dump_dir.glob(f"advisor-{server.process.pid}-light-*.json"))
    assert 1 <= len(files) <= 3
    for path in files:
        report = json.loads(path.read_text())  # whole files only: written to a temp name, then renamed
        assert report["schema_version"] == 1 and report["routes"]
    server.stop()
    assert server.process.returncode == 0
    files = sorted(server.dump_dir.glob(f"advisor-{server.process.pid}-light-*.json"))
    assert len(files) <= 3
    last = json.loads(files[-1].read_text())
    assert last["run"]["partial"] is False
    assert sum(route["count"] for route in last["routes"]) >= 24
    assert not [path for path in server.dump_dir.iterdir() if path.name.endswith(".tmp")]
