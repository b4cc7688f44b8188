"""The CI gate: failing on findings at or above a severity, new ones only against a baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.gate import check
from advisor.profile import Finding, Location, Report, RunInfo


def finding(rule: str, line: int, severity: str) -> Finding:
    return Finding(rule=rule, code="ADV101", severity=severity, message="m",  # type: ignore[arg-type]
                   location=Location(file="app.py", line=line, function="f"), estimated_savings_s=0.1)


def report(*findings: Finding, wall: float = 1.0) -> Report:
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=wall,
                  cpu_s=0.1, exit_code=0)
    return Report(run=run, findings=list(findings))


def test_fails_on_a_finding_at_the_threshold_and_names_it() -> None:
    verdict = check(report(finding("blocking-sleep", 39, "medium")), "medium")
    assert verdict.failed
    assert verdict.reason == "1 finding(s) at or above medium: ADV101 blocking-sleep at app.py:39"


def test_passes_when_findings_are_below_the_threshold() -> None:
    verdict = check(report(finding("blocking-sleep", 39, "low"), finding("x", 2, "info")), "medium")
    assert not verdict.failed
    assert verdict.reason == "ok: no finding at or above medium"


def test_against_a_baseline_only_new_findings_count() -> None:
    old = report(finding("blocking-sleep", 39, "high"))
    same = report(finding("blocking-sleep", 39, "high"))
    assert not check(same, "high", old).failed
    moved = report(finding("blocking-sleep", 40, "high"), finding("blocking-sleep", 39, "high"))
    verdict = check(moved, "high", old)
    assert verdict.failed and verdict.reason.startswith("1 new finding(s) at or above high")


@pytest.mark.parametrize(("wall", "failed"), [(1.19, False), (1.21, True)])
def test_max_regression_on_wall_time(wall: float, failed: bool) -> None:
    verdict = check(report(wall=wall), "high", report(wall=1.0), max_regression_pct=20.0)
    assert verdict.failed is failed


def test_cli_exit_statuses(tmp_path: Path) -> None:
    bad, old = tmp_path / "new.json", tmp_path / "old.json"
    bad.write_text(report(finding("blocking-sleep", 39, "high")).model_dump_json())
    old.write_text(report(finding("blocking-sleep", 39, "high")).model_dump_json())

    def advisor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "advisor", *args], capture_output=True, text=True, timeout=60)

    failing = advisor("check", str(bad), "--fail-on", "high")
    assert failing.returncode == 3 and failing.stderr.count("\n") == 1
    assert advisor("check", str(bad), "--baseline", str(old), "--fail-on", "high").returncode == 0
    usage = advisor("check", str(bad), "--fail-on", "high", "--max-regression", "5")
    assert usage.returncode == 2 and usage.stderr.startswith("advisor: error: --max-regression needs --baseline")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([1, 2]))
    assert advisor("check", str(broken), "--fail-on", "high").returncode == 2


@pytest.mark.parametrize(("allowance", "message"), [
    ("nan", "must be a percentage of 0 or more, not 'nan'"),  # NaN compares false: every run passed
    ("inf", "must be a percentage of 0 or more, not 'inf'"),
    ("-5", "must be a percentage of 0 or more, not '-5'"),  # an unchanged run failed
    ("ten", "not a number: 'ten'"),
])
def test_a_regression_allowance_that_is_no_percentage_is_a_usage_error(
        tmp_path: Path, allowance: str, message: str) -> None:
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    new.write_text(report(wall=10.0).model_dump_json())
    old.write_text(report(wall=1.0).model_dump_json())
    done = subprocess.run([sys.executable, "-m", "advisor", "check", str(new), "--fail-on", "high", "--baseline",
                           str(old), "--max-regression", allowance], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"advisor: error: argument --max-regression: {message}\n"


def test_a_baseline_without_wall_time_cannot_measure_a_regression(tmp_path: Path) -> None:
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    new.write_text(report(wall=10.0).model_dump_json())
    old.write_text(report(wall=0.0).model_dump_json())
    done = subprocess.run([sys.executable, "-m", "advisor", "check", str(new), "--fail-on", "high", "--baseline",
                           str(old), "--max-regression", "5"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == (f"advisor: error: {old}: its run.wall_s is 0: "
                           "no wall time to measure a regression against\n")
