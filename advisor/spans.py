"""User spans and tags: ``advisor.span``, ``@advisor.trace`` and ``advisor.tag``.

A span marks a piece of work in the program (``with advisor.span("checkout", order=...)``,
or ``@advisor.trace`` on a function or coroutine function); a tag labels the unit (task,
greenlet, thread) or span that is running (``advisor.tag(tenant="acme")``). While advisor
profiles the process, the running profiler's recorder (``advisor.span_stats``) measures
each span with the same counters as a task; otherwise every call here is one global check
and returns at once. Nothing here ever raises into the program: a failing recorder turns
itself off. This module imports nothing heavy, so importing advisor in a program that is
not being profiled costs nothing either.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

# The recorder of the running profiler (an advisor.span_stats.SpanRecorder), or None.
_recorder: Any = None


class Span:
    """What ``advisor.span`` returns: a context manager (a no-op one when nothing profiles)."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        return None


_NO_SPAN = Span()


def span(name: str, **labels: object) -> Span:
    """A span called `name` around a ``with`` block; `labels` are kept as low-cardinality
    labels of the span (a few values per key; the rest count as ``other``)."""
    recorder = _recorder
    if recorder is None:
        return _NO_SPAN
    try:
        opened: Span = recorder.open(str(name), labels)
        return opened
    except Exception as error:
        _failed(recorder, error)
        return _NO_SPAN


@overload
def trace(function: F) -> F: ...


@overload
def trace(function: None = None, *, name: str | None = None) -> Callable[[F], F]: ...


def trace(function: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
    """Decorate a function or coroutine function so that each call is a span named after it
    (``module.qualname``, or `name`): ``@advisor.trace`` or ``@advisor.trace(name="load")``."""

    def decorate(target: F) -> F:
        label = name or f"{target.__module__}.{target.__qualname__}"
        code = getattr(target, "__code__", None)
        where = (code.co_filename, code.co_firstlineno, target.__qualname__) if code is not None else None
        if inspect.iscoroutinefunction(target):
            @functools.wraps(target)
            async def traced_coroutine(*args: Any, **kwargs: Any) -> Any:
                recorder = _recorder
                if recorder is None:
                    return await target(*args, **kwargs)
                with _open(recorder, label, where):
                    return await target(*args, **kwargs)

            return traced_coroutine  # type: ignore[return-value]

        @functools.wraps(target)
        def traced(*args: Any, **kwargs: Any) -> Any:
            recorder = _recorder
            if recorder is None:
                return target(*args, **kwargs)
            with _open(recorder, label, where):
                return target(*args, **kwargs)

        return traced  # type: ignore[return-value]

    if function is not None:
        return decorate(function)
    return decorate


def tag(**labels: object) -> None:
    """Label the running unit (task, greenlet or thread) and the spans open in it."""
    recorder = _recorder
    if recorder is None or not labels:
        return
    try:
        recorder.tag(labels)
    except Exception as error:
        _failed(recorder, error)


def _open(recorder: Any, name: str, where: tuple[str, int, str] | None) -> Span:
    try:
        opened: Span = recorder.open(name, {}, where)
        return opened
    except Exception as error:
        _failed(recorder, error)
        return _NO_SPAN


def _failed(recorder: Any, error: BaseException) -> None:
    try:
        recorder.disable(error)
    except Exception:
        deactivate(recorder)


# recorders of the captures running now, oldest first: spans go to the latest one (a deep
# capture started inside an always-on profiler takes them while it runs, then gives them back)
_running: list[Any] = []


def activate(recorder: Any) -> None:
    """Send spans and tags to `recorder` (the profiler that starts)."""
    global _recorder
    _running.append(recorder)
    _recorder = recorder


def deactivate(recorder: Any) -> None:
    """Stop sending spans to `recorder` (its profiler stopped, or it failed)."""
    global _recorder
    while recorder in _running:
        _running.remove(recorder)
    _recorder = _running[-1] if _running else None


def active_recorder() -> Any:
    """The recorder spans go to now, or None."""
    return _recorder
