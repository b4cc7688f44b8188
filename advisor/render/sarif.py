"""SARIF 2.1.0: the findings as a static-analysis log, for code-scanning UIs.

One run: the driver lists every rule of the registry (descriptions from the rule
docstrings), each finding is a result pointing at the line where the fix goes, relative
to the run's directory (``%SRCROOT%``) when it can be. A finding's fingerprint is made of
its rule, file and function, never its line or figures, so the same finding in the next
run is recognised as the same alert. Everything comes from the report alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from advisor.profile import Finding, Report, Severity
from advisor.rule_docs import rule_doc
from advisor.rules.registry import RULES

SARIF_VERSION = "2.1.0"
SOURCE_ROOT = "%SRCROOT%"
FINGERPRINT_KEY = "advisorFinding/v1"
LEVELS: dict[Severity, str] = {"high": "error", "medium": "warning", "low": "note", "info": "note"}

JsonObject = dict[str, Any]


def _sections(doc: str) -> dict[str, str]:
    """A rule docstring's ``## Title`` sections, by title."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^## ", doc, flags=re.MULTILINE):
        title, _, body = chunk.partition("\n")
        if body.strip():
            found[title.strip()] = body.strip()
    return found


def _descriptor(code: str, slug: str, summary: str, doc: str, severity: Severity, family: str) -> JsonObject:
    sections = _sections(doc)
    # the first paragraph of "What it does" reads as a full description on its own
    full = " ".join(sections.get("What it does", summary).split("\n\n")[0].split())
    descriptor: JsonObject = {
        "id": code,
        "name": slug,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": full},
        "defaultConfiguration": {"level": LEVELS[severity]},
        "properties": {"tags": ["performance", family]},
    }
    if doc:
        descriptor["help"] = {"text": doc, "markdown": doc}
    return descriptor


def _rule_descriptors(report: Report) -> tuple[list[JsonObject], dict[str, int]]:
    """Every registered rule, then any rule only the report knows (a newer advisor's)."""
    descriptors = [_descriptor(rule.code, rule.slug, rule.summary, rule_doc(rule), rule.default_severity,
                               rule.family) for rule in RULES.values()]
    index = {descriptor["id"]: number for number, descriptor in enumerate(descriptors)}
    for finding in report.findings:
        if finding.code not in index:
            index[finding.code] = len(descriptors)
            descriptors.append(_descriptor(finding.code, finding.rule, finding.rule, "", "medium", "other"))
    return descriptors, index


def _is_absolute(path: str) -> bool:
    return PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()


def _artifact(path: str) -> JsonObject:
    """A file of the report as a SARIF artifact location: relative ones under %SRCROOT%."""
    if _is_absolute(path):
        if PurePosixPath(path).is_absolute():
            return {"uri": PurePosixPath(path).as_uri()}
        return {"uri": PureWindowsPath(path).as_uri()}
    return {"uri": quote(path.replace("\\", "/")), "uriBaseId": SOURCE_ROOT}


def _fingerprint(finding: Finding, occurrence: int) -> str:
    place = finding.location
    key = "\0".join((finding.code, place.file, place.function, str(occurrence)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _occurrences(findings: list[Finding]) -> list[int]:
    """For each finding, how many of the same rule, file and function come before it in line
    order (two sleeps in one function stay two alerts; a shifted line changes nothing)."""
    order = sorted(range(len(findings)), key=lambda i: findings[i].location.line)
    seen: Counter[tuple[str, str, str]] = Counter()
    numbers = [0] * len(findings)
    for i in order:
        finding = findings[i]
        key = (finding.code, finding.location.file, finding.location.function)
        numbers[i] = seen[key]
        seen[key] += 1
    return numbers


def _result(finding: Finding, rule_index: int, occurrence: int) -> JsonObject:
    place = finding.location
    text = markdown = finding.message
    if finding.fix:
        sentence = finding.message.rstrip(".")
        text = f"{sentence}. Fix: {finding.fix}"
        code = f"```python\n{finding.fix}\n```" if "\n" in finding.fix else f"`{finding.fix}`"
        markdown = f"{sentence}.\n\nFix: {code}"
    result: JsonObject = {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": text, "markdown": markdown},
        "partialFingerprints": {FINGERPRINT_KEY: _fingerprint(finding, occurrence)},
        "properties": {"rule": finding.rule, "severity": finding.severity,
                       "estimated_savings_s": finding.estimated_savings_s, "evidence": finding.evidence,
                       "fix": finding.fix, "fixable": finding.fixable},
    }
    if place.file:
        physical: JsonObject = {"artifactLocation": _artifact(place.file)}
        if place.line >= 1:
            physical["region"] = {"startLine": place.line}
        location: JsonObject = {"physicalLocation": physical}
        if place.function:
            location["logicalLocations"] = [{"fullyQualifiedName": place.function, "kind": "function"}]
        result["locations"] = [location]
    return result


def _invocation(report: Report) -> JsonObject:
    run = report.run
    invocation: JsonObject = {
        "executionSuccessful": not run.partial,
        "exitCode": run.exit_code,
        "arguments": list(run.argv),
        "startTimeUtc": run.started_at,
        "properties": {"mode": run.mode, "wall_s": run.wall_s, "cpu_s": run.cpu_s, "partial": run.partial},
    }
    notes = [f"probe {probe.name} inactive: {probe.note}" for probe in run.probes if not probe.active]
    if run.partial:
        notes.insert(0, "the run was interrupted: the report covers only part of it")
    if notes:
        invocation["toolExecutionNotifications"] = [{"level": "warning", "message": {"text": note}}
                                                    for note in notes]
    if run.cwd and _is_absolute(run.cwd):
        invocation["workingDirectory"] = {"uri": _directory_uri(run.cwd)}
    return invocation


def _directory_uri(path: str) -> str:
    uri = str(_artifact(path)["uri"])
    return uri if uri.endswith("/") else uri + "/"


def sarif_document(report: Report) -> JsonObject:
    """The SARIF log as a JSON-ready dict."""
    rules, index = _rule_descriptors(report)
    occurrences = _occurrences(report.findings)
    root: JsonObject = {"description": {"text": "the directory advisor ran the program in"}}
    if report.run.cwd and _is_absolute(report.run.cwd):
        root["uri"] = _directory_uri(report.run.cwd)
    run: JsonObject = {
        "tool": {"driver": {"name": report.tool.name, "version": report.tool.version,
                            "semanticVersion": report.tool.version, "rules": rules}},
        "invocations": [_invocation(report)],
        "originalUriBaseIds": {SOURCE_ROOT: root},
        "results": [_result(finding, index[finding.code], occurrence)
                    for finding, occurrence in zip(report.findings, occurrences, strict=True)],
    }
    return {"version": SARIF_VERSION, "runs": [run]}


def render_sarif(report: Report) -> str:
    """The report's findings as a SARIF 2.1.0 log (indented JSON text)."""
    return json.dumps(sarif_document(report), indent=2, ensure_ascii=False) + "\n"
