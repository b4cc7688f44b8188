"""Fixing the files a report points into: find each file, check it is the one that ran, fix, write.

``fix_report`` takes the findings of the rules that have a fixer, groups them by file,
finds each file (relative paths are relative to the run's working directory, else to the
current one), and refuses to go on when a file's digest differs from the one the report
recorded — the findings' lines would no longer point at the code they describe. A report
made before digests were recorded can still show its diffs, but ``--apply`` needs the
digest. With ``apply`` every changed file is written atomically, once all were checked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from advisor.profile import Finding, Report, write_atomically

from . import FIXED_RULES
from .apply import FileFix, fix_source, unified_diff
from .base import Edit, Refusal
from .marking import source_digest


class FixError(Exception):
    """A reason to change nothing at all; the message is one line for the user."""


@dataclass
class ReportFix:
    """What ``advisor fix`` did or would do: the diff per file, the edits, the refusals."""

    diffs: dict[str, str] = field(default_factory=dict)
    edits: list[Edit] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)  # files the report has no digest of
    written: list[str] = field(default_factory=list)
    manual: int = 0  # findings of rules without a fixer: their advice stays written


def locate(file: str, cwd: str) -> Path | None:
    """Where a report's file is now: relative to the run's directory, else to this one."""
    path = Path(file)
    candidates = [path] if path.is_absolute() else ([Path(cwd) / path] if cwd else []) + [path]
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def fix_report(report: Report, rules: Collection[str] | None = None, apply: bool = False) -> ReportFix:
    """Fix the findings of these rules (all rules with a fixer when None) in their files."""
    result = ReportFix()
    by_file: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        if rules is not None and finding.rule not in rules:
            continue
        if finding.rule in FIXED_RULES:
            by_file[finding.location.file].append(finding)
        else:
            result.manual += 1
    texts: dict[str, tuple[Path, str]] = {}
    for file, findings in sorted(by_file.items()):
        path = locate(file, report.run.cwd)
        if path is None:
            result.refusals += [Refusal(finding, f"{file} is not found") for finding in findings]
            continue
        data = path.read_bytes()
        recorded = report.sources.get(file)
        if recorded is not None and recorded != source_digest(data):
            raise FixError(f"{file} changed since the run (its content differs from the report's digest): "
                           f"run `advisor run` again; nothing was {'written' if apply else 'shown'}")
        if recorded is None:
            result.unverified.append(file)
        try:
            texts[file] = (path, data.decode("utf-8"))
        except UnicodeDecodeError:
            result.refusals += [Refusal(finding, f"{file} is not UTF-8") for finding in findings]
    if apply and result.unverified:
        raise FixError(f"the report has no digest of {', '.join(result.unverified)} (it was made before "
                       f"`advisor fix`, or the file was unreadable then), so it cannot tell the file is the one "
                       f"that ran: run `advisor run` again to use --apply")
    fixed: dict[str, tuple[Path, FileFix]] = {}
    for file, (path, text) in texts.items():
        outcome = fix_source(text, by_file[file])
        result.edits += outcome.edits
        result.refusals += outcome.refusals
        if outcome.after != outcome.before:
            fixed[file] = (path, outcome)
            result.diffs[file] = unified_diff(file, outcome.before, outcome.after)
    if apply:
        for file, (path, outcome) in fixed.items():
            write_atomically(path, outcome.after)
            result.written.append(file)
    return result
