"""WSGI middleware: every request a transaction of its route, measured by advisor's probes.

Works with any WSGI server; under gevent's ``pywsgi`` each request runs in a greenlet,
under a threaded server in a thread, and the meter reads that unit's counters (see
``advisor.embed.meter``). A request's time runs from the call of the app until it returns
its body, or, for a streamed body, until the server closes it. The route is ``METHOD
path`` unless path templates (``routes``) or a ``route`` function name it. Requests for the
control endpoint (off unless a token is given) are answered here and never reach the app.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..span_stats import LISTENERS
from .agent import Agent
from .meter import Pending
from .routes import FOLD_EVERY
from .templates import NO_TEMPLATES, PathTemplates

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
RouteOf = Callable[[dict[str, Any]], str]


def default_route(environ: dict[str, Any]) -> str:
    """``METHOD /path`` (no query string)."""
    return NO_TEMPLATES(environ)


class _MeasuredBody:
    """A streamed response body: the request ends when the server closes it."""

    def __init__(self, body: Iterable[bytes], finish: Callable[[], None]) -> None:
        self._body = body
        self._finish: Callable[[], None] | None = finish

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            finish, self._finish = self._finish, None
            if finish is not None:
                finish()


def _finisher(meter: Any, pending: Any, keeper: Any, failed: Callable[[], bool] | None) -> Callable[[], None]:
    """What ends a streamed body's request (made here, not in the middleware's call: a
    closure there would make each of its requests build cells for the variables it keeps)."""
    if failed is None:
        return lambda: meter.end(pending, keeper.status is not None and keeper.code >= 500)
    return lambda: meter.end(pending, failed())


def _status_reader(start_response: StartResponse) -> tuple[StartResponse, Callable[[], bool]]:
    """For any WSGI server: start_response wrapped to note the status code, and a function
    that says whether it was a server error (5xx)."""
    status: list[int] = [0]

    def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        try:
            status[0] = int(code.split(" ", 1)[0])
        except ValueError:
            pass
        return start_response(code, headers, exc_info) if exc_info is not None else start_response(code, headers)

    return start, lambda: status[0] >= 500


try:  # the common request's call in C (optional: built where a compiler was, see _gate.c)
    from ._gate import GatedCall as _GatedCall  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the build
    _GatedCall = None
try:  # the C switch hook's answer for a request while tracing is paused, for _gate.c to ask
    from advisor.probes._switch_hook import _GATE_API  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the build
    _GATE_API = None


class PythonCall:
    """The middleware's call where _gate.c was not built (or to compare with it): _serve."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self._serve(environ, start_response)  # type: ignore[attr-defined,no-any-return]


if TYPE_CHECKING:
    _CallBase = PythonCall
else:
    _CallBase = _GatedCall if _GatedCall is not None else PythonCall


class AdvisorWSGIMiddleware(_CallBase):
    """Wrap a WSGI app: ``app = AdvisorWSGIMiddleware(app, dump_dir="/var/tmp/advisor")``.

    Keyword arguments are the ``Agent``'s (``profiler``, ``mode``, ``control_token``,
    ``control_prefix``, ``dump_dir``, ``dump_interval_s``, ``dump_keep``, ``deep_signal``,
    ``deep_seconds``, ``max_routes``, ``steady_rate``, ``trace_budget``), plus ``routes``: path templates such as
    ``"/products/{id}"`` that name the requests whose path they match (``GET
    /products/{id}``), or ``route``: a function of the environ that names the request's route.
    """

    def __init__(self, app: WSGIApp, *, routes: Iterable[str] = (), route: RouteOf | None = None,
                 agent: Agent | None = None, **options: Any) -> None:
        if route is not None and routes:
            raise ValueError("name routes by templates (routes=) or by a function (route=), not both")
        self.app = app
        # templates (none: the default route) are matched in _gate.c without a Python call
        templates = PathTemplates(routes) if route is None else None
        self.route_of: RouteOf = route or templates  # type: ignore[assignment]
        self.agent = agent if agent is not None else Agent(**options)
        self._keepers: tuple[type, ...] | None = None
        # the control endpoint is on when a token was given (fixed for the agent's life, as
        # its path): a request's path is matched against the prefix first, with no call
        self._control_on = self.agent.control.enabled
        self._control_prefix = self.agent.control.prefix
        if isinstance(self, _GatedCall or ()):
            self._bind_gate(self.agent, app, self.route_of, default_route,
                            self._control_prefix if self._control_on else None, LISTENERS, FOLD_EVERY, templates,
                            _GATE_API)

    @property
    def profiler(self) -> Any:
        return self.agent.profiler

    def _serve(self, environ: dict[str, Any], start_response: StartResponse,
               route: str | None = None) -> Iterable[bytes]:
        """A request (the call, where _gate.c was not built). Every request of the server
        runs this, but those _gate.c measures itself (given `route`, it named the route and
        knows the request is not the control endpoint's): the common case is kept to few
        Python calls, and _gate.c does what it does."""
        agent = self.agent
        if route is None:
            if self._control_on:
                path = environ.get("PATH_INFO", "") or "/"
                if path.startswith(self._control_prefix) and agent.control.wants(path):
                    return self._control(environ, start_response, path)
            try:
                route = self.route_of(environ)
            except Exception:
                route = default_route(environ)
        # the short way (the agent's gate, see meter.Gate): straight to the C switch hook, on
        # a route seen before, when the agent has nothing else to do per request
        pending = None
        fast = agent.fast
        if fast is not None and not LISTENERS:
            aggregate = fast[2].get(route)
            if aggregate is not None:
                try:
                    pending = fast[0](aggregate, aggregate.samples)
                except Exception as failure:
                    agent.meter.disable(failure)
                if pending is False:  # tracing is paused (only _gate.c counts such a request)
                    pending = None
        if pending is None:
            fast = None
            pending = agent.begin(route)
            if pending is None:
                return self.app(environ, start_response)
        handler = getattr(start_response, "__self__", None)
        keepers = self._keepers
        if keepers is None:
            keepers = self._code_keepers()
        keeper: Any = handler if handler is not None and isinstance(handler, keepers) else None
        if keeper is not None:
            # gevent.pywsgi's handler keeps the status code it was given (its `status` is
            # reset before each request): no wrapper around start_response to read it, and
            # for a list body (the common case) no function made to read it either
            respond, failed = start_response, None
        else:
            respond, failed = _status_reader(start_response)
        meter = agent.meter
        try:
            body = self.app(environ, respond)
        except BaseException:
            meter.end(pending, True)
            raise
        if isinstance(body, (list, tuple)):
            errored = failed() if failed is not None else keeper.status is not None and keeper.code >= 500
            if fast is None:
                meter.end(pending, errored)
                return body
            try:
                waiting = fast[1](pending, errored, fast[3])
                if waiting is None:  # the request did not end where it began: the meter's way
                    meter.end(pending, errored)
                elif waiting >= FOLD_EVERY:
                    fast[4].fold()
            except Exception as failure:
                meter.disable(failure)
            return body
        return _MeasuredBody(body, _finisher(meter, pending, keeper, failed))

    def _streamed(self, body: Iterable[bytes], pending: Pending, keeper: Any) -> Iterable[bytes]:
        """A streamed body of a request _gate.c measured: its close ends the request."""
        return _MeasuredBody(body, _finisher(self.agent.meter, pending, keeper, None))

    def _code_keepers(self) -> tuple[type, ...]:
        """The handler types known to keep the response's status code (gevent.pywsgi's),
        looked up at the first request: a server does not change."""
        pywsgi = sys.modules.get("gevent.pywsgi")
        handler_type = getattr(pywsgi, "WSGIHandler", None)
        keepers = self._keepers = (handler_type,) if isinstance(handler_type, type) else ()
        if _GatedCall is not None:
            self._set_keeper(keepers[0] if keepers else None)  # type: ignore[attr-defined]
        return keepers

    def _control(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> list[bytes]:
        from .control import REASONS, presented_token

        token = presented_token(environ.get("HTTP_AUTHORIZATION"), environ.get("HTTP_X_ADVISOR_TOKEN"))
        answer = self.agent.answer(environ.get("REQUEST_METHOD", "GET"), path, environ.get("QUERY_STRING", ""),
                                   token, environ.get("REMOTE_ADDR"))
        headers = [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body))),
                   ("Cache-Control", "no-store"), *answer.headers]
        start_response(f"{answer.status} {REASONS.get(answer.status, '')}".rstrip(), headers)
        return [answer.body]
