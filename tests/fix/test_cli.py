"""`advisor fix` on saved reports: the diff, --apply, refusals of stale files, bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advisor.profile import Finding, Location, Report, RunInfo, report_json

APP = '''import asyncio
import time


async def poll():
    time.sleep(0.3)  # the loop stalls here


def pause():
    time.sleep(0.3)
'''
FIXED = APP.replace("    time.sleep(0.3)  # the", "    await asyncio.sleep(0.3)  # the")  # pause() keeps time

Run = Callable[..., subprocess.CompletedProcess[str]]


def write_report(where: Path, findings: list[Finding], digests: bool = True, cwd: str = "") -> Path:
    run = RunInfo(argv=["app.py"], python="3.11", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=1.0,
                  cpu_s=0.1, exit_code=0, cwd=cwd or str(where))
    sources = {"app.py": "sha256:" + hashlib.sha256((where / "app.py").read_bytes()).hexdigest()} if digests else {}
    path = where / "report.json"
    path.write_text(report_json(Report(run=run, findings=findings, sources=sources)))
    return path


def finding(rule: str, line: int, **extra: Any) -> Finding:
    return Finding(rule=rule, code=extra.pop("code", "ADV101"), severity="high", message="m",
                   location=Location(file="app.py", line=line), **extra)


def test_the_diff_goes_to_stdout_and_nothing_is_written(tmp_path: Path, run_advisor: Run) -> None:
    (tmp_path / "app.py").write_text(APP)
    write_report(tmp_path, [finding("blocking-sleep", 6), finding("blocking-sleep", 10)])
    done = run_advisor(["fix", "report.json"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("--- a/app.py\n+++ b/app.py\n")
    assert "+    await asyncio.sleep(0.3)  # the loop stalls here\n" in done.stdout
    assert "app.py:10 blocking-sleep: not fixed: the sleep is in the plain function pause()" in done.stderr
    assert "1 fix in 1 file; write them with `advisor fix report.json --apply`" in done.stderr
    assert (tmp_path / "app.py").read_text() == APP


def test_apply_writes_the_fix_then_refuses_the_changed_file(tmp_path: Path, run_advisor: Run) -> None:
    (tmp_path / "app.py").write_text(APP)
    write_report(tmp_path, [finding("blocking-sleep", 6)])
    done = run_advisor(["fix", "report.json", "--apply"])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "app.py").read_text() == FIXED
    assert "applied 1 fix to 1 file" in done.stderr
    again = run_advisor(["fix", "report.json", "--apply"])
    assert again.returncode == 2
    assert again.stderr == ("advisor: error: app.py changed since the run (its content differs from the report's "
                            "digest): run `advisor run` again; nothing was written\n")
    assert (tmp_path / "app.py").read_text() == FIXED


def test_a_file_edited_after_the_run_is_not_diffed_either(tmp_path: Path, run_advisor: Run) -> None:
    (tmp_path / "app.py").write_text(APP)
    write_report(tmp_path, [finding("blocking-sleep", 6)])
    (tmp_path / "app.py").write_text("# a new first line\n" + APP)  # line 6 is no longer the sleep
    done = run_advisor(["fix", "report.json"])
    assert done.returncode == 2 and done.stdout == ""
    assert "app.py changed since the run" in done.stderr


def test_a_report_without_digests_shows_the_diff_but_refuses_to_apply(tmp_path: Path, run_advisor: Run) -> None:
    (tmp_path / "app.py").write_text(APP)
    write_report(tmp_path, [finding("blocking-sleep", 6)], digests=False)
    shown = run_advisor(["fix", "report.json"])
    assert shown.returncode == 0 and "+    await asyncio.sleep(0.3)" in shown.stdout
    assert "the report has no digest of app.py" in shown.stderr
    applied = run_advisor(["fix", "report.json", "--apply"])
    assert applied.returncode == 2
    assert applied.stderr.startswith("advisor: error: the report has no digest of app.py")
    assert len(applied.stderr.splitlines()) == 1
    assert (tmp_path / "app.py").read_text() == APP


def test_relative_files_are_found_from_the_run_directory(tmp_path: Path, run_advisor: Run) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(APP)
    write_report(project, [finding("blocking-sleep", 6)])
    done = run_advisor(["fix", str(project / "report.json"), "--apply"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (project / "app.py").read_text() == FIXED


def test_select_limits_the_rules_and_nothing_fixable_says_so(tmp_path: Path, run_advisor: Run) -> None:
    (tmp_path / "app.py").write_text(APP)
    write_report(tmp_path, [finding("blocking-sleep", 6), finding("lock-contention", 10, code="ADV104")])
    done = run_advisor(["fix", "report.json", "--select", "lock-contention"])
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr == "advisor: nothing to fix: no finding in report.json has an automatic fix\n"
    by_code = run_advisor(["fix", "report.json", "--select", "ADV101"])
    assert by_code.returncode == 0 and "+    await asyncio.sleep(0.3)" in by_code.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, run_advisor: Run) -> None:
    (tmp_path / "app.py").write_text(APP)
    write_report(tmp_path, [finding("blocking-sleep", 6)])
    (tmp_path / "broken.json").write_text("{not json")
    for args, message in ((["fix", "missing.json"], "missing.json: no such file"),
                          (["fix", "broken.json"], "not valid JSON"),
                          (["fix", "report.json", "--select", "no-such-rule"], "unknown rule 'no-such-rule'"),
                          (["fix"], "the following arguments are required")):
        done = run_advisor(args)
        assert done.returncode == 2, args
        assert done.stderr.startswith("advisor: error: ") and message in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_missing_source_file_is_a_refusal_not_a_crash(tmp_path: Path, run_advisor: Run) -> None:
    (tmp_path / "app.py").write_text(APP)
    write_report(tmp_path, [finding("blocking-sleep", 6)])
    (tmp_path / "app.py").unlink()
    done = run_advisor(["fix", "report.json"])
    assert done.returncode == 0
    assert "app.py:6 blocking-sleep: not fixed: app.py is not found" in done.stderr


def test_select_is_not_narrowed_by_the_projects_ignore_list(tmp_path: Path, run_advisor: Run) -> None:
    # the report was made under the configuration already: --select chooses among its findings
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "pyproject.toml").write_text('[tool.advisor]\nignore = ["blocking-sleep"]\n')
    write_report(tmp_path, [finding("blocking-sleep", 6)])
    done = run_advisor(["fix", "report.json", "--select", "blocking-sleep"])
    assert done.returncode == 0 and "+    await asyncio.sleep(0.3)" in done.stdout, done.stderr


def test_a_report_written_before_fixable_and_sources_existed_still_loads(tmp_path: Path, run_advisor: Run) -> None:
    (tmp_path / "app.py").write_text(APP)
    path = write_report(tmp_path, [finding("blocking-sleep", 6)], digests=False)
    document = json.loads(path.read_text())
    del document["sources"]
    for item in document["findings"]:
        del item["fixable"]
    path.write_text(json.dumps(document))
    shown = run_advisor(["fix", "report.json"])
    assert shown.returncode == 0 and "+    await asyncio.sleep(0.3)" in shown.stdout
    assert "no digest of app.py" in shown.stderr
    rendered = run_advisor(["report", "report.json"])
    assert rendered.returncode == 0 and "[*]" not in rendered.stdout
