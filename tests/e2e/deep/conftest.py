"""Programs written by the tests, profiled once per module with ``advisor run --mode deep``
(several tests read the same run), and run bare for the ground truth of their CPU time."""

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


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ADVISOR_DEBUG", None)
    env.update({"PYTHONUNBUFFERED": "1", "ADVISOR_DEBUG": "1"})
    return env


@dataclass
class Profiled:
    """One program run under ``advisor run``: its report, output, directory and source."""

    directory: Path
    source: str
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    def unit(self, name: str) -> dict[str, Any]:
        matches = [task for task in self.report["tasks"] if task["name"] == name]
        assert len(matches) == 1, f"{name!r} in {[(t['name'], t['kind']) for t in self.report['tasks']]}"
        return matches[0]

    def function(self, name: str, entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The entry of `name` (e.g. "prog.fib") in functions[], or in `entries` (a unit's)."""
        table = self.report["functions"] if entries is None else entries
        matches = [entry for entry in table if entry["function"] == name]
        assert len(matches) == 1, f"{name!r} in {[entry['function'] for entry in table][:40]}"
        return matches[0]

    def line_of(self, text: str) -> int:
        lines = [number for number, line in enumerate(self.source.splitlines(), 1) if text in line]
        assert len(lines) == 1, f"{text!r} on lines {lines}"
        return lines[0]


def write_program(directory: Path, source: str, script: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    text = textwrap.dedent(source).lstrip("\n")
    (directory / script).write_text(text, encoding="utf-8")
    return text


def run_advisor_in(directory: Path, source: str, options: tuple[str, ...], args: tuple[str, ...] = (),
                   script: str = "prog.py") -> Profiled:
    """``advisor run OPTIONS --json report.json SCRIPT ARGS`` in `directory`."""
    text = write_program(directory, source, script)
    report_path = directory / "report.json"
    done = subprocess.run([*ADVISOR, "run", *options, "--json", str(report_path), script, *args], cwd=directory,
                          env=environment(), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return Profiled(directory, text, done.returncode, done.stdout, done.stderr, report)


@pytest.fixture(scope="module")
def deep_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Profiled]]:
    """``deep_once(key, source, *options, args=())``: the program under ``--mode deep`` plus
    `options` (an option starting with ``@`` names a file in the run's directory), run at most
    once per module."""
    runs: dict[str, Profiled] = {}

    def run(key: str, source: str, *options: str, args: tuple[str, ...] = ()) -> Profiled:
        if key not in runs:
            directory = tmp_path_factory.mktemp(key)
            resolved = tuple(str(directory / option[1:]) if option.startswith("@") else option
                             for option in options)
            runs[key] = run_advisor_in(directory, source, ("--mode", "deep", *resolved), args)
        return runs[key]

    yield run


@pytest.fixture(scope="module")
def bare_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """``bare_once(key, source, args=())``: the program's stdout when run with plain python, at
    most once per module."""
    runs: dict[str, str] = {}

    def run(key: str, source: str, args: tuple[str, ...] = ()) -> str:
        if key not in runs:
            directory = tmp_path_factory.mktemp(f"bare-{key}")
            write_program(directory, source, "prog.py")
            done = subprocess.run([sys.executable, "prog.py", *args], cwd=directory, env=environment(),
                                  capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, done.stderr[-3000:]
            runs[key] = done.stdout
        return runs[key]

    yield run
