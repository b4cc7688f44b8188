"""Real gevent programs, written by the tests and profiled once per module with ``advisor run``.

Each program is run a single time (module-scoped) so that several tests can check
different facts of the same run, some of them strict-xfail on a known bug, without
paying for the run twice. Ground truth is what the program was written to do (its
sleeps, its server's delay); the tolerance on a time is max(15% of the unit's wall,
50 ms), and nothing here bounds advisor's own speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ADVISOR = [sys.executable, "-m", "advisor"]
ABSOLUTE_TOLERANCE_S = 0.05
RELATIVE_TOLERANCE = 0.15


def tolerance(wall_s: float) -> float:
    return max(RELATIVE_TOLERANCE * wall_s, ABSOLUTE_TOLERANCE_S)


@dataclass
class Profiled:
    """One program profiled by ``advisor run --json``: its report, output and source."""

    report: dict[str, Any]
    source: str
    script: str
    returncode: int
    stdout: str
    stderr: str

    def unit(self, name: str) -> dict[str, Any]:
        matches = [task for task in self.report["tasks"] if task["name"] == name]
        assert len(matches) == 1, f"{name!r} in {[(t['name'], t['kind']) for t in self.report['tasks']]}"
        return matches[0]

    def units(self, kind: str) -> list[dict[str, Any]]:
        return [task for task in self.report["tasks"] if task["kind"] == kind]

    def line_of(self, text: str) -> int:
        """The 1-based line of the program that contains `text` (exactly one must)."""
        lines = [number for number, line in enumerate(self.source.splitlines(), 1) if text in line]
        assert len(lines) == 1, f"{text!r} on lines {lines}"
        return lines[0]

    def findings(self, rule: str) -> list[dict[str, Any]]:
        return [finding for finding in self.report["findings"] if finding["rule"] == rule]

    def probe(self, name: str) -> dict[str, Any]:
        matches = [probe for probe in self.report["run"]["probes"] if probe["name"] == name]
        assert matches, f"no probe {name!r} in {self.report['run']['probes']}"
        return matches[0]


def run_program(directory: Path, source: str, options: tuple[str, ...] = (), env: dict[str, str] | None = None,
                script: str = "prog.py") -> Profiled:
    """Write `source` as `script` in `directory` and profile it there."""
    directory.mkdir(parents=True, exist_ok=True)
    text = textwrap.dedent(source).lstrip("\n")
    (directory / script).write_text(text, encoding="utf-8")
    report_path = directory / "report.json"
    environment = dict(os.environ)
    environment.pop("ADVISOR_DEBUG", None)
    for name in list(environment):
        if name.startswith("GEVENT_"):
            environment.pop(name)
    environment.update({"PYTHONUNBUFFERED": "1", "ADVISOR_DEBUG": "1", **(env or {})})
    done = subprocess.run([*ADVISOR, "run", *options, "--json", str(report_path), script], cwd=directory,
                          env=environment, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert report_path.is_file(), f"no report (exit {done.returncode}):\n{done.stderr[-4000:]}"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return Profiled(report, text, script, done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def profile_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Profiled]]:
    """``profile_once(key, source, *options, env=None)``: the program's run, made at most once
    per module (the key names it)."""
    runs: dict[str, Profiled] = {}

    def run(key: str, source: str, *options: str, env: dict[str, str] | None = None) -> Profiled:
        if key not in runs:
            runs[key] = run_program(tmp_path_factory.mktemp(key), source, options, env)
        return runs[key]

    yield run


@pytest.fixture
def near() -> Callable[[float, float, float, str], None]:
    """``near(actual, expected, wall, what)``: within max(15% of the unit's wall, 50 ms)."""

    def check(actual: float, expected: float, wall: float, what: str) -> None:
        allowed = tolerance(wall)
        assert abs(actual - expected) <= allowed, \
            f"{what}: {actual:.4f} s, expected {expected:.4f} s ± {allowed:.4f} s"

    return check


def parts_sum(unit: dict[str, Any]) -> float:
    return float(sum(unit["breakdown"].values()))


@pytest.fixture
def adds_up() -> Callable[[dict[str, Any]], None]:
    """The contract: a unit's four parts add up to its wall time within 5%."""

    def check(unit: dict[str, Any]) -> None:
        total = parts_sum(unit)
        assert abs(total - unit["wall_s"]) <= 0.05 * unit["wall_s"] + 1e-3, \
            f"{unit['name']}: parts {unit['breakdown']} sum to {total:.4f} s, wall {unit['wall_s']:.4f} s"

    return check
