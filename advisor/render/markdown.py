"""The Markdown report: a pre-release performance checklist that renders well on GitHub.

Findings come first, grouped by severity, each a ``- [ ]`` item with the place to change,
the estimated savings, the evidence and the fix; then a table of the units' time
breakdown and the run's facts, including what the probes cost.
"""

from __future__ import annotations

from advisor.profile import SEVERITIES, Finding, Report
from advisor.version import describe

from .text import KIND_LABELS, deep_caution, replay_line, seconds

MAX_UNITS = 30


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _finding_item(finding: Finding) -> list[str]:
    place = f"{finding.location.file}:{finding.location.line}"
    lines = [f"- [ ] **{finding.code} {finding.rule}** at `{place}` — saves ~{seconds(finding.estimated_savings_s)}",
             f"  - {_cell(finding.message)}"]
    if finding.fix:
        lines.append(f"  - fix: `{_cell(finding.fix)}`")
    if finding.fixable:
        lines.append("  - automatic fix: `advisor fix REPORT.json` makes this change (`--apply` writes it)")
    evidence = ", ".join(f"{key}: {value}" for key, value in finding.evidence.items()
                         if key not in ("units", "hot_line"))
    units = finding.evidence.get("units")
    if units:
        evidence = f"units: {', '.join(str(unit) for unit in units)}" + (f"; {evidence}" if evidence else "")
    if evidence:
        lines.append(f"  - evidence: {_cell(evidence)}")
    hot = finding.evidence.get("hot_line")
    if isinstance(hot, dict):
        who = ", ".join(str(unit) for unit in hot.get("units", []))
        lines.append(f"  - hottest line: `{hot.get('file')}:{hot.get('line')}` "
                     f"({seconds(float(hot.get('self_s', 0.0)))}{' in ' + _cell(who) if who else ''})")
    if finding.prediction is not None:
        lines.append(f"  - {_cell(replay_line(finding.prediction))}")
    if finding.spans:
        lines.append(f"  - spans: {', '.join(_cell(name) for name in finding.spans)}")
    return lines


def baseline_section(report: Report, baseline: Report) -> list[str]:
    """What is new, fixed and regressed since the baseline run."""
    from advisor.diff import diff_reports

    diff = diff_reports(baseline, report)
    between = diff.between()
    out = ["## Since the baseline", "", *([f"Comparing {between}.", ""] if between else []),
           f"wall {seconds(diff.old_wall_s)} → {seconds(diff.new_wall_s)} "
           f"({'+' if diff.new_wall_s >= diff.old_wall_s else '-'}{seconds(abs(diff.new_wall_s - diff.old_wall_s))})",
           ""]
    for title, findings in (("New findings", diff.added), ("Fixed findings", diff.resolved)):
        out.append(f"**{title}** ({len(findings)})")
        for finding in findings:
            location = finding["location"]
            out.append(f"- {finding['code']} {finding['rule']} at `{location['file']}:{location['line']}` "  # type: ignore[index]
                       f"({finding['severity']})")
        out.append("")
    regressed = [unit for unit in diff.units
                 if unit.old and unit.new and unit.change("wall_s") > max(0.05 * unit.old["wall_s"], 0.001)]
    out.append(f"**Regressed units** ({len(regressed)})")
    for unit in regressed:
        out.append(f"- {_cell(unit.name)}: wall {seconds(unit.old['wall_s'])} → "  # type: ignore[index]
                   f"{seconds(unit.new['wall_s'])}")  # type: ignore[index]
    return [*out, ""]


def render_markdown(report: Report, baseline: Report | None = None) -> str:
    run = report.run
    out = [f"# Performance checklist: `{' '.join(run.argv)}`", "",
           f"{run.mode} mode · wall {seconds(run.wall_s)} · cpu {seconds(run.cpu_s)} · exit {run.exit_code}"
           + (" · **partial run (interrupted)**" if run.partial else "")
           + (f" · {describe(run.code_version)}" if run.code_version else ""), ""]
    if baseline is not None:
        out += baseline_section(report, baseline)
    out += ["## Findings", ""]
    if not report.findings:
        out += ["No findings.", ""]
    for severity in SEVERITIES:
        group = [finding for finding in report.findings if finding.severity == severity]
        if not group:
            continue
        out += [f"### {severity.capitalize()} ({len(group)})", ""]
        for finding in group:
            out += _finding_item(finding)
        out.append("")
    out += ["## Units", "",
            "| unit | kind | n | wall | compute | io | waiting | scheduling | blocking |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for task in report.tasks[:MAX_UNITS]:
        split = task.breakdown
        out.append(f"| {_cell(task.name)} | {KIND_LABELS.get(task.kind, task.kind)} | {task.count} | "
                   f"{seconds(task.wall_s)} | {seconds(split.compute_s)} | {seconds(split.io_s)} | "
                   f"{seconds(split.waiting_s)} | {seconds(split.scheduling_s)} | {seconds(task.blocking_s)} |")
    if len(report.tasks) > MAX_UNITS:
        out.append(f"\n{len(report.tasks) - MAX_UNITS} more units in the JSON report.")
    if report.spans:
        out += ["", "## Spans", "",
                "| span | n | wall | p50 | p95 | compute | io | waiting | scheduling | blocking |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for stat in report.spans:
            split = stat.breakdown
            out.append(f"| {_cell(stat.name)} | {stat.count} | {seconds(stat.wall_s)} | {seconds(stat.p50_s)} | "
                       f"{seconds(stat.p95_s)} | {seconds(split.compute_s)} | {seconds(split.io_s)} | "
                       f"{seconds(split.waiting_s)} | {seconds(split.scheduling_s)} | {seconds(stat.blocking_s)} |")
    overhead = run.overhead
    out += ["", "## Run", "",
            f"- Python {run.python} on {run.cpu_count} CPUs, started {run.started_at}",
            f"- probe overhead ≈ ×{overhead.factor_estimate:.2f} ({overhead.hooked_steps} hooked steps, "
            f"{overhead.sampler_ticks} samples{', figures corrected' if overhead.corrected else ''})"]
    caution = deep_caution(report)
    if caution is not None:
        out.append(f"- {caution}")
    out.append("")
    return "\n".join(out)
