"""``advisor whatif``: pick findings by ``RULE@FILE:LINE``, replay them together, say what changes.

A fix is named by its rule (slug or code) and the place of its finding, as the report
shows it. The answer is the run's wall time before and after all the named fixes
together, what each would save alone (fixes on one critical path share their savings,
so the alone figures do not add up), and the units whose wall time changes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from advisor.profile import Finding, Report

from .model import build_model
from .predict import has_timeline, predict
from .replay import Outcome


class WhatIfError(Exception):
    """A fix that cannot be found or replayed; the message is one line for the user."""


@dataclass
class WhatIf:
    fixes: list[tuple[str, Finding]]  # (as named, the finding)
    outcome: Outcome
    alone: list[float]  # each fix's savings replayed alone, in the order named


def parse_fix(text: str) -> tuple[str, str, int]:
    """``RULE@FILE:LINE`` -> (rule, file, line)."""
    rule, at, place = text.partition("@")
    file, colon, line = place.rpartition(":")
    if not at or not rule or not colon or not file or not line.isdigit():
        raise WhatIfError(f"--fix {text}: expected RULE@FILE:LINE (e.g. blocking-sleep@app.py:42)")
    return rule, file, int(line)


def _same_file(named: str, reported: str) -> bool:
    named, reported = os.path.normpath(named), os.path.normpath(reported)
    return named == reported or reported.endswith(os.sep + named) or named.endswith(os.sep + reported)


def find_finding(report: Report, text: str) -> Finding:
    rule, file, line = parse_fix(text)
    matches = [finding for finding in report.findings
               if rule in (finding.rule, finding.code) and finding.location.line == line
               and _same_file(file, finding.location.file)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        places = ", ".join(sorted({finding.location.file for finding in matches}))
        raise WhatIfError(f"--fix {text}: several findings match ({places}); name the file as the report does")
    known = ", ".join(f"{f.rule}@{f.location.file}:{f.location.line}" for f in report.findings) or "none"
    raise WhatIfError(f"--fix {text}: no such finding in the report (its findings: {known})")


def what_if(report: Report, names: list[str]) -> WhatIf:
    if not has_timeline(report):
        raise WhatIfError("the report has no timeline of its units (made by an older advisor): run it again")
    fixes: list[tuple[str, Finding]] = []
    for name in names:
        found = find_finding(report, name)
        if all(found is not finding for _name, finding in fixes):  # named twice: applied once
            fixes.append((name, found))
    model = build_model(report)
    outcome = predict(report, [finding for _name, finding in fixes], model)
    if outcome is None:
        cannot = next(name for name, finding in fixes if predict(report, [finding], model) is None)
        raise WhatIfError(f"--fix {cannot}: the replay cannot model this finding (its rule's own estimate: "
                          f"see `advisor report`)")
    alone = []
    for _name, finding in fixes:
        single = predict(report, [finding], model)
        alone.append(single.savings_s if single is not None else 0.0)
    return WhatIf(fixes, outcome, alone)


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s"


REPLAYED_FROM = {"timeline": "the recorded task steps (simulated step by step)",
                 "aggregates": "the per-unit totals (no step timeline covers these units)"}


def render_text(result: WhatIf) -> str:
    outcome = result.outcome
    share = 100.0 * outcome.savings_s / outcome.wall_before_s if outcome.wall_before_s > 0.0 else 0.0
    lines = [f"what-if: {', '.join(name for name, _finding in result.fixes)}",
             f"run wall: {_s(outcome.wall_before_s)} -> {_s(outcome.wall_after_s)} "
             f"(saves {_s(outcome.savings_s)}, {share:.0f}%)",
             f"replayed from: {REPLAYED_FROM[outcome.replayed_from]}"]
    if len(result.fixes) > 1:
        lines.append("each fix alone:")
        width = max(len(name) for name, _finding in result.fixes)
        for (name, _finding), savings in zip(result.fixes, result.alone, strict=True):
            lines.append(f"  {name:<{width}}  saves {_s(savings)}")
        total = sum(result.alone)
        if total - outcome.savings_s > 0.001:
            lines.append(f"together they save {_s(outcome.savings_s)}, not the {_s(total)} of the sum: "
                         f"they shorten the same critical path")
    if outcome.units:
        lines.append("units:")
        width = max(len(item.unit.label) for item in outcome.units)
        for item in outcome.units:
            lines.append(f"  {item.unit.label:<{width}}  {_s(item.before_s)} -> {_s(item.after_s)} "
                         f"({item.after_s - item.before_s:+.3f} s)")
    return "\n".join(lines) + "\n"


def render_json(result: WhatIf) -> str:
    outcome = result.outcome
    document = {
        "fixes": [{"fix": name, "rule": finding.rule, "file": finding.location.file, "line": finding.location.line,
                   "alone_savings_s": round(savings, 6)}
                  for (name, finding), savings in zip(result.fixes, result.alone, strict=True)],
        "wall_before_s": round(outcome.wall_before_s, 6),
        "wall_after_s": round(outcome.wall_after_s, 6),
        "savings_s": round(outcome.savings_s, 6),
        "replayed_from": outcome.replayed_from,
        "units": [{"unit": item.unit.label, "before_s": round(item.before_s, 6), "after_s": round(item.after_s, 6)}
                  for item in outcome.units],
    }
    return json.dumps(document, indent=2) + "\n"
