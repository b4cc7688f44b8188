"""advisor: a concurrency-aware profiler and optimization advisor for Python.

``advisor run app.py`` runs a program under light probes and reports, for every asyncio
task and thread, how its wall time split into compute, I/O, waiting and scheduling.
Inside a running process, ``advisor.Profiler`` starts the same probes and takes reports
(``advisor.embed`` has the server middlewares), and ``advisor.analyze`` runs the rules
over a report. ``advisor.span`` / ``@advisor.trace`` mark pieces of work and ``advisor.tag``
labels the running unit (``advisor.spans``: no-ops unless a profiler runs). The report model
lives in ``advisor.profile``; the probes in ``advisor.probes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Profiler", "analyze", "span", "tag", "trace"]

if TYPE_CHECKING:
    from .api import Profiler, analyze
    from .spans import span, tag, trace

_SPANS = ("span", "tag", "trace")


def __getattr__(name: str) -> Any:
    # imported on first use: `advisor.probes` (imported by every probe) must not pull in
    # pydantic and the rules engine
    if name in _SPANS:
        # light: a program that marks spans imports no pydantic when nothing profiles it
        from . import spans

        value = getattr(spans, name)
        globals()[name] = value  # later `advisor.span` is a plain attribute: no call of this per span
        return value
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'advisor' has no attribute {name!r}")
