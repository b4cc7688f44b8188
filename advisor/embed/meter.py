"""Measuring one request: read the running unit's counters at its start and end.

A request runs in one greenlet (gevent's servers), one asyncio task (ASGI servers) or one
thread (threaded WSGI servers). At the start the meter reads that unit's accumulated
running, io, waiting and scheduling seconds from the probe (the current step counted up
to now) and points the unit's ``tag_samples`` at the route's stack table, so the sampler
charges the request's samples to its route; at the end it reads them again and adds the
difference to the route. A thread's request gets its exact CPU time from the thread's own
clock, and the rest of its wall time is split by what its off-CPU samples show. Any
exception in here disables the meter, is logged once, and the request goes on unmeasured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from advisor.probes.native import get_ident
from advisor.probes.records import UnitRecord

from ..span_stats import LISTENERS, request_ended, request_started
from .routes import FOLD_EVERY, RouteAggregate, RouteTable

LOG = logging.getLogger("advisor")
perf_counter = time.perf_counter

# What begin() hands to end(): [route, record or None, start time, running, io, waiting,
# scheduling, the record's previous tag table, on a loop (task or greenlet)?, the request's
# span for span listeners or None]
Pending = list[Any]

# The middleware's short way for a request in a traced greenlet, past the agent and this
# meter's Python (AdvisorWSGIMiddleware.__call__): the C switch hook's request_begin and
# request_end bound to the running capture, the route table's names, its unfolded list,
# and the table. Either hook function may answer None: then the meter's way is taken.
Gate = tuple[Callable[..., Any], Callable[..., Any], dict[str, RouteAggregate], list[Any], RouteTable]


class RequestMeter:
    """Per-request deltas of the running unit's counters, added to a route table."""

    def __init__(self, table: RouteTable, asyncio_first: bool = False,
                 on_disable: Callable[[], None] | None = None) -> None:
        self.table = table
        self.asyncio_first = asyncio_first
        self.capture: Any = None  # the running Capture (set by the middleware)
        self.failed: str | None = None
        self.on_disable = on_disable  # told once, when the meter is disabled
        # the C switch hook's request_begin / request_end for the capture last seen (None where
        # the hook was not built, or for an ASGI server, whose requests run in tasks)
        self._bound: Any = None
        self._fast_begin: Any = None
        self._fast_end: Any = None
        self._gate: Gate | None = None

    def _bind(self, capture: Any) -> None:
        on_greenlets = capture is not None and not self.asyncio_first
        hook = getattr(capture.greenlet_probe, "_hook", None) if on_greenlets else None
        self._fast_begin = getattr(hook, "request_begin", None)
        self._fast_end = getattr(hook, "request_end", None)
        self._gate = None
        if self._fast_begin is not None and self._fast_end is not None:
            self._gate = (self._fast_begin, self._fast_end, self.table.named, self.table.unfolded, self.table)
        self._bound = capture

    def gate(self) -> Gate | None:
        """The short way for the next requests, where there is one: the C hook is bound to
        the running capture, no span listener wants the requests, the meter is on."""
        if self.failed is not None or LISTENERS or self.capture is not self._bound:
            return None
        return self._gate

    # begin() and end() run once per request of a server: the common case, a request in a
    # traced greenlet, is the C switch hook's (request_begin / request_end, where it was
    # built); then an inline Python path (a greenlet, or an asyncio task for an ASGI server)
    # in few calls; _begin() and _end() are the general case.
    def begin(self, route: str) -> Pending | None:
        if self.failed is not None:
            return None
        try:
            aggregate = self.table.named.get(route) or self.table.route(route)
            capture = self.capture
            if capture is not self._bound:
                self._bind(capture)
            fast = self._fast_begin
            if fast is not None:
                # a list, None (the Python way), or False: tracing is paused, the request is timed here
                began: Any = fast(aggregate, aggregate.samples)
                if isinstance(began, list):
                    # the request as a span for span listeners (OpenTelemetry), None when there are none
                    began.append(request_started(route) if LISTENERS else None)
                    return began
            now = perf_counter()
            step = None
            if capture is not None:
                first, second = ((capture.asyncio_probe, capture.greenlet_probe) if self.asyncio_first
                                 else (capture.greenlet_probe, capture.asyncio_probe))
                step = first.current_step() or second.current_step()
            if step is not None:
                record = step[0]
                capture.sampler.flush_step(get_ident(), record, step[1], now)
                pending = [aggregate, record, now, record.running_s + (now - step[1]), record.io_s,
                           record.waiting_s, record.scheduling_s, record.tag_samples, True]
                record.tag_samples = aggregate.samples
            else:
                pending = self._begin(aggregate, now)
            pending.append(request_started(route) if LISTENERS else None)
            return pending
        except Exception as error:
            self.disable(error)
            return None

    def end(self, pending: Pending | None, error: bool) -> None:
        if pending is None or self.failed is not None:
            return
        try:
            opened = pending[9] if len(pending) > 9 else None
            if opened is not None:
                request_ended(opened, error)  # first: it puts back the route's sample table
            fast = self._fast_end
            if fast is not None:
                waiting = fast(pending, error, self.table.unfolded)
                if waiting is not None:
                    if waiting >= FOLD_EVERY:
                        self.table.fold()
                    return
            record = pending[1]
            capture = self.capture
            if record is None or not pending[8] or capture is None:
                self._end(pending, error)
                return
            now = perf_counter()
            first, second = ((capture.asyncio_probe, capture.greenlet_probe) if self.asyncio_first
                             else (capture.greenlet_probe, capture.asyncio_probe))
            step = first.current_step() or second.current_step()
            if step is None or step[0] is not record:
                self._end(pending, error, now)
                return
            capture.sampler.flush_step(get_ident(), record, step[1], now)
            record.tag_samples = pending[7]
            # added up later, with others (RouteTable.fold): what table.add(..., on_loop=True) does
            unfolded = self.table.unfolded
            unfolded.append((pending[0], now - pending[2], record.running_s + (now - step[1]) - pending[3],
                             record.io_s - pending[4], record.waiting_s - pending[5],
                             record.scheduling_s - pending[6], error))
            if len(unfolded) >= FOLD_EVERY:
                self.table.fold()
        except Exception as failure:
            self.disable(failure)

    def disable(self, error: BaseException) -> None:
        """Stop measuring requests (the server goes on) and say why, once."""
        if self.failed is None:
            self.failed = f"{type(error).__name__}: {error}"
            LOG.warning("advisor: request measurement disabled after an internal error: %s", self.failed)
            if self.on_disable is not None:
                self.on_disable()

    # -- the unit of the request ---------------------------------------------------------
    def _unit(self) -> tuple[UnitRecord, float, bool] | None:
        """(record, start of its current step, runs on a loop) of the unit running here."""
        capture = self.capture
        if capture is None:
            return None
        if self.asyncio_first:
            step = capture.asyncio_probe.current_step() or capture.greenlet_probe.current_step()
        else:
            step = capture.greenlet_probe.current_step() or capture.asyncio_probe.current_step()
        if step is not None:
            return step[0], step[1], True
        if capture.greenlet_probe.paused_here() and not self.asyncio_first:
            return None  # a greenlet's request while tracing pauses: timed only
        info = capture.threads.alive.get(get_ident())
        if info is not None and not self.asyncio_first:
            # a thread: its CPU clock gives the compute, its off-CPU samples (tagged to the
            # route) say what the rest was
            return info.record, -1.0, False
        return None

    def _begin(self, aggregate: RouteAggregate, now: float) -> Pending:
        unit = self._unit()
        if unit is None:
            return [aggregate, None, now, 0.0, 0.0, 0.0, 0.0, None, False]
        record, step_start, on_loop = unit
        if on_loop:  # what the sampler saw of this step so far is not the request's
            self.capture.sampler.flush_step(get_ident(), record, step_start, now)
        # a thread's request: its CPU clock now (exact, read in the request's own thread)
        running = record.running_s + (now - step_start) if on_loop else time.thread_time()
        pending = [aggregate, record, now, running, record.io_s, record.waiting_s, record.scheduling_s,
                   record.tag_samples, on_loop]
        record.tag_samples = aggregate.samples
        return pending

    def _end(self, pending: Pending, error: bool, now: float | None = None) -> None:
        aggregate: RouteAggregate = pending[0]
        record: UnitRecord | None = pending[1]
        if now is None:
            now = perf_counter()
        wall = now - pending[2]
        if record is None:
            self.table.add(aggregate, wall, None, error, False)
            return
        if not pending[8]:
            record.tag_samples = pending[7]
            self.table.add_thread(aggregate, wall, max(0.0, min(wall, time.thread_time() - pending[3])), error)
            return
        unit = self._unit()
        if unit is not None and unit[0] is record:  # the step's time seen up to now is the request's
            self.capture.sampler.flush_step(get_ident(), record, unit[1], now)
        record.tag_samples = pending[7]
        if unit is None or unit[0] is not record:
            # the request ended in another unit than it began (a handler that handed its
            # response to another task): its wall time counts, its breakdown cannot
            self.table.add(aggregate, wall, None, error, True)
            return
        running = record.running_s + (now - unit[1])
        parts = (max(0.0, running - pending[3]), max(0.0, record.io_s - pending[4]),
                 max(0.0, record.waiting_s - pending[5]), max(0.0, record.scheduling_s - pending[6]))
        self.table.add(aggregate, wall, parts, error, True)
