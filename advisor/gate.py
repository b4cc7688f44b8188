"""The CI gate: decide from a saved report (and optionally a baseline) whether to fail.

``advisor check REPORT.json --fail-on SEVERITY`` fails (exit 3) when a finding is at or
above the severity. With ``--baseline OLD.json`` only findings that are new since the
baseline count (same rule at the same file and line is the same finding), and
``--max-regression PCT`` also fails when the run's wall time grew by more than PCT
percent. The verdict is one line, for a CI log.
"""

from __future__ import annotations

from dataclasses import dataclass

from .profile import SEVERITIES, Finding, Report


@dataclass(frozen=True)
class Verdict:
    failed: bool
    reason: str


def finding_key(finding: Finding) -> tuple[str, str, int]:
    return finding.rule, finding.location.file, finding.location.line


def at_or_above(finding: Finding, threshold: str) -> bool:
    return SEVERITIES.index(finding.severity) <= SEVERITIES.index(threshold)


def check(report: Report, fail_on: str, baseline: Report | None = None,
          max_regression_pct: float | None = None) -> Verdict:
    """Whether the report fails the gate, and why (or why not), in one line."""
    known = {finding_key(f) for f in baseline.findings} if baseline is not None else set()
    blocking = [f for f in report.findings if at_or_above(f, fail_on) and finding_key(f) not in known]
    if blocking:
        first = blocking[0]
        more = f" (+{len(blocking) - 1} more)" if len(blocking) > 1 else ""
        new = "new " if baseline is not None else ""
        return Verdict(True, f"{len(blocking)} {new}finding(s) at or above {fail_on}: {first.code} {first.rule} "
                             f"at {first.location.file}:{first.location.line}{more}")
    if baseline is not None and max_regression_pct is not None and baseline.run.wall_s > 0:
        growth = 100.0 * (report.run.wall_s - baseline.run.wall_s) / baseline.run.wall_s
        if growth > max_regression_pct:
            return Verdict(True, f"wall time regressed {growth:.1f}% ({baseline.run.wall_s:.3f} s -> "
                                 f"{report.run.wall_s:.3f} s), more than {max_regression_pct:g}%")
    scope = " new" if baseline is not None else ""
    return Verdict(False, f"ok: no{scope} finding at or above {fail_on}")
