"""Helpers for the reliability tests: target programs written into the test's tmp dir, run
under ``python -m advisor`` (the root conftest's ``run_advisor``) and, for comparison, by
the bare interpreter with the same environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest


def advisor_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of both runs: the root conftest's (unbuffered, ADVISOR_DEBUG set)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["ADVISOR_DEBUG"] = "1"
    env.update(extra or {})
    return env


def run_python(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` without advisor: the reference behaviour."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=advisor_env(env), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def bare_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``bare_python(args, cwd, env=None)``: the reference run, without advisor."""
    return run_python


def assert_usage_error(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """advisor's own error: exit 2, nothing on stdout, one line ``advisor: error: ...`` on
    stderr holding each fragment, no traceback. Returns the line."""
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-4000:])
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and done.stderr.endswith("\n"), done.stderr[-4000:]
    assert lines[0].startswith("advisor: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
