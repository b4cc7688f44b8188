"""Where code lives: naming functions, shortening paths, and telling user code apart.

Findings must point into the user's code, never into the standard library,
site-packages or advisor itself; the sampler's stacks hold raw code objects and these
helpers turn them into the ``function`` / ``file`` / ``line`` triples of the report.
"""

from __future__ import annotations

import os
from functools import lru_cache
from types import CodeType

from advisor import probes as _probes
from advisor.probes.codeinfo import LIBRARY_DIRS, is_program_file

# advisor's own code: the core and the probes (a separate folder in editable installs)
_ADVISOR_DIRS = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep for path in (__file__, _probes.__file__)
)


_LIBRARY_DIRS = LIBRARY_DIRS


def hide_launcher(path: str) -> None:
    """Treat the script that launched advisor (the ``advisor`` console script) as advisor's."""
    global _LAUNCHERS
    _LAUNCHERS = (*_LAUNCHERS, os.path.abspath(path))
    is_advisor_file.cache_clear()
    is_user_file.cache_clear()


_LAUNCHERS: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def is_advisor_file(filename: str) -> bool:
    """Whether a file is part of advisor (its frames are hidden from reports)."""
    absolute = os.path.abspath(filename)
    return absolute.startswith(_ADVISOR_DIRS) or absolute in _LAUNCHERS


@lru_cache(maxsize=8192)
def is_user_file(filename: str) -> bool:
    """Whether a file is the user's code: not stdlib, site-packages, frozen or advisor's."""
    return not is_advisor_file(filename) and is_program_file(filename)


@lru_cache(maxsize=8192)
def display_path(filename: str) -> str:
    """A file relative to the working directory when under it, else absolute."""
    if not filename or filename.startswith("<"):
        return filename
    absolute = os.path.abspath(filename)
    cwd = os.getcwd() + os.sep
    if absolute.startswith(cwd):
        return absolute[len(cwd):]
    return absolute


@lru_cache(maxsize=8192)
def module_name(filename: str) -> str:
    """A dotted module name for a file: relative to the library dirs or the cwd."""
    if not filename or filename.startswith("<"):
        return filename.strip("<>")
    absolute = os.path.abspath(filename)
    best = ""
    for root in (*_LIBRARY_DIRS, os.getcwd() + os.sep):
        if absolute.startswith(root) and len(root) > len(best):
            best = root
    relative = absolute[len(best):] if best else os.path.basename(absolute)
    if relative.endswith(".py"):
        relative = relative[:-3]
    if relative.endswith(os.sep + "__init__"):
        relative = relative[: -len("__init__") - 1]
    return relative.replace(os.sep, ".")


def function_name(code: CodeType) -> str:
    """``module.qualname`` of a code object, as shown in reports."""
    qualname = getattr(code, "co_qualname", code.co_name)
    module = module_name(code.co_filename)
    return f"{module}.{qualname}" if module else qualname
