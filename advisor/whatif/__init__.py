"""What-if replay: predict a run's wall time with one or several findings' fixes applied.

The report's per-unit aggregates become a replay model (``model``), each rule's fix an
edit of it (``fixes``), and the replay (``replay``) shares the loops, hubs and the GIL out
again and walks the critical path. The engine sets every finding's savings from it;
``advisor whatif REPORT.json --fix RULE@FILE:LINE`` replays several fixes together.
"""

from __future__ import annotations

from .model import ReplayModel, build_model
from .predict import as_prediction, has_timeline, predict, rule_estimate, with_prediction
from .replay import Edit, Outcome, replay

__all__ = ["Edit", "Outcome", "ReplayModel", "as_prediction", "build_model", "has_timeline", "predict", "replay",
           "rule_estimate", "with_prediction"]
