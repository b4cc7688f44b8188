"""Shared fixtures: run the real ``advisor`` CLI in a subprocess and read its report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

ADVISOR = [sys.executable, "-m", "advisor"]

# The Ctrl-C tests send SIGINT to the programs they start. A test run started in the
# background by a shell without job control inherits SIGINT ignored, and so would every
# program it starts (Python keeps an inherited "ignore"): those tests would then wait for an
# end that never comes. A handler here is not inherited across exec; the default is.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def advisor_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ADVISOR_DEBUG", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["ADVISOR_DEBUG"] = "1"  # an internal error prints its traceback in the test log
    if extra:
        env.update(extra)
    return env


def write_program(path: Path, source: str) -> Path:
    """Write a dedented program (parents created); returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def program() -> Callable[[Path, str], Path]:
    """``program(path, source)``: write a target program."""
    return write_program


@pytest.fixture
def run_advisor(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``advisor ARGS`` in `cwd` (default: the test's tmp dir); returns the finished process."""

    def run(args: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ADVISOR, *args], cwd=cwd or tmp_path, env=advisor_env(env),
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    return run


def load_report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def read_report() -> Callable[[Path], dict[str, Any]]:
    return load_report


def task_named(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The report's unit with this name (exactly one must exist)."""
    matches = [task for task in report["tasks"] if task["name"] == name]
    assert len(matches) == 1, f"{name!r} in {[t['name'] for t in report['tasks']]}"
    return matches[0]


@pytest.fixture
def unit() -> Callable[[dict[str, Any], str], dict[str, Any]]:
    return task_named
