"""Hooks set as attributes of library code (asyncio's ``Handle._run`` and
``BaseEventLoop.create_task``, threading's ``Thread._bootstrap_inner``, gevent's ``spawn``),
and how they come off when two captures stop out of order.

A probe puts its hook over what it found there and, when it stops, puts that back. Two
captures that stop in the reverse order of their start (a server's deep capture beside its
always-on probes) get everything back. Stopped in the order they started (a test's own
profiler around a server whose agent starts one at its first request), the first would take
the second's hook off with its own, and the second would then put the first's back, left
recording for good. So each hook carries a ``Switch``: a probe whose hook is no longer on top
turns it off (it then passes every call straight through), and a probe that puts back what it
found skips the hooks below it that are off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Switch:
    """Whether a hook still does its probe's work (read at each call: one attribute)."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


def mark(hook: Callable[..., Any], original: Callable[..., Any], switch: Switch) -> Callable[..., Any]:
    """Tag `hook` as advisor's, over `original`, turned off by `switch`."""
    hook.__wrapped__ = original  # type: ignore[attr-defined]
    hook._advisor_switch = switch  # type: ignore[attr-defined]
    return hook


def below_hooks_off(function: Any) -> Any:
    """`function`, or what is under it once the hooks turned off are skipped."""
    while True:
        switch = getattr(function, "_advisor_switch", None)
        if switch is None or switch.on:
            return function
        function = function.__wrapped__


def take_off(owner: Any, name: str, hook: Any, original: Any, switch: Switch) -> None:
    """End `hook` (set as ``owner.name`` over `original`): put back what it found, less any
    hooks turned off since, if it is still on top; otherwise only turn it off."""
    switch.on = False
    if getattr(owner, name, None) is hook:
        setattr(owner, name, below_hooks_off(original))
