"""The probes never break the server: a failure in the request path disables measuring,
is logged once, and the request goes on. The control endpoint's answers (off by default,
loopback only, 401/403 without the right token, never a traceback), and the dumps'
rotation and atomic writes."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from advisor.embed import AdvisorWSGIMiddleware
from advisor.embed.control import ControlEndpoint, DeepTrigger, presented_token
from advisor.embed.dump import ReportDumper
from advisor.profile import Report, RunInfo

TOKEN = "a-long-enough-token"


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + environ["PATH_INFO"].encode()]


def call(app: Any, path: str, **environ: Any) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "REMOTE_ADDR": "127.0.0.1", **environ}, start_response)
    data = b"".join(body)
    getattr(body, "close", lambda: None)()
    return seen["status"], seen["headers"], data


def tiny_report() -> Report:
    return Report(run=RunInfo(argv=["x"], python="3.11", cpu_count=2, started_at="", wall_s=1.0, cpu_s=0.5,
                              exit_code=0))


def test_a_failure_in_the_probe_path_disables_measuring_and_the_request_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    app = AdvisorWSGIMiddleware(hello, deep_signal=None)
    try:
        assert call(app, "/one")[2] == b"hello /one"
        assert app.profiler.routes.route("GET /one").count == 1

        def broken(*args: Any) -> Any:
            raise RuntimeError("injected")

        app.agent.meter._unit = broken  # type: ignore[method-assign]
        with caplog.at_level(logging.WARNING, logger="advisor"):
            for _ in range(3):
                status, _, body = call(app, "/two")
                assert status == "200 OK" and body == b"hello /two"
        assert app.agent.meter.failed == "RuntimeError: injected"
        assert len([record for record in caplog.records if "injected" in record.getMessage()]) == 1
        assert app.profiler.routes.route("GET /two").count == 0  # disabled: no longer measured
        assert app.profiler.running  # the probes themselves go on
    finally:
        app.agent.close()


def test_a_probe_that_disables_itself_is_logged_once_and_the_server_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    """The sampler stops at an internal error (its thread cannot log safely): the agent
    says so once in the server's log, from a request, and the report shows it inactive."""
    app = AdvisorWSGIMiddleware(hello, deep_signal=None)
    try:
        assert call(app, "/one")[2] == b"hello /one"
        sampler = app.profiler.capture.sampler

        def broken_tick(*args: Any) -> None:
            raise RuntimeError("injected tick failure")

        sampler.tick = broken_tick  # type: ignore[method-assign]
        deadline = time.monotonic() + 5.0
        while sampler.failed is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sampler.failed == "RuntimeError: injected tick failure"
        with caplog.at_level(logging.WARNING, logger="advisor"):
            for _ in range(600):  # past the gate's fall-through to the agent (one in 256)
                status, _, body = call(app, "/two")
                assert status == "200 OK" and body == b"hello /two"
        logged = [record.getMessage() for record in caplog.records if "injected" in record.getMessage()]
        assert len(logged) == 1 and "sampler probe disabled itself" in logged[0], logged
        assert app.profiler.routes.route("GET /two").count == 600  # requests are still measured
    finally:
        report = app.agent.close()
    assert report is not None
    statuses = {probe.name: probe for probe in report.run.probes}
    assert not statuses["sampler"].active and "injected tick failure" in statuses["sampler"].note


def test_a_failing_route_function_falls_back_to_method_and_path() -> None:
    def bad_route(environ: dict[str, Any]) -> str:
        raise KeyError("no template")

    app = AdvisorWSGIMiddleware(hello, route=bad_route, deep_signal=None)
    try:
        assert call(app, "/x")[2] == b"hello /x"
        assert app.profiler.routes.route("GET /x").count == 1
    finally:
        report = app.agent.close()
    assert report is not None and [route.route for route in report.routes] == ["GET /x"]


def test_the_control_endpoint_is_off_by_default_and_passes_the_path_to_the_app() -> None:
    app = AdvisorWSGIMiddleware(hello, deep_signal=None)
    try:
        status, _, body = call(app, "/_advisor/report", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert status == "200 OK" and body == b"hello /_advisor/report"
    finally:
        app.agent.close()


class Trigger(DeepTrigger):
    def __init__(self) -> None:
        self.started: list[float | None] = []
        self.last_report = None
        self.default_seconds = 10.0

    def trigger(self, seconds: float | None = None) -> bool:
        self.started.append(seconds)
        return len(self.started) == 1


def test_control_answers_by_caller_and_token() -> None:
    trigger = Trigger()
    endpoint = ControlEndpoint(TOKEN, tiny_report, trigger)
    assert endpoint.wants("/_advisor/report") and not endpoint.wants("/_advisorx")
    far = endpoint.handle("GET", "/_advisor/report", "", TOKEN, "10.1.2.3")
    assert far.status == 403  # the right token from outside loopback is still refused
    missing = endpoint.handle("GET", "/_advisor/report", "", None, "127.0.0.1")
    assert missing.status == 401 and ("WWW-Authenticate", 'Bearer realm="advisor"') in missing.headers
    assert endpoint.handle("GET", "/_advisor/report", "", TOKEN + "x", "127.0.0.1").status == 403
    good = endpoint.handle("GET", "/_advisor/report", "", TOKEN, "::1")
    # the report itself is built later, off the request's thread (the agent's answer)
    assert good.status == 200 and good.build is not None and json.loads(good.build())["run"]["argv"] == ["x"]
    assert endpoint.handle("POST", "/_advisor/deep", "seconds=2.5", TOKEN, "127.0.0.1").status == 202
    assert trigger.started == [2.5]
    assert endpoint.handle("POST", "/_advisor/deep", "", TOKEN, "127.0.0.1").status == 409
    assert endpoint.handle("POST", "/_advisor/deep", "seconds=1e9", TOKEN, "127.0.0.1").status == 400
    assert endpoint.handle("GET", "/_advisor/deep", "", TOKEN, "127.0.0.1").status == 404  # none yet
    assert endpoint.handle("DELETE", "/_advisor/report", "", TOKEN, "127.0.0.1").status == 405


def test_control_never_shows_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Report:
        raise ValueError("secret detail in /srv/app/settings.py")

    app = AdvisorWSGIMiddleware(hello, control_token=TOKEN, deep_signal=None)
    app.agent.control.snapshot = broken
    try:
        with caplog.at_level(logging.WARNING, logger="advisor"):
            status, _, body = call(app, "/_advisor/report", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    finally:
        app.agent.close()
    assert status.startswith("500") and body == b"advisor: internal error\n"
    assert "secret detail" in caplog.text  # in the server's log, not in the answer
    with pytest.raises(ValueError, match="8 characters"):
        ControlEndpoint("short", tiny_report, Trigger())


def test_presented_token_forms() -> None:
    assert presented_token("Bearer abc", None) == "abc"
    assert presented_token("bearer  abc ", "zzz") == "abc"
    assert presented_token("Basic abc", "zzz") == "zzz"
    assert presented_token(None, None) is None


def test_dumps_rotate_per_process_and_kind(tmp_path: Path) -> None:
    dumper = ReportDumper(tmp_path, keep=3)
    stranger = tmp_path / "advisor-1-light-20000101T000000-000001.json"  # another worker's
    stranger.write_text("{}")
    written = [dumper.write(tiny_report()) for _ in range(7)]
    deep = dumper.write(tiny_report(), kind="deep")
    assert dumper.files() == written[-3:]
    assert dumper.files("deep") == [deep]
    assert stranger.exists()
    assert all(path.name.startswith(f"advisor-{os.getpid()}-") for path in written)
    assert json.loads(written[-1].read_text())["run"]["argv"] == ["x"]


def test_a_dump_is_whole_or_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dumper = ReportDumper(tmp_path, keep=3)
    first = dumper.write(tiny_report())

    def crash(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        dumper.write(tiny_report())
    monkeypatch.undo()
    assert [path.name for path in tmp_path.iterdir()] == [first.name]  # no half file, no temp file


def test_start_and_stop_from_other_threads_than_the_servers() -> None:
    import subprocess
    import sys

    from .conftest import PROGRAMS, REPO

    done = subprocess.run([sys.executable, str(PROGRAMS / "started_elsewhere.py")], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["route"] == "GET /x" and seen["count"] == 30
    # the server's thread is attached at its first request, measured from the second on
    assert seen["measured"] >= 29 and seen["waiting_s"] >= 0.9 * 0.01 * seen["measured"]
    assert seen["greenlets"] >= 29
    # stopped from another thread, the trace function leaves the server's thread at its next request
    assert seen["traced_after_stop"] and not seen["traced_after_requests"]
