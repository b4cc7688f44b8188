"""Collections held off while a probe does something no finalizer may interrupt.

A collection runs finalizers, which are Python code, in whichever thread allocated; Python
code hands the GIL to another thread when asked. Two probe operations must not be cut that
way: reading another thread's frames (the sampler: that thread could free the frame being
read) and changing yappi's state from one thread while others are inside its profile
callback (deep mode: a thread paused in a finalizer inside CPython's call of the callback
comes back to tables another thread freed). While held, nothing is collected; the next
allocation after collects as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collections_held() -> Iterator[None]:
    """No collection starts inside (one already running in another thread goes on)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
