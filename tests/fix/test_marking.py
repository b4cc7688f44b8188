"""The engine marks fixable findings and records the digest of the files they point into."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from advisor.engine import analyze
from advisor.fix.marking import mark_fixable
from advisor.profile import BlockingSite, Breakdown, Finding, Location, Report, RunInfo, Task

APP = '''import asyncio
import time


async def poll():
    time.sleep(0.3)


def pause():
    time.sleep(0.3)


async def main():
    await asyncio.gather(poll(), asyncio.to_thread(pause))
'''


def finding(rule: str, line: int, file: str = "app.py") -> Finding:
    return Finding(rule=rule, code="ADV101", severity="high", message="m", location=Location(file=file, line=line))


def test_fixable_is_set_where_the_fixer_applies_and_digests_are_recorded(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    findings = [finding("blocking-sleep", 6), finding("blocking-sleep", 10), finding("lock-contention", 14),
                finding("blocking-sleep", 3, file="gone.py")]
    digests = mark_fixable(findings, cwd=str(tmp_path))
    assert [f.fixable for f in findings] == [True, False, False, False]
    assert digests == {"app.py": "sha256:" + hashlib.sha256(APP.encode()).hexdigest()}


def test_a_plan_is_made_once_per_text_and_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a live server's reports ask about the same file and findings again and again
    from advisor.fix import apply

    planned = []
    real = apply.plan_edits
    monkeypatch.setattr(apply, "plan_edits", lambda *args: planned.append(1) or real(*args))
    (tmp_path / "app.py").write_text(APP + "\n# once\n")
    for _ in range(3):
        findings = [finding("blocking-sleep", 6), finding("blocking-sleep", 10)]
        mark_fixable(findings, cwd=str(tmp_path))
        assert [f.fixable for f in findings] == [True, False]
    assert len(planned) == 1
    findings = [finding("blocking-sleep", 10), finding("blocking-sleep", 6)]  # other findings: planned again
    mark_fixable(findings, cwd=str(tmp_path))
    assert [f.fixable for f in findings] == [False, True] and len(planned) == 2
    (tmp_path / "app.py").write_text(APP.replace("async def poll", "def poll") + "\n# twice\n")  # another text
    findings = [finding("blocking-sleep", 6), finding("blocking-sleep", 10)]
    mark_fixable(findings, cwd=str(tmp_path))
    assert [f.fixable for f in findings] == [False, False] and len(planned) == 3


def test_a_file_libcst_cannot_parse_has_no_fixable_findings(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("async def f(:\n    time.sleep(1)\n")
    findings = [finding("blocking-sleep", 2)]
    assert set(mark_fixable(findings, cwd=str(tmp_path))) == {"app.py"}
    assert not findings[0].fixable


def test_analyze_marks_findings_of_a_real_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the engine runs in the run's directory: findings and digests name files relative to it
    (tmp_path / "app.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    site = BlockingSite(kind="waiting", call="time.sleep", function="app.poll", file="app.py", line=6, seconds=0.3)
    tasks = [Task(id="asyncio:1", name="poller", target="app.poll", kind="asyncio-task", wall_s=0.3, cpu_s=0.0,
                  breakdown=Breakdown(waiting_s=0.3), blocking_s=0.3, blocking=[site]),
             Task(id="asyncio:2", name="other", target="app.other", kind="asyncio-task", wall_s=0.3, cpu_s=0.0,
                  breakdown=Breakdown(scheduling_s=0.3))]
    run = RunInfo(argv=["app.py"], python="3.11", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=0.6,
                  cpu_s=0.0, exit_code=0, cwd=str(tmp_path))
    report = analyze(Report(run=run, tasks=tasks), select=["blocking-sleep"])
    assert [(f.rule, f.location.line, f.fixable) for f in report.findings] == [("blocking-sleep", 6, True)]
    assert report.sources == {"app.py": "sha256:" + hashlib.sha256(APP.encode()).hexdigest()}
