"""Helpers for the CLI's end-to-end tests: target programs written into tmp dirs, run through
``python -m advisor`` and, for comparison, through the bare ``python`` that advisor claims to
behave like (same interpreter, same environment)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ADVISOR = [sys.executable, "-m", "advisor"]
READY = b"ready\n"
READY_TIMEOUT_S = 20.0
END_TIMEOUT_S = 20.0


def cli_env() -> dict[str, str]:
    """The environment of both advisor and the bare python runs (the root conftest's)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["ADVISOR_DEBUG"] = "1"
    return env


def run_python(args: Sequence[str], cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` without advisor, the reference behaviour."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``advisor ARGS`` (for module-scoped fixtures; tests use the root ``run_advisor``)."""
    return subprocess.run([*ADVISOR, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def bare_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``bare_python(args, cwd)``: the reference run, without advisor."""
    return run_python


@pytest.fixture(scope="session")
def advisor_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``advisor_cli(args, cwd)``: as ``run_advisor``, for module-scoped fixtures."""
    return run_cli


def assert_usage_error(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """advisor's own error: exit 2, nothing on stdout, exactly one line on stderr that starts
    with ``advisor: error:`` (and holds each fragment), no traceback. Returns the line."""
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-4000:])
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""
    assert done.stderr.endswith("\n"), repr(done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("advisor: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="session")
def usage_error() -> Callable[..., str]:
    return assert_usage_error


@dataclass
class Ended:
    """A process stopped by a signal once it printed ``ready``."""

    returncode: int
    stdout: str
    stderr: str


def signal_when_ready(command: Sequence[str], cwd: Path, signum: int, after_s: float = 0.0) -> Ended:
    """Start `command`, wait (bounded) for ``ready`` on its stdout, send `signum`, then collect
    everything; a process that does not end in time is killed and reported by the assertion."""
    process = subprocess.Popen(list(command), cwd=cwd, env=cli_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        seen = b""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while READY not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no 'ready' in time; stdout so far {seen!r}"
            readable, _, _ = select.select([process.stdout], [], [], left)
            if readable:
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    _, errors = process.communicate(timeout=10)
                    raise AssertionError(f"stdout closed before 'ready' (exit {process.returncode}): {seen!r} "
                                         f"{errors.decode()[-3000:]}")
                seen += chunk
        if after_s:
            time.sleep(after_s)
        process.send_signal(signum)
        try:
            rest, errors = process.communicate(timeout=END_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            rest, errors = process.communicate(timeout=10)
            raise AssertionError(f"still running {END_TIMEOUT_S} s after signal {signum}: "
                                 f"{(seen + rest).decode()!r} {errors.decode()[-2000:]!r}") from None
        return Ended(process.returncode, (seen + rest).decode(), errors.decode())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def stop_when_ready() -> Callable[..., Ended]:
    """``stop_when_ready(command, cwd, signum)``: see ``signal_when_ready``."""
    return signal_when_ready

