"""Helpers of the fleet tests: run a program of ``programs/`` under ``advisor run`` once per
module (several tests read the same report) and hand back its report and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).parent / "programs"


@dataclass
class Profiled:
    report: dict[str, Any]
    stderr: str
    directory: Path


def profile_program(program: str, directory: Path, *options: str, env: dict[str, str] | None = None) -> Profiled:
    """``advisor run --json report.json OPTIONS programs/PROGRAM`` in `directory`."""
    import os

    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "ADVISOR_DEBUG": "1", **(env or {})}
    done = subprocess.run([sys.executable, "-m", "advisor", "run", "--json", "report.json", *options,
                           str(PROGRAMS / program)], cwd=directory, env=environment, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    report = json.loads((directory / "report.json").read_text(encoding="utf-8"))
    return Profiled(report, done.stderr, directory)


@pytest.fixture(scope="session")
def profile() -> Any:
    """``profile(program, directory, *options)``: see ``profile_program``."""
    return profile_program
