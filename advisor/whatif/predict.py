"""Predictions for findings: replay the run with one fix, or several together.

``predict`` turns findings into one combined edit of the replay model and replays it;
``with_predictions`` is what the engine calls: each finding replayed alone sets its
``estimated_savings_s`` and its ``prediction`` (the rule's own estimate is kept there, and
stays the savings of a finding the replay cannot model). Several fixes are replayed
together, not added up: two fixes on one critical path share what they save.
"""

from __future__ import annotations

from collections.abc import Sequence

from advisor.profile import Finding, Prediction, Report, UnitPrediction

from .fixes import edit_for
from .model import ReplayModel, build_model
from .replay import Edit, Outcome, replay
from .simulate import replay_timeline, usable


def rule_estimate(finding: Finding) -> float:
    """The rule's own estimate of a finding's savings (kept aside once the replay set them)."""
    if finding.prediction is not None:
        return finding.prediction.rule_estimate_s
    return finding.estimated_savings_s


def has_timeline(report: Report) -> bool:
    """Whether every unit has its place on the run's timeline (reports of older advisors,
    and hand-made ones, may not): without it the critical path cannot be walked."""
    return bool(report.tasks) and all(task.start_s is not None and task.end_s is not None for task in report.tasks)


def predict(report: Report, findings: Sequence[Finding], model: ReplayModel | None = None) -> Outcome | None:
    """The run replayed with all these fixes applied, or None if one cannot be modelled
    (or the report has no timeline)."""
    if not has_timeline(report):
        return None
    model = model or build_model(report)
    combined = Edit()
    for finding in findings:
        edit = edit_for(model, report, finding, rule_estimate(finding))
        if edit is None:
            return None
        combined = combined.add(edit)
    if usable(report, combined):
        return replay_timeline(model, report, combined)
    return replay(model, combined)


def as_prediction(outcome: Outcome, estimate: float) -> Prediction:
    units = [UnitPrediction(unit=item.unit.label, before_s=round(item.before_s, 6), after_s=round(item.after_s, 6))
             for item in outcome.units]
    return Prediction(wall_before_s=round(outcome.wall_before_s, 6), wall_after_s=round(outcome.wall_after_s, 6),
                      units=units, rule_estimate_s=round(estimate, 6), replayed_from=outcome.replayed_from)


def with_prediction(report: Report, finding: Finding, model: ReplayModel) -> bool:
    """Replay the finding's fix alone and set its savings and prediction from it; False
    (the finding unchanged) when the replay cannot model it."""
    estimate = rule_estimate(finding)
    outcome = predict(report, [finding], model)
    if outcome is None:
        return False
    finding.prediction = as_prediction(outcome, estimate)
    finding.estimated_savings_s = round(max(0.0, outcome.savings_s), 6)
    return True
