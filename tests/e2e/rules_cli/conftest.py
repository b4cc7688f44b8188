"""The real ``advisor`` command in a subprocess, over copies of the blocking-sleep example pair.

Each test gets its own working directory (so a pyproject.toml there is the one advisor
finds, and nothing of the repository's leaks in) holding ``examples/blocking-sleep/bad.py``
and ``good.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ADVISOR = [sys.executable, "-m", "advisor"]
REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "blocking-sleep"
BAD = "examples/blocking-sleep/bad.py"
GOOD = "examples/blocking-sleep/good.py"


def environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("ADVISOR_", "GEVENT_"))}
    env.update({"PYTHONUNBUFFERED": "1", "ADVISOR_DEBUG": "1"})
    return env


@dataclass
class Done:
    """A finished ``advisor`` command, with the JSON report when one was asked for."""

    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def findings(self, rule: str) -> list[dict[str, Any]]:
        assert self.report is not None, self.stderr[-2000:]
        return [finding for finding in self.report["findings"] if finding["rule"] == rule]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with examples/blocking-sleep/{bad,good}.py."""
    target = tmp_path / "examples" / "blocking-sleep"
    target.mkdir(parents=True)
    for name in ("bad.py", "good.py"):
        shutil.copy(EXAMPLE / name, target / name)
    return tmp_path


@pytest.fixture
def advisor(workdir: Path) -> Callable[..., Done]:
    """``advisor(*args, report=True)``: run advisor in the working directory; with `report`, a
    ``run`` also writes ``--json`` and the parsed report comes back."""
    counter = iter(range(1_000))

    def run(*args: str, report: bool = False, cwd: Path | None = None, timeout: float = 120.0) -> Done:
        tokens: Sequence[str] = args
        path = workdir / f"report-{next(counter)}.json"
        if report:
            assert args[0] == "run"
            tokens = ["run", "--json", str(path), *args[1:]]
        done = subprocess.run([*ADVISOR, *tokens], cwd=cwd or workdir, env=environment(), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        parsed = json.loads(path.read_text(encoding="utf-8")) if report and path.is_file() else None
        return Done(done.returncode, done.stdout, done.stderr, parsed)

    return run
