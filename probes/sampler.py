"""The statistical sampler: a daemon thread that looks at every thread ~100 times a second.

At each tick it reads each thread's CPU clock and Python stack. The CPU delta since the
previous tick splits that interval into on-CPU and off-CPU time; the stack says where
(and, for off-CPU time, what the thread was blocked in — classified later by advisor).
Off-CPU time is also flagged "contended" when other threads used the CPU meanwhile,
which is how waiting for the GIL is told apart from an unknown blocking call. When a
task step is running on the thread (the asyncio probe publishes it in ``running``), the
sample is charged to that task as well: that is how a step that holds the event loop
in ``time.sleep`` or a socket call is measured without reading a CPU clock per step.

Given a steady interval longer than its interval (an always-on server's), the sampler
ticks at the steady interval only, and in between watches the greenlet switch hook's clock
without the GIL (``_stacks.wait_tick``, every half interval): when a greenlet has held its
hub for a quarter of the interval, it looks at once, and once an interval while the hold
lasts. Such an early tick charges only the running step (from its start, or from its last
look, as any tick does); each thread's own samples are taken at the steady ticks alone,
which keep their schedule, so they stay an unbiased sample of the thread's time.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from .forks import renew_in_child
from .gc_hold import collections_held
from .native import allocate_lock, clear_profile, get_ident, sleep, start_new_thread
from .records import Stack, UnitRecord, add_weights
from .threads import ThreadInfo, ThreadRegistry, read_clock, read_run_delay

MAX_DEPTH = 128
SAMPLING_SWITCH_INTERVAL = 0.00001
# a greenlet that has held its hub this share of the sampling interval is looked at early;
# the hook's clock is read every WATCH_SHARE of it: a hold as long as the interval (from 3/4
# of it) is always seen, as it is by a tick every interval
HOLD_SHARE = 0.25
WATCH_SHARE = 0.5
# A thread outside `threading` is asked about again this often: its stack was captured at
# every tick only to be dropped (an idle gevent thread pool worker's 10 frames; a few µs in
# a gevent server, more for a deep stack).
UNADOPTABLE_RECHECK_TICKS = 100
# ... once it failed to be adopted at this many ticks in a row: a threading.Thread that is
# starting is in the interpreter's threads a moment before it is in threading's table, and
# skipping it at once hid a 1 s thread's first second
UNADOPTABLE_AFTER_TICKS = 10

# A running step as published by a unit probe:
#   [record, step start, sampler state or None, thread CPU at step start or -1.0]
# sampler state, once the sampler has seen the step: [seen_at, cpu_at_seen, last stack]
RunningSlot = list[Any]


def is_sampling_interval(interval: float) -> bool:
    """Whether the switch interval is the sampler's. Python keeps it in whole microseconds:
    the 1e-05 set reads back as 9.999999999999999e-06, and an equality test (what this
    module had) took it for the program's own, so the program's was never given back."""
    return abs(interval - SAMPLING_SWITCH_INTERVAL) < 5e-7


_LINE_AT: dict[tuple[CodeType, int], int] = {}


def line_at(code: CodeType, offset: int) -> int:
    """The line of the instruction at `offset`, or of the nearest one before it that has a
    line (a loop's backward jump has none in 3.11: it belongs to the loop's last line)."""
    key = (code, offset)
    line = _LINE_AT.get(key)
    if line is None:
        line = code.co_firstlineno
        for start, _end, number in code.co_lines():
            if start > offset:
                break
            if number is not None:
                line = number
        if len(_LINE_AT) < 100_000:
            _LINE_AT[key] = line
    return line


def capture_stack(frame: FrameType | None) -> Stack:
    """The stack of a frame, leaf first, as (code, line) pairs."""
    out: list[tuple[CodeType, int]] = []
    while frame is not None and len(out) < MAX_DEPTH:
        code = frame.f_code
        out.append((code, frame.f_lineno or line_at(code, frame.f_lasti)))
        frame = frame.f_back
    return tuple(out)


def _first_hook_frame(frame: FrameType | None, hooks: set[CodeType]) -> FrameType | None:
    depth = 0
    while frame is not None and depth < MAX_DEPTH:
        if frame.f_code in hooks:
            return frame
        frame = frame.f_back
        depth += 1
    return None


Captured = tuple[Stack, FrameType | None, float | None, float | None]


def capture_stacks_in_python(skip: set[int], hooks: set[CodeType] | None, max_depth: int = MAX_DEPTH,
                             known: dict[int, ThreadInfo] | None = None) -> dict[int, Captured]:
    """What _stacks.c's capture_stacks does, where it was not built: each thread's current
    stack (but the skipped threads'), its first frame whose code is in `hooks`, and for a
    thread in `known` its CPU clock and run-queue time (else None, None). The sampling
    thread can lose the GIL in the middle of this (at the very least at each /proc read), so
    a generator's frame that yields meanwhile loses its callers, and the counters are read
    later than the stack: the C version holds the GIL from start to end."""
    del max_depth  # capture_stack's own
    with collections_held():
        stacks = {ident: (capture_stack(frame), _first_hook_frame(frame, hooks) if hooks is not None else None)
                  for ident, frame in sys._current_frames().items() if ident not in skip}
    out: dict[int, Captured] = {}
    for ident, (stack, hook) in stacks.items():
        info = known.get(ident) if known is not None else None
        if info is None:
            out[ident] = (stack, hook, None, None)
        else:
            out[ident] = (stack, hook, read_clock(info.clock), read_run_delay(info.schedstat))
    return out


def add_hot_in_python(hot: dict[CodeType, float], stack: Stack, seconds: float) -> None:
    """Charge on-CPU seconds to every code object on a stack, once each."""
    codes: dict[CodeType, None] = {}
    for code, _line in stack:
        codes[code] = None  # stack order, as the C version adds them
    for code in codes:
        hot[code] = hot.get(code, 0.0) + seconds


try:  # read with the GIL held from start to end (optional: built where a compiler was found)
    from ._stacks import capture_stacks  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the build
    capture_stacks = capture_stacks_in_python
try:  # a code object hashes all the code nested in it at every call: the C version hashes it once
    from ._stacks import add_hot  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the build
    add_hot = add_hot_in_python
try:  # the watch between steady ticks (without it, or without the C switch hook: every interval)
    from ._stacks import wait_tick  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the build
    wait_tick = None


class Sampler:
    """Samples stacks and CPU of all threads, charging them to threads and running units."""

    name = "sampler"

    def __init__(self, threads: ThreadRegistry, interval: float = 0.01,
                 clock: Callable[[], float] = time.perf_counter, steady_interval: float | None = None) -> None:
        self.threads = threads
        self.interval = interval
        # ticks this far apart while the greenlet probe's hold clock can be watched (None:
        # every interval); what gives the switch hook's capsule, or None, asked after each tick
        self.steady_interval = steady_interval if steady_interval is not None and steady_interval > interval else None
        self.hold_clock: Callable[[], Any] | None = None
        # ... and which thread's hub that clock is (its CPU clock is read at each look)
        self.hold_thread: Callable[[], int | None] | None = None
        self._hold_ident: int | None = None
        self._hold_cpu_clock: int | None = None
        self.early_ticks = 0
        self._next_steady = 0.0
        self._next_early = 0.0
        self._early_hold = 0.0  # when the hold the last early tick looked at started
        # set by the greenlet probe while its tracing pauses (an attribute, read before
        # clear_profile without a call): the hold clock then says nothing, so it is not watched
        self.quiet = False
        self._clock = clock
        # thread ident -> the step running there (written by the greenlet probe at switches)
        self.running: dict[int, RunningSlot | None] = {}
        # code objects of hooks whose frames hold a running step (the asyncio probe's)
        self.step_frames: set[CodeType] = set()
        self._seen_steps: dict[int, RunningSlot] = {}
        self.lock = allocate_lock()
        self.ticks = 0
        self.cpu_s = 0.0
        self.failed: str | None = None
        # on-CPU seconds per code object anywhere on a running stack, when asked for
        self.hot_codes: dict[CodeType, float] | None = None
        # called with the tick's time after every tick (in the sampler thread)
        self.after_tick: list[Callable[[float], None]] = []
        # native primitives only: the sampler thread must work the same after the program
        # monkey-patches threading and time (gevent), so no threading.Event here
        self._stopping = False
        self._running = allocate_lock()
        self._own = 0
        self._held = 0.0  # how long the last tick held the GIL
        self.held_s = 0.0
        # threads that could not be adopted (native threads outside `threading`, such as
        # gevent's thread pool workers): not captured again until the next recheck
        self._unadoptable: set[int] = set()
        self._not_adopted: dict[int, int] = {}  # ident -> ticks it failed to be adopted
        self._switch_interval: float | None = None

    def start(self) -> None:
        self._stopping = False
        self._switch_interval = sys.getswitchinterval()
        renew_in_child(self, "_forked")
        # a raw OS thread, not a threading.Thread: a program that monkey-patches threading
        # after advisor started must not find (or try to clean up) advisor's thread
        self._running.acquire()
        try:
            start_new_thread(self._run, ())
        except BaseException:
            self._running.release()
            raise

    def _forked(self) -> None:
        """In a forked child: the sampling thread did not survive; its locks are new, and the
        program's switch interval is back."""
        self._stopping = True
        self.lock = allocate_lock()
        self._running = allocate_lock()
        self._give_back_interval()

    def stop(self) -> None:
        self._stopping = True
        if self._own != get_ident() and self._running.acquire(timeout=2.0):
            self._running.release()
        self._give_back_interval()
        self._switch_interval = None

    def _give_back_interval(self) -> None:
        """The program's switch interval back, where the sampler's is still set."""
        if self._switch_interval is not None and is_sampling_interval(sys.getswitchinterval()):
            sys.setswitchinterval(self._switch_interval)

    def drain(self) -> int:
        """The number of ticks taken (the samples live in the unit records)."""
        return self.ticks

    # -- the sampling thread ---------------------------------------------------------
    def _run(self) -> None:
        own = self._own = get_ident()
        self.threads.ignored.add(own)
        cpu_start = time.thread_time()
        try:
            source = None
            found: Any = False  # what the watch found: False, or (hold start, look, CPU then)
            while not self._stopping:
                # no Python call until clear_profile: deep mode's yappi may have been started
                # in this thread meanwhile, and would put the call in the program's profile
                steady = self.steady_interval
                if source is None or steady is None:
                    sleep(self.interval)
                    early = False
                else:
                    # the steady ticks keep their schedule, early ticks or not: they are the
                    # threads' samples
                    now = time.monotonic()
                    if not now - steady < self._next_steady < now + steady:
                        self._next_steady = now + steady
                    # a steady tick due already (an early tick ran late): take it at once;
                    # wait_tick refuses a negative interval, and the sampler died of it
                    left = max(0.0, self._next_steady - now)
                    # while greenlet tracing pauses, nothing is held: no watch between ticks
                    watch = steady if self.quiet else self.interval * WATCH_SHARE
                    found = wait_tick(left, watch, self.interval * HOLD_SHARE, source, self._next_early,
                                      self._early_hold, self._hold_cpu_clock)
                    early = found is not False
                    if early:  # a hold that goes on is looked at once an interval (a new one at once)
                        self._next_early = time.monotonic() + self.interval
                        self._early_hold = found[0]
                    else:
                        self._next_steady += steady
                if self._stopping:
                    break
                if "yappi" in sys.modules:  # deep mode's yappi, (re)started for every thread
                    clear_profile()
                # an early tick knows the hub thread's CPU at the look before: the step's part
                # before this first look is split from that (see split_lead)
                look = (self._hold_ident, found[1], found[2]) if early and found[2] >= 0.0 else None
                self.tick(own, early, look)
                source = self._watched()
        except Exception as error:  # never take the program down: stop sampling
            self.failed = f"{type(error).__name__}: {error}"
        finally:
            self.cpu_s = time.thread_time() - cpu_start
            self._running.release()

    def _watched(self) -> Any:
        """The hold clock to watch until the next tick, or None (sleep the interval); the
        CPU clock of its hub's thread with it, where that thread is known."""
        if self.steady_interval is None or self.hold_clock is None or wait_tick is None:
            return None
        clock = self.hold_clock()
        if clock is not None:
            ident = self.hold_thread() if self.hold_thread is not None else None
            info = self.threads.alive.get(ident) if ident is not None else None
            self._hold_ident = ident
            self._hold_cpu_clock = info.clock if info is not None else None
        return clock

    def tick(self, own: int, early: bool = False, look: tuple[int | None, float, float] | None = None) -> None:
        """Take one sample of every thread but `own`; an early one charges running steps only.
        `look`: (thread ident, time, its CPU clock then) of a look at a thread since its last
        tick, which bounds the CPU of a step first seen now more closely."""
        now = self._clock()
        own_cpu = time.thread_time()
        # every stack at once, before anything here can let the GIL go: the frames move on
        # as soon as the program runs again (see _stacks.c)
        # (and each known thread's CPU clock and run-queue time with them)
        ignored = self.threads.ignored
        alive = self.threads.alive
        if self.ticks % UNADOPTABLE_RECHECK_TICKS == 0:
            self._unadoptable.clear()  # they may have joined `threading` since, or ended
            self._not_adopted.clear()
        unadoptable = self._unadoptable
        skip = ignored if own in ignored and not unadoptable else {*ignored, own, *unadoptable}
        captured = capture_stacks(skip, self.step_frames or None, MAX_DEPTH, alive)
        seen: list[tuple[ThreadInfo, float, float, float, float, Stack, FrameType | None, float]] = []
        for ident, (stack, hook_frame, cpu, delay) in captured.items():
            info = alive.get(ident)
            if info is None:
                info = self._adopt(ident, now)
                if info is None:
                    failed = self._not_adopted[ident] = self._not_adopted.get(ident, 0) + 1
                    if failed >= UNADOPTABLE_AFTER_TICKS:
                        unadoptable.add(ident)
                    continue
                continue  # a baseline only; the next tick measures
            if cpu is None:
                continue
            dt = now - info.last_t
            if dt <= 0.0:
                continue
            dcpu = min(max(0.0, cpu - info.last_cpu), dt)
            run_queue = 0.0
            if delay is not None:
                run_queue = max(0.0, delay - info.last_delay)
            if not early:  # an early tick measures from the thread's last steady tick, and moves it not
                if delay is not None:
                    info.last_delay = delay
                info.last_t, info.last_cpu = now, cpu
            seen.append((info, dt, dcpu, cpu, run_queue, stack, hook_frame,
                         delay if delay is not None else info.last_delay))
        total_cpu = sum(item[2] for item in seen)
        hot = self.hot_codes
        held_before = self._held
        with self.lock:
            for info, dt, dcpu, cpu, run_queue, stack, hook_frame, delay_now in seen:
                # ready but not running is not what the stack shows: the kernel's run queue
                # (the machine's CPUs were busy), and the previous tick holding the GIL for
                # `held_before` (a thread that wanted to run then was kept off by advisor)
                sampler_held = held_before * min(1.0, dcpu / max(dt - held_before, 1e-9))
                held = min(dt - dcpu, run_queue + sampler_held)
                off = dt - dcpu - held
                # another thread had the CPU for most of this interval
                contended = off if total_cpu - dcpu > 0.5 * dt else 0.0
                if not early:
                    record = info.record
                    if record.samples is None:
                        record.samples = {}
                    add_weights(record.samples, stack, dcpu, off, contended, held)
                    if record.tag_samples is not None:
                        add_weights(record.tag_samples, stack, dcpu, off, contended, held)
                    if hot is not None and dcpu > 0.5 * dt:
                        add_hot(hot, stack, dcpu)
                slot = self.running.get(info.ident) or self._step_in(info.ident, hook_frame)
                if slot is not None:
                    # a step looked at before is charged its run-queue time since that look: an
                    # early tick may have looked after the thread's last steady tick
                    state = slot[2]
                    step_held = held if state is None else max(0.0, delay_now - state[3]) + sampler_held
                    closer = look[1:] if look is not None and look[0] == info.ident else None
                    self._charge_step(slot, now, cpu, stack, contended > 0.0, now - dt, dcpu, step_held, delay_now,
                                      closer)
        if early:
            self.early_ticks += 1
        else:
            self.ticks += 1
        self._tune_switch_interval(len(seen))
        for listener in list(self.after_tick):
            try:
                listener(now)
            except Exception:  # a failing listener is removed, sampling goes on
                self.after_tick.remove(listener)
        # how long this tick kept the GIL: its own CPU (it may have been preempted meanwhile);
        # the next steady tick's threads were kept off by the early ticks' too
        held = min(self._clock() - now, time.thread_time() - own_cpu)
        self._held = held + (held_before if early else 0.0)
        self.held_s += held

    def _tune_switch_interval(self, threads: int) -> None:
        """With one program thread, ask for the GIL sooner, so that samples land where the
        thread spends its time, not where it happens to release the GIL (I/O calls).

        The sampler can only look when the program thread lets go of the GIL: at a forced
        switch (after the switch interval) or at a call that releases it, such as a file
        write. With Python's 5 ms interval, a loop doing 1 ms of work and one write is
        nearly always seen in the write. A 10 µs interval makes the forced switch win. With
        several program threads the program's own interval is kept: they compete for the
        GIL and a shorter interval would change how they share it.
        """
        if self._switch_interval is None:
            return
        current = sys.getswitchinterval()
        sampling = is_sampling_interval(current)
        if not sampling and current != self._switch_interval:
            self._switch_interval = None  # the program set its own: leave it alone from now on
            return
        if threads <= 1 and not sampling:
            sys.setswitchinterval(SAMPLING_SWITCH_INTERVAL)
        elif threads > 1 and sampling:
            sys.setswitchinterval(self._switch_interval)

    def _step_in(self, ident: int, hook_frame: FrameType | None) -> RunningSlot | None:
        """The task step running on a thread, found from its stack: the asyncio probe's hook
        frame (the first frame of a `step_frames` code) holds the step's record, start time
        and start CPU in its locals. (Reading them here, once a tick, is what lets the hook
        skip publishing every step.)"""
        if hook_frame is None:
            return None
        with collections_held():  # the frame's locals are read from its thread's frame
            values = hook_frame.f_locals
        record, t0 = values.get("record"), values.get("t0")
        if record is None or not isinstance(t0, float):
            return None
        slot = self._seen_steps.get(ident)
        if slot is None or slot[0] is not record or slot[1] != t0:
            slot = [record, t0, None, values.get("cpu0", -1.0)]
            self._seen_steps[ident] = slot
        return slot

    def flush_step(self, ident: int, record: UnitRecord, t0: float, now: float) -> None:
        """Charge the step running on thread `ident` (of `record`, started at `t0`) up to
        `now`, at the stack last seen, if the sampler has seen it: a user span that starts
        or ends inside a long step (one holding the loop in ``time.sleep``) then gets its own
        part of the step's time exactly, not the part up to the last tick. Steps no tick saw
        are charged whole when they end, as before."""
        slot = self.running.get(ident) or self._seen_steps.get(ident)
        if slot is None or slot[0] is not record or slot[1] != t0 or slot[2] is None:
            return
        info = self.threads.alive.get(ident)
        cpu = read_clock(info.clock) if info is not None else None
        if cpu is None:
            return
        with self.lock:
            state = slot[2]
            dt = now - state[0]
            if dt <= 0.0:
                return
            dcpu = min(max(0.0, cpu - state[1]), dt)
            add_step_time(record, state[2], dcpu, dt - dcpu, False)
            state[0], state[1] = now, cpu

    def close_step_at(self, ident: int, record: UnitRecord, t0: float, t1: float, cpu0: float,
                      cpu_now: float) -> None:
        """Called by the asyncio probe at the end of a step long enough to have been seen."""
        slot = self._seen_steps.get(ident)
        if slot is None or slot[0] is not record or slot[1] != t0:
            slot = [record, t0, None, cpu0]
        self.close_step(slot, t1, cpu_now, ident)

    def _adopt(self, ident: int, now: float) -> ThreadInfo | None:
        thread = threading._active.get(ident)  # type: ignore[attr-defined]
        if thread is None:
            return None
        return self.threads.adopt(ident, thread, now, None)

    @staticmethod
    def _charge_step(slot: RunningSlot, now: float, cpu: float, stack: Stack, contended: bool,
                     interval_start: float, interval_cpu: float, held: float = 0.0,
                     delay: float = 0.0, look: tuple[float, float] | None = None) -> None:
        """Charge the time since the last look to the step running in `slot`; `held` is the
        interval's ready-but-not-running time, `delay` the thread's run-queue total now,
        `look` a later look at the thread than the interval's start: (time, CPU then)."""
        record: UnitRecord = slot[0]
        state = slot[2]
        if state is None:
            # first sight: the step ran from t0 to now; its CPU share is exact when the probe
            # read the CPU clock at its start, else bounded by what the thread did meanwhile
            t0, cpu0 = slot[1], slot[3]
            lead = max(0.0, now - t0)
            if cpu0 >= 0.0:
                lead_on = min(max(0.0, cpu - cpu0), lead)
            else:
                lead_on = split_lead(t0, now, cpu, interval_start, cpu - interval_cpu, look)
            slot[2] = [now, cpu, stack, delay]
            if lead > 0.0:
                span = max(now - interval_start, lead)
                lead_held = min(lead - lead_on, held * lead / span)
                add_step_time(record, stack, lead_on, lead - lead_on - lead_held, contended, lead_held)
            return
        dt = now - state[0]
        if dt <= 0.0:
            return
        dcpu = min(max(0.0, cpu - state[1]), dt)
        held = min(held, dt - dcpu)
        add_step_time(record, stack, dcpu, dt - dcpu - held, contended, held)
        state[0], state[1], state[2], state[3] = now, cpu, stack, delay

    def close_step(self, slot: RunningSlot, t1: float, cpu_now: float, ident: int | None = None) -> None:
        """Called by the unit probe at the end of a step that was sampled, or whose start CPU
        it read: charges the rest of the step exactly (no stack if it was never sampled),
        with the thread's run-queue time since the last look as ready-but-not-running."""
        state = slot[2]
        if state is None:
            cpu0 = slot[3]
            span = t1 - slot[1]
            if cpu0 < 0.0 or span <= 0.0:
                return
            on = min(max(0.0, cpu_now - cpu0), span)
            with self.lock:
                add_step_time(slot[0], (), on, span - on, False)
            return
        dt = t1 - state[0]
        if dt <= 0.0:
            return
        dcpu = min(max(0.0, cpu_now - state[1]), dt)
        held = 0.0
        info = self.threads.alive.get(ident if ident is not None else get_ident())
        delay = read_run_delay(info.schedstat) if info is not None else None
        if delay is not None:
            held = min(dt - dcpu, max(0.0, delay - state[3]))
        with self.lock:
            add_step_time(slot[0], state[2], dcpu, dt - dcpu - held, False, held)


def cpu_in(t0: float, end: float, cpu_end: float, start: float, cpu_start: float) -> float:
    """The CPU seconds a thread spent in [t0, end], knowing only its CPU clock at `start`
    (before t0) and at `end`: between the least the clock says it must have run after t0
    and the most it could have, the middle of the two."""
    spent = max(0.0, cpu_end - cpu_start)
    low = max(0.0, spent - max(0.0, t0 - start))
    high = min(spent, max(0.0, end - t0))
    return (low + high) / 2.0 if high >= low else high


def split_lead(t0: float, now: float, cpu: float, start: float, cpu_start: float,
               look: tuple[float, float] | None) -> float:
    """The on-CPU part of a step's first `now - t0` seconds, seen for the first time now, from
    the thread's CPU clock at its last tick (`start`, `cpu_start`) and, where there is one, at
    a later look (the sampler's watch, a few milliseconds before): from that look on (or from
    t0, where the look came before the step) the bounds are that much closer. A look that
    does not fit the interval (the watch's clock is CLOCK_MONOTONIC, as perf_counter's is on
    Linux) is not used."""
    if look is None or not start < look[0] < now or not cpu_start <= look[1] <= cpu:
        return cpu_in(t0, now, cpu, start, cpu_start)
    looked, looked_cpu = look
    if looked <= t0:
        return cpu_in(t0, now, cpu, looked, looked_cpu)
    # the step had begun: exact from the look, bounded before it
    return min(cpu - looked_cpu, now - looked) + cpu_in(t0, looked, looked_cpu, start, cpu_start)


def add_step_time(record: UnitRecord, stack: Stack, on: float, off: float, contended: bool,
                  held: float = 0.0) -> None:
    """Add on- and off-CPU time of a step, at this stack, to its unit."""
    if record.samples is None:
        record.samples = {}
    add_weights(record.samples, stack, on, off, off if contended else 0.0, held)
    tagged = record.tag_samples
    if tagged is not None:
        add_weights(tagged, stack, on, off, off if contended else 0.0, held)
