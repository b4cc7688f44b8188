"""Is this code the program's own, or the standard library's / an installed package's?

Probes need the answer on hot paths (to record where a task awaited in the user's code),
so it is cached per code object; the core reuses the same directory test for reports.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import CodeType


def library_dirs() -> tuple[str, ...]:
    """Folders of the standard library and of installed packages, each ending in a separator."""
    paths = sysconfig.get_paths()
    dirs = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return tuple(sorted(os.path.abspath(d) + os.sep for d in dirs if d))


LIBRARY_DIRS = library_dirs()
PROBES_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_program_file(filename: str) -> bool:
    """Not the stdlib, not site-packages, not frozen or generated, not advisor's probes."""
    if not filename or filename.startswith("<"):
        return False
    absolute = os.path.abspath(filename)
    return not absolute.startswith(LIBRARY_DIRS) and not absolute.startswith(PROBES_DIR)


class ProgramCode:
    """A cache of ``is_program_file`` per code object."""

    def __init__(self) -> None:
        self._known: dict[CodeType, bool] = {}

    def __call__(self, code: CodeType) -> bool:
        known = self._known.get(code)
        if known is None:
            known = self._known[code] = is_program_file(code.co_filename)
        return known
