"""Helpers for the embedding tests: start a real server program on 127.0.0.1 port 0 in a
subprocess, wait for the port it writes, and talk to it with a bounded loopback client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).parent / "programs"
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 20.0
TOKEN = "test-token-0123456789"


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    dump_dir: Path

    burn_cpu_s: float = 0.0  # CPU seconds the server says its /cpu requests burnt

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request on a new connection (as many clients do), bounded by a timeout."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            self.burn_cpu_s += float(response.getheader("X-Burn-Cpu") or 0.0)
            return response.status, response.read()
        finally:
            connection.close()

    def report(self) -> dict[str, Any]:
        status, body = self.request("GET", "/_advisor/report", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body
        return json.loads(body)

    def drive(self, plan: Sequence[tuple[str, str]], total: int) -> dict[str, int]:
        """`total` requests, round-robin over `plan`; the status codes seen, by route."""
        seen: dict[str, int] = {}
        for index in range(total):
            method, path = plan[index % len(plan)]
            status, _ = self.request(method, path, body=b"{}" if method == "POST" else None)
            seen[f"{method} {path} {status}"] = seen.get(f"{method} {path} {status}", 0) + 1
        return seen

    def deep_capture_by_signal(self, plan: Sequence[tuple[str, str]]) -> list[Path]:
        """SIGUSR2 once the middleware runs, then traffic until a deep report lands in the
        dump directory (at most 20 s); the deep reports found, oldest first."""
        self.drive(plan, 8)  # the middleware starts with the first request
        os.kill(self.process.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 20.0
        deep: list[Path] = []
        while not deep and time.monotonic() < deadline:
            self.drive(plan, 4)
            deep = sorted(self.dump_dir.glob(f"advisor-{self.process.pid}-deep-*.json"))
        return deep

    def stop(self) -> str:
        """SIGTERM, then the program's stderr (bounded wait)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate(timeout=5)
        return err


def start_server(args: Sequence[str], tmp_path: Path, env: dict[str, str] | None = None) -> Server:
    port_file = tmp_path / "port"
    dump_dir = tmp_path / "dumps"
    environment = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    environment.pop("ADVISOR_TOKEN", None)
    environment.update(env or {})
    process = subprocess.Popen([sys.executable, *args, "--port-file", str(port_file), "--dump-dir", str(dump_dir)],
                               cwd=REPO, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate(timeout=5)
            raise AssertionError(f"the server did not start: {err}")
        time.sleep(0.05)
    return Server(process, int(port_file.read_text()), dump_dir)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """Start servers (`factory(args, env=...)`); every one is stopped after the test."""
    started: list[Server] = []

    def factory(args: Sequence[str], env: dict[str, str] | None = None, name: str = "s") -> Server:
        where = tmp_path / f"{name}{len(started)}"
        where.mkdir()
        server = start_server(args, where, env)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


def per_request(route: dict[str, Any], part: str) -> float:
    return float(route["breakdown"][part]) / max(1, route["measured"])


def route_named(report: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [route for route in report["routes"] if route["route"] == name]
    assert len(matches) == 1, [route["route"] for route in report["routes"]]
    return matches[0]


def run_program(tmp_path: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    """Write `source` as `name` in tmp_path and run it with this Python (a fork, a signal:
    things not to do inside pytest's own process); it must end with status 0."""
    script = tmp_path / name
    script.write_text(source, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def count_handed(middleware: Any) -> list[int]:
    """Count the requests the middleware's call hands to its Python way (``_serve``): the
    list's one item, as they come."""
    handed = [0]
    serve = middleware._serve

    def counted(*args: Any) -> Any:
        handed[0] += 1
        return serve(*args)

    middleware._serve = counted
    return handed
