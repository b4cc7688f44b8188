"""The recursion limit as the program would have it bare.

advisor's runner calls the target from its own frames (the CLI, the runner, exec), levels
that bare Python does not have below a script's ``<module>``. A program that recursed near
the limit failed under advisor only. ``RecursionShift`` raises the interpreter's limit by
those levels, measured (the interpreter's entries from C take a level each and show no
frame), and shifts ``sys.getrecursionlimit`` and ``sys.setrecursionlimit`` by as much while
the program runs: it reads and sets the limit it would have bare, and reaches the same depth.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType


def unseen_levels() -> int:
    """The recursion levels below the caller that no frame shows: the interpreter's entries
    from C (the script's own run, runpy's exec under ``python -m advisor``). Found by diving
    to the limit (~0.3 ms), so to be called before any probe runs: a deep dive that ends in
    RecursionError under deep mode's yappi left its greenlet stats without their calls."""
    def dive(level: int) -> int:
        try:
            return dive(level + 1)
        except RecursionError:
            return level

    reachable = dive(1)  # calls from here: dive's frames, one level below this one's
    return sys.getrecursionlimit() - reachable - depth(sys._getframe(1)) - 1


def depth(frame: FrameType | None) -> int:
    """How many frames there are from `frame` down to the bottom of the stack."""
    count = 0
    while frame is not None:
        count += 1
        frame = frame.f_back
    return count


class RecursionShift:
    """The limit raised by `levels` (the runner's, below the program), and sys's getter and
    setter shifted by as many until ``remove``."""

    def __init__(self, levels: int) -> None:
        self.levels = levels
        self._get: Callable[[], int] = sys.getrecursionlimit
        self._set: Callable[[int], None] = sys.setrecursionlimit
        self.started_with = self._get()
        shift = self

        def getrecursionlimit() -> int:
            return shift._get() - shift.levels

        def setrecursionlimit(limit: int) -> None:
            shift._set(limit + shift.levels if isinstance(limit, int) and limit > 0 else limit)

        for ours, theirs in ((getrecursionlimit, self._get), (setrecursionlimit, self._set)):
            ours.__name__, ours.__qualname__, ours.__doc__ = theirs.__name__, theirs.__name__, theirs.__doc__
        self._ours = (getrecursionlimit, setrecursionlimit)

    def install(self) -> None:
        self._set(self.started_with + self.levels)
        sys.getrecursionlimit, sys.setrecursionlimit = self._ours

    def remove(self) -> int:
        """Put sys's functions back (where they are still these) and return the limit the
        program last set, as it sees it; the interpreter's limit is then at least the one
        advisor started with, for its report (a program's own 45 made that fail)."""
        programs = self._get() - self.levels
        if (sys.getrecursionlimit, sys.setrecursionlimit) == self._ours:
            sys.getrecursionlimit, sys.setrecursionlimit = self._get, self._set
        self._set(max(programs, self.started_with))
        return programs
