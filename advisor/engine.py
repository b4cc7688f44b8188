"""The rule engine: run the selected rules over a report and rank what they advise.

For each rule (from the explicit registry), collect its advice, drop what does not point
into the program's code or is suppressed on its line (``# advisor: ignore[slug]``),
merge advice of one rule at one line into one finding (all affected units as evidence),
replay the run with each finding's fix to predict what it saves (``advisor.whatif``; the
rule's own estimate stands where the replay cannot model the finding), judge severity
from the share of wall time the fix would save, and rank findings by
estimated savings, marking those ``advisor fix`` can make itself. A rule that raises is
a bug of ours: it is skipped and noted in the report's probes list, and the other rules
still run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from advisor.rules.base import Advice, Rule, RuleContext
from advisor.rules.registry import RULES

from .config import Settings
from .errors import UsageError
from .fix.marking import mark_fixable
from .frames import is_user_file
from .lines import with_hot_lines
from .profile import Finding, Location, ProbeStatus, Report, Severity
from .span_stats import with_span_places

# Share of the wall time a fix would save -> severity (the thresholds are documented in
# the README): a fifth or more is high, a twentieth medium, a hundredth low.
SEVERITY_SHARES: tuple[tuple[float, Severity], ...] = ((0.20, "high"), (0.05, "medium"), (0.01, "low"))
# savings below this are noise on a shared machine, whatever their share
MIN_SAVINGS_S = 0.005
RANK: dict[str, int] = {"high": 0, "medium": 1, "low": 2, "info": 3}


def severity_for(savings_s: float, base_s: float, cap: Severity) -> Severity:
    severity: Severity = "info"
    if savings_s >= MIN_SAVINGS_S and base_s > 0.0:
        share = savings_s / base_s
        for threshold, level in SEVERITY_SHARES:
            if share >= threshold:
                severity = level
                break
    return severity if RANK[severity] >= RANK[cap] else cap


def matches(rule: type[Rule], names: Iterable[str]) -> bool:
    """A rule is named by its slug, its code, or a code prefix (``ADV1``)."""
    return any(name in (rule.slug, rule.code) or (name.startswith("ADV") and rule.code.startswith(name))
               for name in names)


def check_options(settings: Settings) -> None:
    """Per-rule thresholds must name a rule and one of its thresholds: a misspelt one would
    silently do nothing."""
    by_slug = {rule.slug: rule for rule in RULES.values()}
    where = f"{settings.source}: " if settings.source else ""
    for slug, options in settings.options.items():
        rule = by_slug.get(slug)
        if rule is None:
            raise UsageError(f"{where}[tool.advisor.{slug}]: no rule is called {slug!r} (see `advisor rules`)")
        for name in options:
            if name not in rule.defaults:
                known = ", ".join(sorted(rule.defaults)) or "none"
                raise UsageError(f"{where}tool.advisor.{slug}.{name}: not a threshold of {slug} (it has: {known})")


def select_rules(settings: Settings, select: Sequence[str] = (), ignore: Sequence[str] = ()) -> list[type[Rule]]:
    check_options(settings)
    chosen = list(select) or settings.select
    skipped = list(ignore) + settings.ignore
    for name in (*chosen, *skipped):
        if not any(matches(rule, [name]) for rule in RULES.values()):
            raise UsageError(f"unknown rule {name!r} (see `advisor rules`)")
    return [rule for rule in RULES.values()
            if (not chosen or matches(rule, chosen)) and not matches(rule, skipped)]


def to_finding(rule: type[Rule], advice: Advice, wall_s: float) -> Finding:
    savings = max(0.0, advice.savings_s)
    base = advice.base_s if advice.base_s is not None else wall_s
    return Finding(
        rule=rule.slug,
        code=rule.code,
        severity=severity_for(savings, base, advice.max_severity),
        message=advice.message,
        location=Location(file=advice.file, line=advice.line, function=advice.function),
        evidence=dict(advice.evidence),
        estimated_savings_s=round(savings, 6),
        fix=advice.fix,
    )


def merge(into: Finding, other: Finding, base_s: float, cap: Severity, rule: Rule | None = None) -> None:
    """One finding per rule and line: savings add up (and are judged together), affected
    units are listed together, the time they were blocked is summed, and the rule words the
    message for all of them."""
    into.estimated_savings_s = round(into.estimated_savings_s + other.estimated_savings_s, 6)
    into.severity = severity_for(into.estimated_savings_s, base_s, cap)
    units = list(into.evidence.get("units", []))
    for unit in other.evidence.get("units", []):
        if unit not in units:
            units.append(unit)
    if units:
        into.evidence["units"] = units
    if "blocked_s" in into.evidence and "blocked_s" in other.evidence:
        into.evidence["blocked_s"] = round(float(into.evidence["blocked_s"]) + float(other.evidence["blocked_s"]), 6)
    if rule is not None:
        into.message = rule.merged_message(into.message, into.evidence)


def replay_savings(report: Report, by_place: dict[tuple[str, str, int], Finding],
                   judged: dict[tuple[str, str, int], tuple[float, Severity]]) -> None:
    """Each finding's savings (and severity) from replaying the run with its fix alone
    (advisor/whatif); where the replay cannot model a finding, the rule's estimate stays."""
    from .whatif import build_model, with_prediction

    if not by_place:
        return
    model = build_model(report)
    for key, finding in by_place.items():
        try:
            replayed = with_prediction(report, finding, model)
        except Exception as error:  # a replay bug of ours must not cost the user the report
            report.run.probes.append(ProbeStatus(name=f"what-if {finding.rule}", active=False,
                                                 note=f"failed: {type(error).__name__}: {error}"))
            continue
        if replayed:
            base, cap = judged[key]
            finding.severity = severity_for(finding.estimated_savings_s, base, cap)


def analyze(report: Report, settings: Settings | None = None, select: Sequence[str] = (),
            ignore: Sequence[str] = ()) -> Report:
    """The report with its findings: every selected rule run, merged, ranked."""
    from .source import suppressed

    settings = settings or Settings()
    context = RuleContext(report, settings.options)
    by_place: dict[tuple[str, str, int], Finding] = {}
    judged: dict[tuple[str, str, int], tuple[float, Severity]] = {}  # base wall, least strict cap
    for rule_class in select_rules(settings, select, ignore):
        rule = rule_class()
        try:
            advice_list = list(rule.check(context))
        except Exception as error:  # a crashing rule must not cost the user the report
            report.run.probes.append(ProbeStatus(name=f"rule {rule.slug}", active=False,
                                                 note=f"failed: {type(error).__name__}: {error}"))
            continue
        for advice in advice_list:
            if not advice.file or advice.line < 1 or not is_user_file(advice.file):
                continue
            if suppressed(advice.file, advice.line, rule.slug, rule.code):
                continue
            finding = to_finding(rule_class, advice, report.run.wall_s)
            key = (rule.slug, advice.file, advice.line)
            base = advice.base_s if advice.base_s is not None else report.run.wall_s
            if key in by_place:
                old_base, old_cap = judged[key]
                cap = advice.max_severity if RANK[advice.max_severity] < RANK[old_cap] else old_cap
                judged[key] = (min(old_base, base), cap)
                merge(by_place[key], finding, *judged[key], rule)
            else:
                by_place[key] = finding
                judged[key] = (base, advice.max_severity)
    replay_savings(report, by_place, judged)
    findings = sorted(by_place.values(), key=lambda f: (-f.estimated_savings_s, RANK[f.severity], f.rule))
    # which findings `advisor fix` can make, on the text the rules read; that text's digest per file
    report = report.model_copy(update={"sources": mark_fixable(findings)})
    # the hottest line of the finding's function, and the user spans that spent time there
    return with_span_places(with_hot_lines(report.model_copy(update={"findings": findings})))
