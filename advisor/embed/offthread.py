"""The control endpoint's heavy answers (a report built and serialised: ~10 ms of CPU, up to
0.5 s for the first, which parses the source files its findings point at),
made on a raw thread of advisor's own while the request waits its server's way.

Built in the request's own greenlet or task, a report's CPU showed as the server's: the
request greenlet's compute and the thread's (a finding could point at advisor's code).
Built here, on a thread the profiler leaves out of its reports, it is advisor's. The
request meanwhile waits as the server waits: a gevent greenlet sleeps on its hub (gevent's
``sleep``, whether or not the program patched ``time``), an asyncio task awaits
``asyncio.sleep``, a thread of a threaded server sleeps. The work still holds the GIL
while it runs: the server's other requests wait for it as before, and are told why by the
scheduling time of their units.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from advisor.probes.native import allocate_lock, clear_profile, start_new_thread

T = TypeVar("T")
# between looks at the work, growing: a report takes 5 ms to 0.5 s, and each look wakes the
# waiting request (a switch and a timer, on the server's thread: with looks every 2 ms, 15
# reports of ~250 ms cost it 0.26 s of CPU; 0.12 s with these)
FIRST_POLL_S = 0.001
MAX_POLL_S = 0.025
GROWTH = 1.5
TIMEOUT_S = 120.0


class OffThread(Generic[T]):
    """`work()` run on a new raw thread, which calls `on_thread()` first and `off_thread()`
    last (the profiler leaves it out of its reports meanwhile)."""

    def __init__(self, work: Callable[[], T], on_thread: Callable[[], None] | None = None,
                 off_thread: Callable[[], None] | None = None) -> None:
        self._work = work
        self._on_thread = on_thread
        self._off_thread = off_thread
        self._result: T | None = None
        self._error: BaseException | None = None
        self._done = allocate_lock()
        self._done.acquire()
        start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            if self._on_thread is not None:
                self._on_thread()
            if "yappi" in sys.modules:  # a deep capture's yappi, started for every thread
                clear_profile()
            self._result = self._work()
        except BaseException as error:  # handed to the waiting request, which answers 500
            self._error = error
        finally:
            try:
                if self._off_thread is not None:
                    self._off_thread()
            finally:
                self._done.release()

    @property
    def ready(self) -> bool:
        return not self._done.locked()

    def result(self) -> T:
        """The work's result (or its exception, raised here), once ready."""
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


def server_sleep() -> Callable[[float], object]:
    """How the calling request can wait without holding up its server: gevent's ``sleep``
    in a greenlet that runs under a hub (patched or not: an unpatched ``time.sleep`` would
    block every request), else the ``time.sleep`` of the moment (gevent's, once patched)."""
    gevent = sys.modules.get("gevent")
    greenlet = sys.modules.get("greenlet")
    if gevent is not None and greenlet is not None and greenlet.getcurrent().parent is not None:
        return gevent.sleep  # type: ignore[no-any-return]
    return time.sleep


def wait_for(job: OffThread[T]) -> T:
    """Wait, the server's way, for a job of a synchronous server (WSGI)."""
    nap = server_sleep()
    for pause in _pauses():
        if job.ready:
            break
        nap(pause)
    return job.result()


async def wait_async(job: OffThread[T]) -> T:
    """Wait for a job in an asyncio task (ASGI), the loop serving other requests meanwhile."""
    import asyncio

    for pause in _pauses():
        if job.ready:
            break
        await asyncio.sleep(pause)
    return job.result()


def _pauses() -> Iterator[float]:
    """The waits between looks at a job, growing to MAX_POLL_S, until TIMEOUT_S has passed."""
    deadline = time.monotonic() + TIMEOUT_S
    pause = FIRST_POLL_S
    while time.monotonic() < deadline:
        yield pause
        pause = min(MAX_POLL_S, pause * GROWTH)
    yield 0.0  # a last look
    raise TimeoutError(f"the answer took more than {TIMEOUT_S:g} s")
