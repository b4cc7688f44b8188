"""advisor embedded in a running server: WSGI and ASGI middlewares over an always-on profiler.

``AdvisorWSGIMiddleware`` (gevent's ``pywsgi`` or any WSGI server) and
``AdvisorASGIMiddleware`` (uvicorn, hypercorn…) measure each request as a transaction of
its route, write the current report to a directory now and then, and start a deep capture
on a signal or on a token-checked request to the control endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["AdvisorASGIMiddleware", "AdvisorWSGIMiddleware", "Agent"]

if TYPE_CHECKING:
    from .agent import Agent
    from .asgi import AdvisorASGIMiddleware
    from .wsgi import AdvisorWSGIMiddleware

_HOMES = {"Agent": "agent", "AdvisorASGIMiddleware": "asgi", "AdvisorWSGIMiddleware": "wsgi"}


def __getattr__(name: str) -> Any:
    # loaded on first use: advisor.api imports this package's route table, and the
    # middlewares import advisor.api
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'advisor.embed' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{home}"), name)
