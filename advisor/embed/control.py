"""On-demand deep capture in a running server, and the token-checked HTTP control endpoint.

``DeepTrigger`` runs a deep profile (yappi) for N seconds beside the always-on light
probes, from a raw thread, and writes its report to the dump directory; a signal (SIGUSR2
by default) or the endpoint starts it, one at a time. ``ControlEndpoint`` answers under a
path prefix of the server's own port, and only when a token was configured (off by
default): callers must come from loopback (else 403) and present the token
(``Authorization: Bearer …`` or ``X-Advisor-Token``; none: 401, a wrong one: 403, compared
in constant time). Its answers are short fixed texts or reports: never a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from advisor.probes.native import allocate_lock, sleep, start_new_thread

from ..profile import Report, report_json
from .dump import ReportDumper

LOG = logging.getLogger("advisor")
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1", "localhost")
DEFAULT_PREFIX = "/_advisor"
MAX_DEEP_SECONDS = 300.0
KEEP_FINISHED = 4


class DeepTrigger:
    """Deep captures of N seconds, one at a time, each report kept and written out."""

    def __init__(self, light: Any, dumper: ReportDumper | None = None, default_seconds: float = 10.0,
                 on_change: Callable[[], None] | None = None) -> None:
        self.light = light  # the always-on Profiler (its settings and route table are shared)
        self.dumper = dumper
        self.default_seconds = default_seconds
        self.active: Any = None
        self.finished: list[Any] = []  # stopped deep profilers still traced in a server thread
        self.last_report: Report | None = None
        self.last_path: Path | None = None
        self._lock = allocate_lock()
        self._installed: tuple[int, Any, Any] | None = None  # (signal, handler, previous) while installed
        # told when a capture starts or ends: the server's threads have to attach to it, then
        # detach from it, at their next request
        self.on_change = on_change

    def profilers(self) -> list[Any]:
        """The deep profilers a server thread must attach to (or detach from)."""
        active = self.active
        return [*self.finished, active] if active is not None else list(self.finished)

    def forget_detached(self) -> None:
        """Drop the finished deep profilers no server thread still traces for."""
        if self.finished:
            with self._lock:
                self.finished = [deep for deep in self.finished if deep.tracing_elsewhere]

    def trigger(self, seconds: float | None = None) -> bool:
        """Start a deep capture of `seconds` in the background; False if one is running."""
        span = min(max(float(seconds if seconds is not None else self.default_seconds), 0.1), MAX_DEEP_SECONDS)
        with self._lock:
            if self.active is not None:
                return False
            from ..api import Profiler

            deep = Profiler("deep", sample_rate=self.light.sample_rate, gevent=self.light.gevent,
                            select=self.light.select, ignore=self.light.ignore, settings=self.light.settings,
                            calibrate=False)
            deep.routes = self.light.routes  # the server's routes, so findings name theirs
            self.light.riders.append(deep)  # stopping the light probes stops this one first
            self.active = deep
        self._changed()
        try:
            start_new_thread(self._run, (deep, span))
        except BaseException:
            self.active = None
            raise
        return True

    def _run(self, deep: Any, seconds: float) -> None:
        try:
            deep.start()
            deep.ignore_current_thread()
            waited = 0.0
            while waited < seconds and self.light.running:
                sleep(min(0.05, seconds - waited))
                waited += 0.05
            report = deep.stop()
            self.last_report = report
            if self.dumper is not None:
                self.last_path = self.dumper.write(report, kind="deep")
        except Exception as error:  # the server goes on; say why once per capture
            LOG.warning("advisor: deep capture failed: %s: %s", type(error).__name__, error)
            try:
                if deep.running:
                    deep.stop()
            except Exception:
                pass
        finally:
            with self._lock:
                self.finished = [*self.finished, deep][-KEEP_FINISHED:]
                self.active = None
                if deep in self.light.riders:
                    self.light.riders.remove(deep)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def stop(self) -> None:
        """End a running deep capture now (before the light probes stop: they were first)."""
        deep = self.active
        if deep is not None and deep.running:
            try:
                deep.stop()
            except Exception:
                pass

    def install_signal(self, signum: int = signal.SIGUSR2) -> bool:
        """Start a deep capture when the process gets `signum` (main thread only; the
        previous handler is chained). False if it could not be installed.

        A forked child inherits the handler with the parent's trigger in it: there it only
        chains (the child's own agent installs its own), and a child's install skips it."""
        pid = os.getpid()
        previous = signal.getsignal(signum)
        while getattr(previous, "_advisor_pid", pid) != pid:  # a parent's, inherited at a fork
            previous = previous._advisor_previous  # type: ignore[union-attr]

        def handler(number: int, frame: Any) -> None:
            if os.getpid() == pid:
                try:
                    self.trigger()
                except Exception as error:
                    LOG.warning("advisor: deep capture not started: %s", error)
            if callable(previous):
                previous(number, frame)

        handler._advisor_pid = pid  # type: ignore[attr-defined]
        handler._advisor_previous = previous  # type: ignore[attr-defined]
        try:
            signal.signal(signum, handler)
        except (ValueError, OSError) as error:  # not the main thread, or no such signal here
            LOG.warning("advisor: no deep-capture signal handler: %s", error)
            return False
        self._installed = (signum, handler, previous)
        return True

    def uninstall_signal(self) -> None:
        """Give the signal back the handler it had, where this trigger's is still installed."""
        installed, self._installed = self._installed, None
        if installed is None:
            return
        signum, handler, previous = installed
        try:
            if signal.getsignal(signum) is handler:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        except (ValueError, OSError, TypeError):  # not the main thread: the handler stays, harmless
            pass


@dataclass
class ControlResponse:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # the body, where it takes real work (a report): made off the request's thread (offthread.py)
    build: Callable[[], bytes] | None = None


def built(answer: ControlResponse, body: bytes) -> ControlResponse:
    """The answer with its body made."""
    return ControlResponse(answer.status, body, answer.content_type, answer.headers)


def failed(error: Exception) -> ControlResponse:
    """A 500 that tells the caller nothing more: the error goes to the server's log."""
    LOG.warning("advisor: control endpoint failed: %s: %s", type(error).__name__, error)
    return _text(500, "internal error")


def _text(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> ControlResponse:
    return ControlResponse(status, f"advisor: {message}\n".encode(), headers=headers or [])


REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 500: "Internal Server Error"}


class ControlEndpoint:
    """``GET {prefix}/report`` (a report now), ``POST {prefix}/deep?seconds=N`` (start a deep
    capture), ``GET {prefix}/deep`` (the last deep capture's report)."""

    def __init__(self, token: str | None, snapshot: Callable[[], Report], trigger: DeepTrigger,
                 prefix: str = DEFAULT_PREFIX) -> None:
        if token is not None and len(token) < 8:
            raise ValueError("the control token must be at least 8 characters")
        self._token = token.encode() if token is not None else None
        self.snapshot = snapshot
        self.trigger = trigger
        self.prefix = prefix.rstrip("/")

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def wants(self, path: str) -> bool:
        """Whether a request is for the endpoint (never when it is off: the app sees it)."""
        return self._token is not None and (path == self.prefix or path.startswith(self.prefix + "/"))

    def handle(self, method: str, path: str, query: str, token: str | None, remote: str | None) -> ControlResponse:
        try:
            return self._handle(method, path, query, token, remote)
        except Exception as error:  # details go to the server's log, not to the caller
            return failed(error)

    def _handle(self, method: str, path: str, query: str, token: str | None, remote: str | None) -> ControlResponse:
        expected = self._token
        if expected is None:
            return _text(404, "not found")
        if remote not in LOOPBACK:
            return _text(403, "only from loopback")
        if not token:
            return _text(401, "a token is required", [("WWW-Authenticate", 'Bearer realm="advisor"')])
        if not hmac.compare_digest(token.encode(), expected):
            return _text(403, "wrong token")
        action = path[len(self.prefix):].strip("/")
        if action == "report":
            if method not in ("GET", "HEAD"):
                return _text(405, "use GET")
            snapshot = self.snapshot
            return ControlResponse(200, b"", "application/json", build=lambda: report_json(snapshot()).encode())
        if action == "deep":
            if method in ("GET", "HEAD"):
                last = self.trigger.last_report
                if last is None:
                    return _text(404, "no deep capture yet")
                return ControlResponse(200, b"", "application/json", build=lambda: report_json(last).encode())
            if method != "POST":
                return _text(405, "use GET or POST")
            values = parse_qs(query).get("seconds", [])
            try:
                seconds = float(values[0]) if values else None
            except ValueError:
                return _text(400, "seconds must be a number")
            if seconds is not None and not 0.1 <= seconds <= MAX_DEEP_SECONDS:
                return _text(400, f"seconds must be between 0.1 and {MAX_DEEP_SECONDS:g}")
            if not self.trigger.trigger(seconds):
                return _text(409, "a deep capture is already running")
            body = json.dumps({"started": True, "seconds": seconds or self.trigger.default_seconds})
            return ControlResponse(202, body.encode() + b"\n", "application/json")
        return _text(404, "not found")


def presented_token(authorization: str | None, header: str | None) -> str | None:
    """The token of ``Authorization: Bearer TOKEN``, else of ``X-Advisor-Token``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return header.strip() if header else None
