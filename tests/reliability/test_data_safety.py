"""Data safety: a report holds no argument values, environment variables or local variable
contents (standard mode keeps only a hash of each counted call's arguments); report files
are replaced atomically, so an existing one is never left half-written, whether the run is
killed or the write itself fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import advisor_env

TOKEN = "tok-Zq8vLm2Xw9"  # handed to the program only through its environment
PASSWORD = "pw-Hy7Rk3Nd5b"

HANDLES_SECRETS = """
    import os
    import time


    def lookup(token, rounds):
        local_copy = token[::-1] + "-local"  # a local variable holding a secret
        total = 0
        for number in range(rounds):
            total += len(local_copy) * number % 7
        return total


    token = os.environ["APP_TOKEN"]
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < 0.6:  # hot: standard mode counts lookup()'s calls
        lookup(token, 300)
        calls += 1
    print("looked up", calls > 0)
    raise RuntimeError("cannot log in with " + os.environ["APP_PASSWORD"])
"""


@pytest.mark.parametrize("mode", ["standard", "deep"])
def test_reports_hold_no_argument_values_environment_or_locals(
        mode: str, tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    program(tmp_path / "login.py", HANDLES_SECRETS)
    outputs = ["--json", "r.json", "--md", "r.md", "--collapsed", "r.collapsed", "--speedscope", "r.speedscope"]
    done = run_advisor(["run", "--mode", mode, "--format", "json", *outputs, "login.py"],
                       env={"APP_TOKEN": TOKEN, "APP_PASSWORD": PASSWORD})
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stdout == "looked up True\n"
    # the program's own traceback says the password (as it would bare); advisor's report does not
    program_part, report_part = done.stderr.split('{\n  "schema_version"', 1)
    assert PASSWORD in program_part
    report = json.loads('{\n  "schema_version"' + report_part)
    if mode == "standard":
        (lookup,) = [f for f in report["functions"] if f["function"].endswith("lookup")]
        assert lookup["window"]["distinct_args"] == 1  # the arguments were seen: as a hash
    secrets = [TOKEN, TOKEN[::-1], PASSWORD]
    for name in ("r.json", "r.md", "r.collapsed", "r.speedscope"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert text
        for secret in secrets:
            assert secret not in text, (name, secret)
    for secret in secrets:
        assert secret not in report_part


SLOW = """
    import time

    print("ready", flush=True)
    time.sleep(30)
"""


def test_a_killed_run_leaves_the_previous_report_whole(tmp_path: Path, program: Callable[[Path, str], Path]) -> None:
    program(tmp_path / "slow.py", SLOW)
    previous = json.dumps({"schema_version": 1, "note": "the previous run's report"})
    (tmp_path / "report.json").write_text(previous, encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "advisor", "run", "--json", "report.json", "slow.py"],
                               cwd=tmp_path, env=advisor_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        process.send_signal(signal.SIGKILL)  # nothing runs after SIGKILL: no report, no cleanup
        assert process.wait(timeout=20) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert (tmp_path / "report.json").read_text(encoding="utf-8") == previous
    assert sorted(os.listdir(tmp_path)) == ["report.json", "slow.py"]


# replaces the JSON rendering with one that fails after a megabyte was written
FAILING_WRITE = """
import os

if os.environ.get("ADVISOR_TEST_FAIL_WRITE"):
    import advisor.profile

    def _half_written(report):
        return "x" * 1_000_000 + "\\ud800"  # a lone surrogate: utf-8 fails a megabyte in

    advisor.profile.report_json = _half_written
"""


def test_a_write_that_fails_halfway_leaves_the_previous_report_whole(
        tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    program(tmp_path / "faults" / "sitecustomize.py", FAILING_WRITE)
    program(tmp_path / "app.py", "import sys\nprint('done')\nsys.exit(6)\n")
    previous = json.dumps({"schema_version": 1, "note": "the previous run's report"})
    (tmp_path / "report.json").write_text(previous, encoding="utf-8")
    started = time.time()
    done = run_advisor(["run", "--json", "report.json", "app.py"],
                       env={"PYTHONPATH": str(tmp_path / "faults"), "ADVISOR_TEST_FAIL_WRITE": "1"})
    assert done.returncode == 6  # the program's status, whatever happened to the report
    assert done.stdout == "done\n"
    assert "advisor: internal error, no report: UnicodeEncodeError" in done.stderr
    assert (tmp_path / "report.json").read_text(encoding="utf-8") == previous
    assert (tmp_path / "report.json").stat().st_mtime <= started
    assert sorted(path.name for path in tmp_path.iterdir()) == ["app.py", "faults", "report.json"]
