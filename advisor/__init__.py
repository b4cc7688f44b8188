"""advisor: a concurrency-aware profiler and optimization advisor for Python.

``advisor run app.py`` runs a program under light probes and reports, for every asyncio
task and thread, how its wall time split into compute, I/O, waiting and scheduling.
The report model lives in ``advisor.profile``; the probes in ``advisor.probes``.
"""

from __future__ import annotations

__version__ = "0.1.0"
