"""Reading and writing report files: ``load_report`` / ``parse_report`` turn every way a file
can be wrong into a one-line ``ReportError``; ``write_atomically`` leaves the old content or
the new one, never half of either, and no temporary file behind."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import advisor.profile as profile
from advisor.profile import (
    Breakdown,
    Finding,
    FunctionStat,
    Location,
    Report,
    ReportError,
    RunInfo,
    Task,
    load_report,
    parse_report,
    report_json,
    write_atomically,
)


def make_report(**evidence: Any) -> Report:
    return Report(
        run=RunInfo(argv=["app.py", "--n", "3"], mode="deep", python="3.11.7", cpu_count=2,
                    started_at="2026-11-25T08:00:00Z", wall_s=3.21, cpu_s=1.02, exit_code=0),
        tasks=[Task(id="asyncio:7", name="fetcher-1", target="app.fetch_user", kind="asyncio-task",
                    wall_s=1.2, cpu_s=0.1,
                    breakdown=Breakdown(compute_s=0.1, io_s=0.8, waiting_s=0.3, scheduling_s=0.0))],
        functions=[FunctionStat(function="app.parse", file="app.py", line=10, calls=5000, self_s=0.4,
                                total_s=0.9, cpu_s=0.85)],
        findings=[Finding(rule="blocking-sleep", code="ADV101", severity="high", message="time.sleep blocks",
                          location=Location(file="app.py", line=42, function="handler"),
                          evidence={"calls": 12, "blocked_s": 3.6, **evidence}, estimated_savings_s=3.3,
                          fix="await asyncio.sleep(0.3)")],
    )


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# -- round trip --


def test_report_json_parses_back_to_the_same_report() -> None:
    report = make_report()
    text = report_json(report)
    assert text.endswith("}\n")
    again = parse_report(text)
    assert again == report
    assert report_json(again) == text


def test_write_then_load_gives_the_same_report(tmp_path: Path) -> None:
    report = make_report()
    path = tmp_path / "report.json"
    write_atomically(path, report_json(report))
    assert path.read_text(encoding="utf-8") == report_json(report)
    assert load_report(path) == report
    assert load_report(str(path)) == report
    assert listing(tmp_path) == ["report.json"]


def test_unknown_fields_survive_a_round_trip() -> None:
    document = json.loads(report_json(make_report()))
    document["added_later"] = [1, {"x": "y"}]
    document["run"]["host"] = "ci-7"
    document["findings"][0]["location"]["column"] = 5
    again = json.loads(report_json(parse_report(json.dumps(document))))
    assert again == document


def test_a_contract_example_report_loads() -> None:
    # the JSON of CONTRACT.md, field for field
    document = {
        "schema_version": 1,
        "tool": {"name": "advisor", "version": "0.1.0"},
        "run": {"argv": ["app.py", "--n", "3"], "mode": "deep", "python": "3.11.7", "cpu_count": 2,
                "started_at": "2026-11-25T08:00:00Z", "wall_s": 3.21, "cpu_s": 1.02, "exit_code": 0,
                "partial": False, "overhead": {"factor_estimate": 1.04, "corrected": True}},
        "tasks": [{"id": "asyncio:7", "name": "fetcher-1", "target": "app.fetch_user", "kind": "asyncio-task",
                   "count": 1, "wall_s": 1.20, "cpu_s": 0.10,
                   "breakdown": {"compute_s": 0.10, "io_s": 0.80, "waiting_s": 0.30, "scheduling_s": 0.0},
                   "blocking_s": 0.0,
                   "hot": [{"function": "app.parse", "file": "app.py", "line": 12, "self_s": 0.05}]}],
        "functions": [{"function": "app.parse", "file": "app.py", "line": 10, "calls": 5000, "self_s": 0.40,
                       "total_s": 0.90, "cpu_s": 0.85}],
        "findings": [{"rule": "blocking-sleep", "code": "ADV101", "severity": "high",
                      "message": "time.sleep(0.3) blocks the event loop in handler()",
                      "location": {"file": "app.py", "line": 42, "function": "handler"},
                      "evidence": {"calls": 12, "blocked_s": 3.6}, "estimated_savings_s": 3.3,
                      "fix": "await asyncio.sleep(0.3)"}],
    }
    report = parse_report(json.dumps(document))
    assert report.tasks[0].hot[0].line == 12
    assert report.run.overhead.factor_estimate == 1.04
    assert report.findings[0].evidence == {"calls": 12, "blocked_s": 3.6}


# -- parse errors: exact one-line messages --

GOOD = json.loads(report_json(make_report()))


def variant(change: dict[str, Any], where: tuple[str, ...] = ()) -> str:
    document = json.loads(json.dumps(GOOD))
    target = document
    for key in where:
        target = target[key]
    target.update(change)
    return json.dumps(document)


PARSE_ERRORS = {
    "empty": ("", "src: not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    "truncated": (report_json(make_report())[:40], None),
    "not-json": ("report", "src: not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    "list": ("[]", "src: not a report: the top level is not a JSON object"),
    "number": ("1", "src: not a report: the top level is not a JSON object"),
    "no-version": ("{}", "src: not an advisor report: no integer schema_version"),
    "bool-version": (variant({"schema_version": True}), "src: not an advisor report: no integer schema_version"),
    "float-version": (variant({"schema_version": 1.0}), "src: not an advisor report: no integer schema_version"),
    "text-version": (variant({"schema_version": "1"}), "src: not an advisor report: no integer schema_version"),
    "newer": (variant({"schema_version": 2}),
              "src: schema_version 2 is newer than this advisor understands (1); upgrade advisor"),
    "zero": (variant({"schema_version": 0}), "src: schema_version 0 is not a known version"),
    "negative": (variant({"schema_version": -1}), "src: schema_version -1 is not a known version"),
    "no-run": ('{"schema_version": 1}', "src: invalid report: run: Field required"),
    "wrong-type": (variant({"wall_s": "fast"}, ("run",)),
                   "src: invalid report: run.wall_s: Input should be a valid number, "
                   "unable to parse string as a number"),
    "bad-severity": (json.dumps({**GOOD, "findings": [{**GOOD["findings"][0], "severity": "critical"}]}),
                     "src: invalid report: findings.0.severity: Input should be 'high', 'medium', 'low' or 'info'"),
    "nan": (variant({"wall_s": float("nan")}, ("run",)), "src: not valid JSON: NaN is not allowed in a report"),
    "infinity": (variant({"wall_s": float("inf")}, ("run",)),
                 "src: not valid JSON: Infinity is not allowed in a report"),
    "minus-infinity": (variant({"wall_s": float("-inf")}, ("run",)),
                       "src: not valid JSON: -Infinity is not allowed in a report"),
    "overflow-to-infinity": (variant({"wall_s": 1.0}, ("run",)).replace('"wall_s": 1.0', '"wall_s": 1e999', 1),
                             "src: invalid report: run.wall_s: Input should be a finite number"),
    "too-many-digits": ('{"schema_version": 1' + "0" * 5000 + "}", None),
    "nested-too-deep": ("[" * 100_000 + "]" * 100_000, "src: not a report: JSON nested too deeply"),
}


@pytest.mark.parametrize("case", list(PARSE_ERRORS))
def test_parse_report_errors_are_one_line(case: str) -> None:
    text, message = PARSE_ERRORS[case]
    with pytest.raises(ReportError) as raised:
        parse_report(text, "src")
    said = str(raised.value)
    assert "\n" not in said
    assert said.startswith("src: ")
    if message is not None:
        assert said == message
    # raised `from None` where it stems from another error: no chained traceback to show
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None or raised.value.__suppress_context__


def test_truncated_report_says_where_the_json_stopped() -> None:
    text = report_json(make_report())
    with pytest.raises(ReportError) as raised:
        parse_report(text[: len(text) - 3], "r.json")
    assert str(raised.value).startswith("r.json: not valid JSON: ")


def test_parse_report_names_its_default_source() -> None:
    with pytest.raises(ReportError, match=r"^<report>: not a report: the top level is not a JSON object$"):
        parse_report("[]")


# -- load errors --


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ReportError) as raised:
        load_report(path)
    assert str(raised.value) == f"{path}: no such file"


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(ReportError) as raised:
        load_report(tmp_path)
    assert str(raised.value) == f"{tmp_path}: is a directory, not a report file"


def test_load_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(b'{"schema_version": 1, "x": "\xff"}')
    with pytest.raises(ReportError) as raised:
        load_report(path)
    assert str(raised.value) == (f"{path}: cannot read: 'utf-8' codec can't decode byte 0xff in position 28: "
                                 "invalid start byte")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_load_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(report_json(make_report()), encoding="utf-8")
    path.chmod(0)
    with pytest.raises(ReportError) as raised:
        load_report(path)
    assert str(raised.value) == f"{path}: cannot read: Permission denied"


def test_load_names_the_file_in_parse_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(variant({"schema_version": 2}), encoding="utf-8")
    with pytest.raises(ReportError) as raised:
        load_report(path)
    assert str(raised.value) == f"{path}: schema_version 2 is newer than this advisor understands (1); upgrade advisor"


# -- write_atomically --


def test_write_creates_the_file_with_exactly_the_text(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_atomically(path, "héllo\nwörld\n")
    assert path.read_bytes() == "héllo\nwörld\n".encode()
    assert listing(tmp_path) == ["out.json"]


def test_write_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text("old content, longer than the new one\n", encoding="utf-8")
    write_atomically(str(path), "new\n")
    assert path.read_text(encoding="utf-8") == "new\n"
    assert listing(tmp_path) == ["out.json"]


def test_write_a_bare_file_name_goes_to_the_working_directory(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_atomically("out.json", "{}\n")
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == "{}\n"
    assert listing(tmp_path) == ["out.json"]


def test_write_failing_halfway_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text("old\n", encoding="utf-8")
    half = "x" * 1_000_000 + "\ud800"  # a lone surrogate: utf-8 fails after a megabyte was written
    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, half)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert listing(tmp_path) == ["out.json"]


def test_write_failing_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(UnicodeEncodeError):
        write_atomically(tmp_path / "out.json", "abc\udfff")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_write_interrupted_at_the_rename_keeps_the_old_file(error: BaseException, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.json"
    path.write_text("old\n", encoding="utf-8")

    def fail(source: str, target: str) -> None:
        raise error

    monkeypatch.setattr(profile.os, "replace", fail)
    with pytest.raises(type(error)):
        write_atomically(path, "new\n")
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == "old\n"
    assert listing(tmp_path) == ["out.json"]


def test_a_report_that_cannot_be_serialized_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    write_atomically(path, report_json(make_report()))
    before = path.read_bytes()
    broken = make_report(handle=object())  # evidence that JSON cannot hold
    with pytest.raises(Exception, match="Unable to serialize"):
        write_atomically(path, report_json(broken))
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["report.json"]


def test_write_into_a_missing_directory_fails_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "missing" / "out.json", "{}\n")
    assert listing(tmp_path) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("existing", [None, 0o640], ids=["new-file", "existing-file"])
def test_written_file_has_the_mode_a_plain_write_gives(existing: int | None, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    if existing is None:
        expected = 0o666 & ~_umask()
    else:
        path.write_text("old\n", encoding="utf-8")
        path.chmod(existing)
        expected = existing
    write_atomically(path, "{}\n")
    assert stat.S_IMODE(path.stat().st_mode) == expected
