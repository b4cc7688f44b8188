"""Per-unit breakdowns of real programs against the ground truth they measure themselves.

Each program in ``programs/`` is copied with ``groundtruth.py`` into a fresh directory and
run there once per test module with ``advisor run --json r.json PROGRAM`` (through the
``run_advisor`` fixture); the program writes ``truth.json``: per unit, its CPU time
(``thread_time`` around its CPU work), its I/O and waiting (``perf_counter`` around them,
timer waits capped at their nominal length), the time it held its loop in a blocking
call, and its wall time, the rest of which is scheduling. A report's figure matches when
it is within max(15% of the unit's reported wall, 50 ms) of that truth. Nothing here
bounds advisor's own speed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).parent / "programs"
ABSOLUTE_TOLERANCE_S = 0.05
RELATIVE_TOLERANCE = 0.15
PARTS = ("compute_s", "io_s", "waiting_s", "scheduling_s")


def tolerance(wall_s: float) -> float:
    return max(RELATIVE_TOLERANCE * wall_s, ABSOLUTE_TOLERANCE_S)


@dataclass
class Profiled:
    """One program run under ``advisor run --json``: its report and its own ground truth."""

    program: str
    process: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    truth: dict[str, dict[str, float]]
    extra: dict[str, float] = field(default_factory=dict)

    def unit(self, name: str, kind: str | None = None) -> dict[str, Any]:
        matches = [task for task in self.report["tasks"] if task["name"] == name]
        assert len(matches) == 1, f"{name!r} in {[(t['name'], t['kind'], t['count']) for t in self.report['tasks']]}"
        if kind is not None:
            assert matches[0]["kind"] == kind, matches[0]
        return matches[0]

    def units(self, kind: str) -> list[dict[str, Any]]:
        return [task for task in self.report["tasks"] if task["kind"] == kind]

    def mismatches(self, name: str, kind: str, fields: tuple[str, ...] = (*PARTS, "blocking_s"),
                   expected: dict[str, float] | None = None) -> list[str]:
        """Where unit `name` differs from its truth (or `expected`) by more than the tolerance."""
        unit = self.unit(name, kind)
        truth = {**self.truth[name], **(expected or {})}
        allowed = tolerance(unit["wall_s"])
        problems = []
        for what in fields:
            reported = unit["blocking_s"] if what == "blocking_s" else unit["breakdown"][what]
            if abs(reported - truth[what]) > allowed:
                problems.append(f"{name}.{what}: reported {reported:.4f} s, truth {truth[what]:.4f} s "
                                f"± {allowed:.4f} s")
        return problems

    def margins(self, name: str, fields: tuple[str, ...] = (*PARTS, "blocking_s")) -> dict[str, float]:
        """Reported minus truth, per field (for failure messages and the record)."""
        unit = self.unit(name)
        truth = self.truth[name]
        return {what: round((unit["blocking_s"] if what == "blocking_s" else unit["breakdown"][what]) - truth[what], 4)
                for what in fields}


def parts_sum(unit: dict[str, Any]) -> float:
    return float(sum(unit["breakdown"][part] for part in PARTS))


def assert_adds_up(unit: dict[str, Any]) -> None:
    """The contract: a unit's four parts add up to its wall time within 5%."""
    total = parts_sum(unit)
    assert abs(total - unit["wall_s"]) <= 0.05 * unit["wall_s"] + 1e-3, \
        f"{unit['name']}: parts {unit['breakdown']} sum to {total:.4f} s, wall {unit['wall_s']:.4f} s"


def assert_matches(profiled: Profiled, name: str, kind: str, fields: tuple[str, ...] = (*PARTS, "blocking_s"),
                   expected: dict[str, float] | None = None) -> None:
    problems = profiled.mismatches(name, kind, fields, expected)
    assert not problems, "\n".join(problems) + f"\nunit: {profiled.unit(name)}\ntruth: {profiled.truth[name]}"


@pytest.fixture(scope="module")
def _runs() -> dict[str, Profiled]:
    return {}


@pytest.fixture
def profile(run_advisor: Callable[..., subprocess.CompletedProcess[str]], _runs: dict[str, Profiled],
            tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Profiled]:
    """``profile("async_mix")``: programs/async_mix.py under advisor, run once per module."""

    def get(program: str) -> Profiled:
        if program not in _runs:
            directory = tmp_path_factory.mktemp(program)
            for name in (f"{program}.py", "groundtruth.py"):
                shutil.copy(PROGRAMS / name, directory / name)
            process = run_advisor(["run", "--json", "r.json", f"{program}.py"], cwd=directory)
            report_path, truth_path = directory / "r.json", directory / "truth.json"
            assert report_path.is_file(), f"no report (exit {process.returncode}):\n{process.stderr[-4000:]}"
            assert truth_path.is_file(), f"no truth (exit {process.returncode}):\n{process.stderr[-4000:]}"
            truth = json.loads(truth_path.read_text(encoding="utf-8"))
            _runs[program] = Profiled(program, process, json.loads(report_path.read_text(encoding="utf-8")),
                                      truth["units"], truth["extra"])
        return _runs[program]

    return get


def assert_report_consistent(profiled: Profiled) -> None:
    """Every unit of the report, named or not: parts add up, blocking within io + waiting."""
    for task in profiled.report["tasks"]:
        assert_adds_up(task)
        breakdown = task["breakdown"]
        assert task["blocking_s"] <= breakdown["io_s"] + breakdown["waiting_s"] + 1e-5, task
        assert min(*breakdown.values(), task["blocking_s"], task["wall_s"]) >= 0.0, task
