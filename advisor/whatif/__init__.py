"""What-if replay: predict a run's wall time with one or several findings' fixes applied.

Each rule's fix is an edit of the run (``fixes``). Where the report recorded the steps of
the units the edit touches (asyncio tasks, greenlets), ``simulate`` replays their event
loops and hubs step by step, a discrete-event simulation of the timeline; otherwise the
per-unit aggregates become a replay model (``model``) and ``replay`` shares the loops, hubs
and the GIL out again and walks the critical path. The engine sets every finding's savings
from it; ``advisor whatif REPORT.json --fix RULE@FILE:LINE`` replays several fixes together.
"""

from __future__ import annotations

from .model import ReplayModel, build_model
from .predict import as_prediction, has_timeline, predict, rule_estimate, with_prediction
from .replay import Edit, Outcome, replay

__all__ = ["Edit", "Outcome", "ReplayModel", "as_prediction", "build_model", "has_timeline", "predict", "replay",
           "rule_estimate", "with_prediction"]
