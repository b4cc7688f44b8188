"""Bad input to the commands that read saved reports: ``advisor report``, ``diff``, ``check``
and ``merge`` given a truncated, non-JSON, wrong-schema, future-schema, huge (100 MB) or
adversarial file (deep nesting, NaN/Infinity, wrong types, a device that never ends), or a
path that is a directory, missing or unreadable: one line ``advisor: error: ...``, exit 2,
nothing on stdout, and no output file written."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import assert_usage_error

# a valid report, small and hand-written (the contract's example, trimmed)
GOOD: dict[str, Any] = {
    "schema_version": 1,
    "tool": {"name": "advisor", "version": "0.1.0"},
    "run": {"argv": ["app.py"], "mode": "standard", "python": "3.11.7", "cpu_count": 2,
            "started_at": "2026-11-25T08:00:00Z", "wall_s": 1.5, "cpu_s": 0.5, "exit_code": 0, "partial": False},
    "tasks": [{"id": "thread:1", "name": "MainThread", "target": "thread", "kind": "thread", "count": 1,
               "wall_s": 1.5, "cpu_s": 0.5,
               "breakdown": {"compute_s": 0.5, "io_s": 0.0, "waiting_s": 1.0, "scheduling_s": 0.0}}],
    "functions": [],
    "findings": [],
}
GOOD_TEXT = json.dumps(GOOD, indent=2)


def changed(path: tuple[str | int, ...], value: Any) -> str:
    document = json.loads(GOOD_TEXT)
    where: Any = document
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    return json.dumps(document)


def write_huge(path: Path) -> None:
    """100 MB that starts like a report: a sparse file, so the test writes no 100 MB."""
    with path.open("wb") as out:
        out.write(GOOD_TEXT[:-2].encode() + b', "padding": "')
        out.truncate(100 * 1024 * 1024)


# name -> (how to make the file, what the one line must say)
BAD: dict[str, tuple[Callable[[Path], object], str]] = {
    "truncated": (lambda p: p.write_text(GOOD_TEXT[: len(GOOD_TEXT) // 2]), "not valid JSON"),
    "not-json": (lambda p: p.write_text("<html>not a report</html>\n"), "not valid JSON"),
    "empty": (lambda p: p.write_text(""), "not valid JSON"),
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 8), "cannot read"),
    "wrong-schema": (lambda p: p.write_text(json.dumps({"traceEvents": [], "displayTimeUnit": "ms"})),
                     "no integer schema_version"),
    "top-level-list": (lambda p: p.write_text(json.dumps([GOOD])), "not a JSON object"),
    "future-schema": (lambda p: p.write_text(changed(("schema_version",), 2)), "schema_version 2 is newer"),
    "huge-100MB": (write_huge, "too large for a report (100 MiB; the limit is 64 MiB)"),
    "deep-nesting": (lambda p: p.write_text('{"schema_version": 1, "run": ' + "[" * 100_000 + "]" * 100_000 + "}"),
                     "nested too deeply"),
    "nan": (lambda p: p.write_text(GOOD_TEXT.replace('"wall_s": 1.5', '"wall_s": NaN', 1)), "NaN is not allowed"),
    "infinity": (lambda p: p.write_text(GOOD_TEXT.replace('"cpu_s": 0.5', '"cpu_s": -Infinity', 1)),
                 "-Infinity is not allowed"),
    "overflow": (lambda p: p.write_text(GOOD_TEXT.replace('"wall_s": 1.5', '"wall_s": 1e400', 1)),
                 "run.wall_s: Input should be a finite number"),
    "wrong-type": (lambda p: p.write_text(changed(("tasks", 0, "count"), "many")), "tasks.0.count"),
    "wrong-container": (lambda p: p.write_text(changed(("findings",), {"rule": "x"})), "findings"),
    "bool-version": (lambda p: p.write_text(changed(("schema_version",), True)), "no integer schema_version"),
    "huge-number": (lambda p: p.write_text(GOOD_TEXT.replace('"count": 1', '"count": ' + "9" * 5000, 1)),
                    "not valid JSON"),
    "directory": (lambda p: p.mkdir(), "is a directory"),
    "missing": (lambda p: None, "no such file"),
}

# command -> its arguments around the file under test ({bad}; {good} is a valid report)
COMMANDS = {
    "report": ["report", "--json", "out.json", "{bad}"],
    "diff-old": ["diff", "{bad}", "{good}"],
    "diff-new": ["diff", "{good}", "{bad}"],
    "check": ["check", "{bad}", "--fail-on", "high"],
    "check-baseline": ["check", "{good}", "--fail-on", "high", "--baseline", "{bad}"],
    "merge": ["merge", "{good}", "{bad}", "-o", "out.json"],
}


# every case through `advisor report`; the other commands share its loader, so they get the
# kinds of failure that differ in where they stop (parse, schema, size, validation, path)
SHARED = ("truncated", "future-schema", "huge-100MB", "deep-nesting", "nan", "wrong-type", "directory", "missing")
CASES = [("report", case) for case in BAD] + [(command, case) for command in COMMANDS if command != "report"
                                               for case in SHARED]


@pytest.mark.parametrize(("command", "case"), CASES)
def test_bad_report_file_is_one_line_and_exit_2(
        case: str, command: str, tmp_path: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    make, says = BAD[case]
    (tmp_path / "good.json").write_text(GOOD_TEXT)
    make(tmp_path / "bad.json")
    arguments = [part.format(bad="bad.json", good="good.json") for part in COMMANDS[command]]
    line = assert_usage_error(run_advisor(arguments, timeout=60), says)
    assert line.startswith("advisor: error: bad.json: "), line
    assert len(line) < 300, line  # one readable line, whatever the file held
    assert not (tmp_path / "out.json").exists()


def test_the_good_file_of_these_cases_is_accepted(tmp_path: Path,
                                                  run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # the control: each command does accept the valid report the cases above start from
    (tmp_path / "good.json").write_text(GOOD_TEXT)
    for command in COMMANDS.values():
        arguments = [part.format(bad="good.json", good="good.json") for part in command]
        done = run_advisor(arguments)
        assert done.returncode == 0, (arguments, done.stderr[-2000:])
        (tmp_path / "out.json").unlink(missing_ok=True)


@pytest.mark.parametrize("command", ["report", "check", "merge"])
def test_a_device_that_never_ends_is_refused_not_read_whole(
        command: str, tmp_path: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    arguments = {"report": ["report", "/dev/zero"], "check": ["check", "/dev/zero", "--fail-on", "high"],
                 "merge": ["merge", "/dev/zero"]}[command]
    assert_usage_error(run_advisor(arguments, timeout=60), "/dev/zero: too large for a report")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("command", ["report", "diff", "check", "merge"])
def test_an_unreadable_file_is_one_line_and_exit_2(
        command: str, tmp_path: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    (tmp_path / "locked.json").write_text(GOOD_TEXT)
    (tmp_path / "locked.json").chmod(0)
    arguments = {"report": ["report", "locked.json"], "diff": ["diff", "locked.json", "locked.json"],
                 "check": ["check", "locked.json", "--fail-on", "high"], "merge": ["merge", "locked.json"]}[command]
    assert_usage_error(run_advisor(arguments), "locked.json: cannot read: Permission denied")


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="Linux /proc only")
@pytest.mark.parametrize("command", ["report", "diff", "check", "merge"])
def test_a_file_that_fails_to_read_is_one_line_and_exit_2(
        command: str, tmp_path: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # /proc/self/mem cannot be read from its start, even by root: an unreadable file on any account
    (tmp_path / "good.json").write_text(GOOD_TEXT)
    arguments = {"report": ["report", "/proc/self/mem"], "diff": ["diff", "good.json", "/proc/self/mem"],
                 "check": ["check", "/proc/self/mem", "--fail-on", "high"],
                 "merge": ["merge", "good.json", "/proc/self/mem", "-o", "out.json"]}[command]
    assert_usage_error(run_advisor(arguments), "/proc/self/mem: cannot read: Input/output error")
    assert not (tmp_path / "out.json").exists()
