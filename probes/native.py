"""The interpreter's own thread primitives, captured before the program can replace them.

``gevent.monkey.patch_all()`` swaps ``threading.get_ident`` and ``_thread.get_ident`` for
per-greenlet versions. The probes key their state by OS thread, and ``sys._current_frames``
does too, so they keep the originals, taken when advisor is imported. A server that
patched before importing advisor (the usual order when advisor is embedded) still gets
the originals: gevent keeps them, and ``gevent.monkey.get_original`` hands them back.
"""

from __future__ import annotations

import _thread
import functools
import sys
import time
from typing import Any


def _original(module: Any, name: str) -> Any:
    """The unpatched ``module.name``, even when gevent patched it before advisor's import."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None:
        try:
            return monkey.get_original(module.__name__, name)
        except Exception:  # an older or partial gevent: what the module holds now
            pass
    return getattr(module, name)


get_ident = _original(_thread, "get_ident")
start_new_thread = _original(_thread, "start_new_thread")
allocate_lock = _original(_thread, "allocate_lock")
sleep = _original(time, "sleep")


# Called by advisor's own threads before each round of work, when yappi is loaded: deep mode
# starts yappi for every thread, which would trace them too (several times slower, and
# advisor's functions in the program's profile). It clears the calling thread's profile
# function; the program's threads keep theirs. A partial, not a function: a profiler sees no
# call of it (nor of the C function it calls), so not even this call lands in the profile.
clear_profile = functools.partial(sys.setprofile, None)
