"""The report as the CLI writes it (``--format json`` on stderr, ``--json PATH``) and as
``advisor report FILE.json`` reads it back; every way a saved file can be unusable is one
line and exit status 2."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from advisor.profile import Report

PROGRAM = """
    import sys
    import threading
    import time


    def work():
        time.sleep(0.05)


    worker = threading.Thread(target=work, name="worker-a")
    worker.start()
    worker.join()
    print("args", sys.argv[1:])
"""


@dataclass
class Saved:
    """One profiled run: the file ``--json`` wrote and what ``--format json`` put on stderr."""

    path: Path
    document: dict[str, Any]
    stderr_document: dict[str, Any]
    stdout: str


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, program: Callable[[Path, str], Path],
          advisor_cli: Callable[..., subprocess.CompletedProcess[str]]) -> Saved:
    work = tmp_path_factory.mktemp("saved")
    program(work / "prog.py", PROGRAM)
    done = advisor_cli(["run", "--format", "json", "--json", "report.json", "prog.py", "one"], work)
    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads((work / "report.json").read_text(encoding="utf-8"))
    return Saved(work / "report.json", document, json.loads(done.stderr), done.stdout)


def test_format_json_puts_a_valid_report_on_stderr_and_nothing_else(saved: Saved) -> None:
    report = saved.stderr_document  # json.loads of the whole of stderr: nothing but the report
    assert saved.stdout == "args ['one']\n"
    assert report["schema_version"] == 1
    assert report["tool"] == {"name": "advisor", "version": "0.1.0"}
    assert isinstance(report["tasks"], list)
    assert isinstance(report["findings"], list)
    assert isinstance(report["functions"], list)
    run = report["run"]
    assert run["argv"] == ["prog.py", "one"]
    assert run["mode"] == "standard"
    assert run["exit_code"] == 0
    assert run["partial"] is False
    Report.model_validate(report)


def test_json_file_is_the_same_report_and_validates(saved: Saved, unit: Callable[..., dict[str, Any]]) -> None:
    assert saved.document == saved.stderr_document
    report = Report.model_validate(saved.document)
    assert report.schema_version == 1
    assert report.run.argv == ["prog.py", "one"]
    assert unit(saved.document, "MainThread")["kind"] == "thread"
    worker = unit(saved.document, "worker-a")
    assert worker["kind"] == "thread"
    assert worker["count"] == 1


def test_report_renders_a_saved_report_as_text(saved: Saved, tmp_path: Path,
                                               run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    done = run_advisor(["report", str(saved.path)])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "MainThread" in done.stdout
    assert "worker-a" in done.stdout
    assert "prog.py one" in done.stdout


def test_report_format_json_round_trips_the_file(saved: Saved, tmp_path: Path,
                                                 run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    done = run_advisor(["report", "--format", "json", str(saved.path)])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == saved.document


def test_report_keeps_fields_it_does_not_know(saved: Saved, tmp_path: Path,
                                              run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # a newer advisor may add fields (the contract allows it): an older one keeps them
    newer = json.loads(json.dumps(saved.document))
    newer["added_later"] = {"a": [1, 2]}
    newer["run"]["host"] = "ci-7"
    newer["tasks"][0]["queue_depth"] = 3
    (tmp_path / "newer.json").write_text(json.dumps(newer), encoding="utf-8")
    done = run_advisor(["report", "--format", "json", "--json", "copy.json", "newer.json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == newer
    assert json.loads((tmp_path / "copy.json").read_text(encoding="utf-8")) == newer


def _mutated(document: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> str:
    copy = json.loads(json.dumps(document))
    change(copy)
    return json.dumps(copy, indent=2)


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        where: Any = document
        for key in path[:-1]:
            where = where[key]
        where[path[-1]] = value

    return change


# name -> (the file's content from the good report's text and document, or None for no file;
#          what the one line must say)
BAD_FILES: dict[str, tuple[Callable[[str, dict[str, Any]], str | bytes] | None, str]] = {
    "truncated": (lambda text, doc: text[: len(text) // 2], "not valid JSON"),
    "not-json": (lambda text, doc: "this is not json\n", "not valid JSON"),
    "empty": (lambda text, doc: "", "not valid JSON"),
    "a-list": (lambda text, doc: json.dumps([doc]), "not a JSON object"),
    "a-string": (lambda text, doc: '"report"', "not a JSON object"),
    "no-schema-version": (lambda text, doc: _mutated(doc, lambda d: d.pop("schema_version")), "schema_version"),
    "schema-version-2": (lambda text, doc: _mutated(doc, _set(("schema_version",), 2)), "schema_version 2"),
    "schema-version-0": (lambda text, doc: _mutated(doc, _set(("schema_version",), 0)), "schema_version 0"),
    "schema-version-text": (lambda text, doc: _mutated(doc, _set(("schema_version",), "1")), "schema_version"),
    "wrong-type": (lambda text, doc: _mutated(doc, _set(("run", "wall_s"), "fast")), "run.wall_s"),
    "wrong-list": (lambda text, doc: _mutated(doc, _set(("tasks",), {"a": 1})), "tasks"),
    "missing-field": (lambda text, doc: _mutated(doc, lambda d: d["run"].pop("argv")), "run.argv"),
    "bad-kind": (lambda text, doc: _mutated(doc, _set(("tasks", 0, "kind"), "fiber")), "tasks.0.kind"),
    "nan": (lambda text, doc: _mutated(doc, _set(("run", "wall_s"), float("nan"))), "NaN"),
    "infinity": (lambda text, doc: _mutated(doc, _set(("run", "cpu_s"), float("inf"))), "Infinity"),
    "overflowing-number": (lambda text, doc: re.sub(r'"wall_s": [0-9.e-]+', '"wall_s": 1e999', text, count=1),
                           "run.wall_s"),
    "not-utf8": (lambda text, doc: b"\xff\xfe" + text.encode("utf-16-le"), "cannot read"),
    "nested-too-deep": (lambda text, doc: "[" * 200_000 + "]" * 200_000, "nested"),
    "missing": (None, "no such file"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_report_of_an_unusable_file_is_one_line_exit_2(
        case: str, saved: Saved, tmp_path: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]],
        usage_error: Callable[..., str]) -> None:
    make, says = BAD_FILES[case]
    path = tmp_path / "bad.json"
    if make is not None:
        content = make(saved.path.read_text(encoding="utf-8"), saved.document)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    line = usage_error(run_advisor(["report", "bad.json"]), says)
    assert line.startswith("advisor: error: bad.json: "), line


def test_report_of_a_directory_is_one_line_exit_2(
        tmp_path: Path, usage_error: Callable[..., str],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    (tmp_path / "reports.json").mkdir()
    line = usage_error(run_advisor(["report", "reports.json"]))
    assert line == "advisor: error: reports.json: is a directory, not a report file"


def test_report_with_json_into_a_missing_directory_is_one_line_exit_2(
        saved: Saved, tmp_path: Path, usage_error: Callable[..., str],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    usage_error(run_advisor(["report", "--json", "nodir/out.json", str(saved.path)]), "nodir/out.json")


def test_json_path_is_where_the_user_asked_even_if_the_target_changes_directory(
        tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    program(tmp_path / "moves.py", """
        import os

        os.chdir("elsewhere")
        print("moved")
    """)
    (tmp_path / "elsewhere").mkdir()
    done = run_advisor(["run", "--json", "report.json", "moves.py"])
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout == "moved\n"
    assert not (tmp_path / "elsewhere" / "report.json").exists()
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["run"]["exit_code"] == 0


# -- the output formats CONTRACT.md promises, and SARIF --

MISSING = {
    "format-md": (["run", "--format", "md", "prog.py"], None),
    "md-file": (["run", "--md", "report.md", "prog.py"], "report.md"),
    "html-file": (["run", "--html", "report.html", "prog.py"], "report.html"),
    "format-sarif": (["run", "--format", "sarif", "prog.py"], None),
    "sarif-file": (["run", "--sarif", "report.sarif", "prog.py"], "report.sarif"),
}


@pytest.mark.parametrize("case", ["format-md", "md-file", "html-file", "format-sarif", "sarif-file"])
def test_contract_output_formats_are_accepted(case: str, tmp_path: Path, program: Callable[[Path, str], Path],
                                              run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    program(tmp_path / "prog.py", "print('ok')\n")
    arguments, written = MISSING[case]
    done = run_advisor(arguments)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "ok\n"
    if written is not None:
        assert (tmp_path / written).stat().st_size > 0


@pytest.mark.parametrize("command", ["diff", "check"])
def test_contract_subcommands_exist(command: str, saved: Saved,
                                    run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    if command == "diff":
        done = run_advisor(["diff", str(saved.path), str(saved.path)])
        expected = 0
    else:
        done = run_advisor(["check", str(saved.path), "--fail-on", "high"])
        expected = 3 if any(finding["severity"] == "high" for finding in saved.document["findings"]) else 0
    assert done.returncode == expected, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
