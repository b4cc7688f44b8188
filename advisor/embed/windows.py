"""Trace windows: under load, the always-on probes trace a server's greenlets part of the time.

Tracing every greenlet switch costs a gevent server a few µs a switch, and breaking a
request down costs a few more: on its cheapest requests (~0.1 ms of CPU) that is 10-15% of
the throughput. So the agent keeps an overhead budget, a share of a core (0.5% by
default). At the end of each window of tracing (0.25 s) it estimates what tracing all the
time would cost at the rates the window saw (switches and requests a second, times the
cost of each as measured on a busy server) and, when that is over budget, pauses the
tracing long enough that the share of time traced keeps the cost within it: a window, a
pause, a window... While paused, the switch hook is out of the thread's greenlet trace and
requests are counted and timed (their route's count and percentiles), not broken down; a
route's breakdown comes from the requests that ran inside windows (``RouteStat.measured``).
A quiet server stays within budget and is traced all the time. The report says what share
of the time was traced (``run.overhead.traced_share``). The budget is a share of the CPU the
server's thread can get: a window's seconds less those the thread spent runnable but waiting
for a CPU (the kernel's run-queue time), so a worker that shares its core with another (two
gevent workers a core, or any busy neighbour) is held to the same share of its own
throughput as one alone on its core.
"""

from __future__ import annotations

import math

# What tracing costs a saturated gevent server (benchmarks/server_overhead.py, 2026-12-07:
# the switch hook with greenlet's trace call ~3-4 µs a switch, a request's breakdown and
# the middleware's measuring path ~6 µs, both more than in a tight loop: a server's working
# set is larger, and the hook's data competes with it for the caches). The example's
# requests (3 switches each) cost +14.7 µs traced on a core of their own, and a median of
# +18 µs (+3 to +40) in the windows of a server sharing its core with another, read from
# the thread's CPU clock at each window's ends: these figures take the second.
SWITCH_COST_S = 4e-6
REQUEST_COST_S = 6e-6
DEFAULT_BUDGET = 0.005  # of the CPU the server's thread gets
WINDOW_S = 0.25
# a window whose thread got less than this share of its seconds on a CPU is costed as if
# it had got this share (the rest of its seconds waited for one): a starved thread's tracing
# is costed at most ten times its share of the window's seconds
MIN_CAPACITY = 0.1
# never trace less than this share (a pause is at most 49 windows, ~12 s); a share this
# close to all is traced all the time
MIN_SHARE = 0.02
FULL_SHARE = 0.95


class TraceWindows:
    """When to pause and resume the tracing, from the rates each window of it saw."""

    def __init__(self, budget: float = DEFAULT_BUDGET, window_s: float = WINDOW_S) -> None:
        if not budget > 0.0:  # (NaN too)
            raise ValueError("the trace budget must be a positive share of one core")
        if not window_s > 0.0:
            raise ValueError("a trace window must last more than 0 s")
        self.budget = budget
        self.window_s = window_s
        self.tracing = True
        self.share = 1.0  # of the time traced, as last decided
        self.next_change = math.inf  # when change() has something to do
        self._opened: float | None = None  # the window's start, and the counters then
        self._switches = 0
        self._requests = 0
        self._waited: float | None = None

    def full_cost(self, seconds: float, switches: int, requests: int, waited: float = 0.0) -> float:
        """The share of the CPU the thread could get (`seconds` less the `waited` for a
        CPU) that tracing everything would cost at these rates."""
        capacity = max(seconds - max(waited, 0.0), MIN_CAPACITY * seconds, 1e-9)
        return (switches * SWITCH_COST_S + requests * REQUEST_COST_S) / capacity

    def due(self, now: float) -> bool:
        """Whether change() has something to decide at `now`."""
        return self._opened is None or now >= self.next_change

    def change(self, now: float, switches: int, requests: int, waited: float | None = None) -> str | None:
        """Asked at a request (in the thread that serves it): ``"pause"``, ``"resume"`` or
        None. `switches` and `requests` are the hook's counters (switches count only while
        traced); `waited`, the seconds the thread has spent waiting for a CPU so far (None
        where the kernel does not say: the window's seconds are then all the thread's).
        ``next_change`` says when asking again has a point."""
        if self._opened is None:
            self._open(now, switches, requests, waited)
            return None
        if now < self.next_change:
            return None
        if not self.tracing:
            self.tracing = True
            self._open(now, switches, requests, waited)
            return "resume"
        before = self._waited
        waited_s = waited - before if waited is not None and before is not None else 0.0
        cost = self.full_cost(now - self._opened, switches - self._switches, requests - self._requests, waited_s)
        self.share = 1.0 if cost <= self.budget else max(MIN_SHARE, self.budget / cost)
        if self.share >= FULL_SHARE:
            self._open(now, switches, requests, waited)
            return None
        self.tracing = False
        # a window of window_s traced, then this long paused: the share of time traced is `share`
        self.next_change = now + self.window_s * (1.0 - self.share) / self.share
        return "pause"

    def restart(self, now: float, switches: int, requests: int, waited: float | None = None) -> None:
        """Tracing goes on from now, whatever was decided (a pause that could not be taken,
        a deep capture that needs every switch): a new window opens."""
        self.tracing = True
        self._open(now, switches, requests, waited)

    def _open(self, now: float, switches: int, requests: int, waited: float | None) -> None:
        self._opened = now
        self._switches, self._requests, self._waited = switches, requests, waited
        self.next_change = now + self.window_s
