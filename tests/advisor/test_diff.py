"""advisor diff: per-unit and per-function changes, findings added and resolved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from advisor.diff import diff_json, diff_reports, diff_text
from advisor.profile import Breakdown, Finding, FunctionStat, Location, Report, RunInfo, Task


def make(wall: float, poller_io: float, findings: list[tuple[str, int]], extra_unit: bool = False) -> Report:
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=wall,
                  cpu_s=0.1, exit_code=0)
    tasks = [Task(id="asyncio:1", name="poller", target="app.poll", kind="asyncio-task", wall_s=1.0, cpu_s=0.1,
                  breakdown=Breakdown(compute_s=0.1, io_s=poller_io, waiting_s=0.9 - poller_io))]
    if extra_unit:
        tasks.append(Task(id="thread:2", name="worker", target="app.work", kind="thread", wall_s=0.5, cpu_s=0.5,
                          breakdown=Breakdown(compute_s=0.5)))
    functions = [FunctionStat(function="app.parse", file="app.py", line=3, self_s=wall / 2, total_s=wall, cpu_s=0.1)]
    found = [Finding(rule=rule, code="ADV101", severity="high", message="m",
                     location=Location(file="app.py", line=line)) for rule, line in findings]
    return Report(run=run, tasks=tasks, functions=functions, findings=found)


def test_units_functions_and_findings_are_compared() -> None:
    old = make(2.0, 0.2, [("blocking-sleep", 39), ("blocking-io", 50)])
    new = make(1.5, 0.5, [("blocking-io", 50), ("cacheable-function", 10)], extra_unit=True)
    diff = diff_reports(old, new)
    poller = next(unit for unit in diff.units if unit.name == "poller")
    assert round(poller.change("io_s"), 6) == 0.3
    assert round(poller.change("waiting_s"), 6) == -0.3
    worker = next(unit for unit in diff.units if unit.name == "worker")
    assert worker.old is None and worker.new is not None
    assert [(f.function, f.old_self_s, f.new_self_s) for f in diff.functions] == [("app.parse", 1.0, 0.75)]
    assert [f["rule"] for f in diff.added] == ["cacheable-function"]
    assert [f["rule"] for f in diff.resolved] == ["blocking-sleep"]
    text = diff_text(diff)
    assert text.startswith("wall 2.000 s -> 1.500 s (-0.500 s)")
    assert "+ ADV101 cacheable-function at app.py:10 [high]" in text
    assert "- ADV101 blocking-sleep at app.py:39 [high]" in text
    assert json.loads(diff_json(diff))["new_wall_s"] == 1.5


def test_cli(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(make(2.0, 0.2, [("blocking-sleep", 39)]).model_dump_json())
    new.write_text(make(1.5, 0.2, []).model_dump_json())
    done = subprocess.run([sys.executable, "-m", "advisor", "diff", str(old), str(new), "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [f["rule"] for f in json.loads(done.stdout)["resolved"]] == ["blocking-sleep"]
    missing = subprocess.run([sys.executable, "-m", "advisor", "diff", str(old), str(tmp_path / "nope.json")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
