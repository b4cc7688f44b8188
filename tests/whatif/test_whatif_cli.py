"""``advisor whatif`` on saved reports: the prediction as text and JSON, and bad input as one line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.engine import analyze
from advisor.profile import Report, report_json

from .conftest import finding, gathered_units, report, sleep_site, unit

Runner = Callable[..., subprocess.CompletedProcess[str]]


def two_site_report() -> Report:
    """A poller blocks the loop 0.3 s at each of lines 18 and 20; the ticker needs 0.3 s of its
    own and lost 0.6 s to it (see test_replay for the figures)."""
    return report([unit("poll", wall=0.6, blocked=0.6, blocking=[sleep_site(0.3, 18), sleep_site(0.3, 20)]),
                   unit("tick", wall=0.9, scheduling=0.6), *gathered_units(0.9)], wall=0.9,
                  findings=[finding("blocking-sleep", 18, units=["poll"], savings=0.3),
                            finding("blocking-sleep", 20, units=["poll"], savings=0.3)])


def saved(tmp_path: Path, run: Report, name: str = "report.json") -> Path:
    path = tmp_path / name
    path.write_text(report_json(run), encoding="utf-8")
    return path


def test_one_fix_as_text(run_advisor: Runner, tmp_path: Path) -> None:
    path = saved(tmp_path, two_site_report())
    done = run_advisor(["whatif", str(path), "--fix", "blocking-sleep@app.py:18"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["what-if: blocking-sleep@app.py:18", "run wall: 0.900 s -> 0.600 s (saves 0.300 s, 33%)",
                         "replayed from: the per-unit totals (no step timeline covers these units)"]
    assert "  tick        0.900 s -> 0.600 s (-0.300 s)" in lines


def test_fixes_on_one_critical_path_do_not_add_up(run_advisor: Runner, tmp_path: Path) -> None:
    path = saved(tmp_path, two_site_report())
    done = run_advisor(["whatif", str(path), "--fix", "ADV000@app.py:18", "--fix", "blocking-sleep@./app.py:20",
                        "--format", "json"])
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["savings_s"] == pytest.approx(0.3)
    assert [fix["alone_savings_s"] for fix in answer["fixes"]] == [pytest.approx(0.3), pytest.approx(0.3)]
    assert {unit["unit"]: unit["after_s"] for unit in answer["units"]}["tick"] == pytest.approx(0.3)
    text = run_advisor(["whatif", str(path), "--fix", "blocking-sleep@app.py:18", "--fix",
                        "blocking-sleep@app.py:20"]).stdout
    assert "together they save 0.300 s, not the 0.600 s of the sum: they shorten the same critical path" in text
    twice = run_advisor(["whatif", str(path), "--fix", "blocking-sleep@app.py:18", "--fix", "ADV000@app.py:18",
                         "--format", "json"])
    assert [fix["fix"] for fix in json.loads(twice.stdout)["fixes"]] == ["blocking-sleep@app.py:18"]


@pytest.mark.parametrize(("args", "message"), [
    (["--fix", "blocking-sleep"], "--fix blocking-sleep: expected RULE@FILE:LINE (e.g. blocking-sleep@app.py:42)"),
    (["--fix", "blocking-sleep@app.py:x"], "--fix blocking-sleep@app.py:x: expected RULE@FILE:LINE"),
    (["--fix", "blocking-io@app.py:18"], "--fix blocking-io@app.py:18: no such finding in the report (its findings: "
                                         "blocking-sleep@app.py:18, blocking-sleep@app.py:20)"),
    ([], "the following arguments are required: --fix"),
    (["--fix", "blocking-sleep@app.py:18", "--format", "xml"], "argument --format: invalid choice"),
])
def test_bad_fixes_are_one_line_errors(run_advisor: Runner, tmp_path: Path, args: list[str], message: str) -> None:
    path = saved(tmp_path, two_site_report())
    done = run_advisor(["whatif", str(path), *args])
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"advisor: error: {message}")
    assert len(done.stderr.splitlines()) == 1


def test_unreadable_and_untimed_reports_are_one_line_errors(run_advisor: Runner, tmp_path: Path) -> None:
    missing = run_advisor(["whatif", str(tmp_path / "nope.json"), "--fix", "blocking-sleep@app.py:18"])
    assert (missing.returncode, missing.stderr) == (2, f"advisor: error: {tmp_path / 'nope.json'}: no such file\n")
    old = two_site_report()
    for task in old.tasks:
        task.start_s = task.end_s = None
    untimed = run_advisor(["whatif", str(saved(tmp_path, old)), "--fix", "blocking-sleep@app.py:18"])
    assert untimed.returncode == 2
    assert untimed.stderr == ("advisor: error: the report has no timeline of its units (made by an older advisor): "
                              "run it again\n")


POLLER = """\
import asyncio
import time


async def poll():
    for _ in range(4):
        await asyncio.sleep(0)
        time.sleep(0.15)
"""


def test_the_engine_replaces_the_rules_estimate_with_the_replay(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocking-sleep rule on the blocking-sleep run: it estimates the 0.6 s blocked; the
    replay says 0.4 s, still a high share of the 1.0 s run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(POLLER, encoding="utf-8")
    run = report([unit("poll", wall=0.6, blocked=0.6, blocking=[sleep_site(0.6, 8)], target="app.poll"),
                  unit("tick", wall=2.0, scheduling=1.04, count=2, target="app.tick"), *gathered_units(1.0)],
                 wall=1.0)
    [sleep] = analyze(run, select=["blocking-sleep"]).findings
    assert (sleep.rule, sleep.location.line, sleep.severity) == ("blocking-sleep", 8, "high")
    assert sleep.estimated_savings_s == pytest.approx(0.4)
    assert sleep.prediction is not None
    assert sleep.prediction.rule_estimate_s == pytest.approx(0.6)
    gains = {item.unit: item.after_s for item in sleep.prediction.units}
    assert gains["tick() x2"] == pytest.approx(0.96)
