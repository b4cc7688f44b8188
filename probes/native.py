"""The interpreter's own thread primitives, captured before the program can replace them.

``gevent.monkey.patch_all()`` swaps ``threading.get_ident`` and ``_thread.get_ident`` for
per-greenlet versions. The probes key their state by OS thread, and ``sys._current_frames``
does too, so they keep the originals, taken when advisor is imported (before the program
runs and patches anything).
"""

from __future__ import annotations

import _thread
import time

get_ident = _thread.get_ident
start_new_thread = _thread.start_new_thread
allocate_lock = _thread.allocate_lock
sleep = time.sleep
