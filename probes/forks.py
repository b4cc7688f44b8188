"""What a probe must redo in a process the program forks.

``fork`` copies the process with one thread: a lock that another thread (the sampler's, a
thread being started or ending) held at that instant stays locked forever in the child,
and the first probe hook there that takes it hangs the child. Each probe that owns a lock
registers a method here that gives the child fresh ones. Only a weak reference to the probe
is kept: ``os.register_at_fork`` cannot forget a callback, and a probe must not live as
long as the process because of it.
"""

from __future__ import annotations

import os
import weakref
from typing import Any


def renew_in_child(owner: Any, method: str) -> None:
    """Call ``owner.method()`` in every child forked from now on, while `owner` lives."""
    if not hasattr(os, "register_at_fork"):
        return
    reference = weakref.ref(owner)

    def in_child() -> None:
        probe = reference()
        if probe is not None:
            try:
                getattr(probe, method)()
            except Exception:  # nothing of advisor's may break the child
                pass

    os.register_at_fork(after_in_child=in_child)
