"""advisor's own errors: exit status 2, exactly one line on stderr starting ``advisor: error:``,
nothing on stdout, never a traceback; and the target does not run at all (it would leave a
file behind), nor is any report written."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

TARGET = """
    from pathlib import Path

    Path("target-ran").write_text("yes")
    print("target ran")
"""

# (advisor's arguments, what the one line must name)
RUN_ERRORS = {
    "missing-script": (["run", "missing.py"], ["missing.py", "no such file"]),
    "missing-script-after-options": (["run", "--mode", "light", "--json", "r.json", "missing.py", "a"],
                                     ["missing.py"]),
    "directory-without-main": (["run", "emptydir"], ["emptydir", "__main__"]),
    "unknown-option-before-script": (["run", "--bogus", "prog.py"], ["--bogus"]),
    "unknown-option-with-value": (["run", "--bogus", "value", "prog.py"], ["--bogus"]),
    "bad-mode": (["run", "--mode", "bogus", "prog.py"], ["--mode", "bogus"]),
    "bad-mode-joined": (["run", "--mode=bogus", "prog.py"], ["--mode", "bogus"]),
    "bad-format": (["run", "--format", "bogus", "prog.py"], ["--format", "bogus"]),
    "sample-rate-zero": (["run", "--sample-rate", "0", "prog.py"], ["--sample-rate"]),
    "sample-rate-too-high": (["run", "--sample-rate", "1001", "prog.py"], ["--sample-rate"]),
    "sample-rate-not-a-number": (["run", "--sample-rate", "fast", "prog.py"], ["--sample-rate", "fast"]),
    "bad-fail-on": (["run", "--fail-on", "critical", "prog.py"], ["--fail-on", "critical"]),
    "json-into-missing-directory": (["run", "--json", "nodir/r.json", "prog.py"], ["nodir/r.json", "does not exist"]),
    "json-onto-a-directory": (["run", "--json", "emptydir", "prog.py"], ["emptydir", "is a directory"]),
    "option-without-its-value": (["run", "--json"], ["--json"]),
    "no-script": (["run"], ["no script"]),
    "options-but-no-script": (["run", "--mode", "light", "--format", "json"], ["no script"]),
    "dash-m-without-module": (["run", "-m"], ["-m"]),
    "unknown-module": (["run", "-m", "no_such_module_here", "a", "b"], ["no_such_module_here"]),
    "unknown-submodule": (["run", "-m", "pkg.nope"], ["pkg.nope"]),
    "unknown-module-joined": (["run", "-mno_such_module_here"], ["no_such_module_here"]),
    "invalid-module-name": (["run", "-m", "not-a-name"], ["not-a-name"]),
    "relative-module-name": (["run", "-m", ".pkg"], [".pkg"]),
    "unknown-subcommand": (["frobnicate", "prog.py"], ["frobnicate"]),
    "report-without-file": (["report"], ["FILE.json"]),
    "report-bad-format": (["report", "--format", "bogus", "r.json"], ["--format", "bogus"]),
    "unknown-rule": (["rules", "no-such-rule"], ["no-such-rule"]),
}


@pytest.fixture
def workdir(tmp_path: Path, program: Callable[[Path, str], Path]) -> Path:
    program(tmp_path / "prog.py", TARGET)
    program(tmp_path / "pkg" / "__init__.py", "")
    (tmp_path / "emptydir").mkdir()
    return tmp_path


@pytest.mark.parametrize("case", list(RUN_ERRORS))
def test_usage_error_is_one_line_exit_2_and_nothing_runs(
        case: str, workdir: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]],
        usage_error: Callable[..., str]) -> None:
    arguments, fragments = RUN_ERRORS[case]
    before = sorted(path.name for path in workdir.iterdir())
    done = run_advisor(arguments, cwd=workdir)
    usage_error(done, *fragments)
    assert not (workdir / "target-ran").exists()
    assert sorted(path.name for path in workdir.iterdir()) == before  # no report, no temp file


def test_missing_script_message_is_exact(workdir: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]],
                                         usage_error: Callable[..., str]) -> None:
    line = usage_error(run_advisor(["run", "missing.py"], cwd=workdir))
    assert line == "advisor: error: can't open file 'missing.py': no such file or directory"


def test_the_target_runs_once_the_options_are_right(
        workdir: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # the control of the cases above: the same target, good options, does run
    done = run_advisor(["run", "--mode", "light", "--sample-rate", "200", "--format", "json", "prog.py"],
                       cwd=workdir)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout == "target ran\n"
    assert (workdir / "target-ran").read_text() == "yes"
