"""The greenlet probe: per-greenlet runs, switches and what each switch waited for.

``greenlet.settrace`` calls the probe on every switch, in the thread where it was
installed (the main thread at start, and every thread started later, through the
thread registry). A switch ends the running greenlet's step and starts the target's.
When a greenlet switches to the gevent hub, its stack says why: ``gevent.sleep`` is a
timer (due at a known time, past which the greenlet is ready), gevent's sockets, DNS,
SSL, subprocess and file objects are I/O, and its events, locks, queues and joins are
waiting. The hub's own time is kept apart, as the unit ``Hub``. Spawn times come from a
thin wrapper around ``gevent.spawn`` and ``Group.spawn`` installed when gevent is
imported, so a greenlet that waited for the hub before its first run shows it as
scheduling. The previous trace function (gevent's monitor thread installs one) is
always chained.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from .codeinfo import ProgramCode
from .native import get_ident
from .patches import Switch, mark, take_off
from .post_import import PostImportHooks
from .records import UnitRecord
from .sampler import Sampler
from .task_ledger import ANONYMOUS_TASK, IO, LOCK, READY, SUSPECT_STEP_S, TIMER, WAITING, TaskLedger
from .threads import ThreadRegistry
from .timeline import NEW, StepTimeline

try:  # the switch hook's common path in C (optional: built with the package where a compiler was found)
    from ._switch_hook import SwitchHook  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the build
    SwitchHook = None

HUB_NAME = "Hub"
# gevent modules (file names) in which a switch to the hub waits for I/O
_GEVENT_IO_FILES = ("_socket3.py", "_socketcommon.py", "socket.py", "_ssl3.py", "ssl.py", "select.py",
                    "selectors.py", "subprocess.py", "os.py", "fileobject.py", "_fileobjectcommon.py",
                    "_fileobjectposix.py", "pywsgi.py", "baseserver.py", "server.py", "resolver_thread.py",
                    "resolver_ares.py", "dnshelper.py", "_threading.py")
_GEVENT_SEP = os.sep + "gevent" + os.sep
# what a code object on a switching greenlet's stack is (cached per code object)
_OTHER, _PROGRAM, _GEVENT_SLEEP, _GEVENT_IO = range(4)
_DEPTHS = range(64)  # frames of a switching greenlet's stack looked at, innermost first
_MAX_CACHED_SITES = 20_000


def _line_of(code: CodeType, lasti: int) -> int:
    """The source line of the instruction at byte offset ``lasti`` (what ``f_lineno`` says)."""
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return line
    return code.co_firstlineno


def greenlet_target(glet: Any) -> tuple[str, str, int]:
    """(qualified name, file, first line) of what a greenlet runs."""
    function = getattr(glet, "_run", None) or getattr(glet, "run", None)
    function = getattr(function, "__func__", function)
    code = getattr(function, "__code__", None)
    if code is None:
        return type(glet).__qualname__, "", 0
    module = getattr(function, "__module__", "") or ""
    qualname = getattr(function, "__qualname__", code.co_name)
    return (f"{module}.{qualname}" if module else qualname), code.co_filename, code.co_firstlineno


def greenlet_name(glet: Any) -> str:
    """The thread's name for a greenlet that runs a ``threading.Thread`` (gevent patched
    threading), gevent's ``Greenlet.name`` where there is one, else empty (anonymous)."""
    try:
        owner = getattr(getattr(glet, "_run", None), "__self__", None)
        if isinstance(owner, threading.Thread):
            return owner.name
        name = getattr(glet, "name", "")
    except Exception:
        return ""
    return name if isinstance(name, str) else ""


def thread_name_from_frames(frame: FrameType) -> str:
    """The name of the ``threading.Thread`` a greenlet runs (gevent patched threading)."""
    while frame.f_back is not None:
        frame = frame.f_back
    if frame.f_code.co_name.startswith("_bootstrap"):
        owner = frame.f_locals.get("self")
        if isinstance(owner, threading.Thread):
            return owner.name
    return ""


# every probe alive: a stop finds whose a trace function it chained was (see _below_stopped)
_PROBES: weakref.WeakSet[GreenletProbe] = weakref.WeakSet()


def _below_stopped(trace: Any) -> Any:
    """`trace`, or what is under it once stopped probes' trace functions are skipped: of two
    profilers stopped in the order they started, the first one's was the second's previous,
    and was put back, stopped, for good (a later profiler then chained it, not the C hook)."""
    for _ in range(16):  # a chain of probes, not a cycle
        owner = next((probe for probe in list(_PROBES) if probe._ours(trace)), None) if trace is not None else None
        if owner is None or owner._active:
            return trace
        trace = owner._previous.get(get_ident())
    return trace


class GreenletProbe:
    """Traces greenlet switches in every thread, per greenlet and for the hub."""

    name = "greenlet"

    def __init__(self, sampler: Sampler | None = None, threads: ThreadRegistry | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.ledger = TaskLedger("greenlet")
        self.sampler = sampler
        self.threads = threads
        self._clock = clock
        self._program = ProgramCode()
        # id(code) -> (role, code): by id, as hashing a code object hashes its constants (slow),
        # and the code is kept, so its id never becomes another code object's
        self._code_roles: dict[int, tuple[int, CodeType]] = {}
        self._sites: dict[tuple[Any, ...], tuple[tuple[CodeType, int], ...]] = {}
        self._spawned: dict[int, float] = {}
        self._hubs: dict[int, tuple[UnitRecord, list[Any]]] = {}  # hub id -> record, [segment start]
        self._previous: dict[int, Any] = {}  # thread ident -> trace function we chained
        _PROBES.add(self)
        self._chaining = False  # whether any of them is a function (not None)
        self._active = False
        self._greenlet: Any = None
        self._imports = PostImportHooks()
        self._spawn_originals: list[tuple[Any, str, Any, Any, Switch]] = []  # (owner, name, original, hook, switch)
        self.failed: str | None = None
        self._switches = 0  # counted by the Python hook (the C hook counts its own)
        self._hook: Any = None  # the C hook, when built and usable (see _c_hook)
        self._hold_clock: Any = None  # its hold clock's capsule, made once
        # standard and deep mode: every greenlet step on the timeline the what-if replay simulates
        self.timeline: StepTimeline | None = None
        self._spawners: dict[int, int] = {}  # id(greenlet) -> uid of the greenlet that spawned it
        # trace windows (see pause_here): when tracing paused, and the paused seconds before
        self._paused_since: float | None = None
        self._paused_ident = 0
        self._paused_s = 0.0

    def record_timeline(self, timeline: StepTimeline) -> None:
        """Record each greenlet step on `timeline` from now on (call before ``start``); the
        Python hook does it, so the C hook stays out while a timeline is recorded."""
        self.timeline = timeline
        self.ledger.on_fold = timeline.fold

    @property
    def switches(self) -> int:
        """Greenlet switches traced so far."""
        hook = self._hook
        return self._switches + (hook.switches if hook is not None else 0)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        import greenlet

        self._greenlet = greenlet
        self._set_active(True)
        if self._hook is None:
            self._hook = self._c_hook()  # reads the flag
        self._install_here()
        self._adopt_current()
        if self.threads is not None:
            self.threads.on_thread_start.append(self._install_here)
        self._imports.when_imported("gevent", self._wrap_spawn)
        self._imports.install()

    def _adopt_current(self) -> None:
        """Track the greenlet that starts the probe from now on, as if it had just switched in
        (a server's request greenlet, where an agent starts at the first request): its step
        is then timed, and that request is measured as a greenlet's, not as its thread's
        (whose split of the off-CPU time needs a thread sample inside the request)."""
        greenlet, sampler = self._greenlet, self.sampler
        if greenlet is None or sampler is None:
            return
        current = greenlet.getcurrent()
        if current.parent is None or self._is_hub(current) or id(current) in self.ledger.live:
            return
        self._start_new(current, self._clock(), sampler.running, get_ident())

    def _set_active(self, active: bool) -> None:
        """The probe's flag, and the C hook's copy of it (read there at every switch)."""
        self._active = active
        if self._hook is not None:
            self._hook.active = active

    def stop(self) -> None:
        self._set_active(False)
        self._imports.uninstall()
        if self.threads is not None and self._install_here in self.threads.on_thread_start:
            self.threads.on_thread_start.remove(self._install_here)
        greenlet = self._greenlet
        if greenlet is not None and self._ours(greenlet.gettrace()):
            greenlet.settrace(_below_stopped(self._previous.get(get_ident())))
        for owner, attribute, original, hook, switch in reversed(self._spawn_originals):
            take_off(owner, attribute, hook, original, switch)
        self._spawn_originals.clear()

    def drain(self) -> list[UnitRecord]:
        now = self._clock()
        self.ledger.close_live(now, self.ledger.live_names(greenlet_name))
        for record, segment in self._hubs.values():
            if segment[0] is not None:
                record.running_s += now - segment[0]
                segment[0] = None
            record.ended = now
            record.wall_s = now - record.created
            # switched out, the hub waits for the greenlets to give it back control
            record.waiting_s = max(0.0, record.wall_s - record.running_s)
            record.name = HUB_NAME
            record.named = True
        return list(self.ledger.all_records()) + [record for record, _ in self._hubs.values()]

    def snapshot(self) -> list[UnitRecord]:
        """What ``drain`` would return now, from copies: tracing goes on untouched."""
        now = self._clock()
        in_step: dict[int, float] = {}
        if self.sampler is not None:
            for slot in list(self.sampler.running.values()):
                if slot is not None:
                    in_step[id(slot[0])] = slot[1]
        records = self.ledger.snapshot(now, self.ledger.live_names(greenlet_name), in_step)
        for record, segment in list(self._hubs.values()):
            copy = record.copy()
            start = segment[0]
            if start is not None:
                copy.running_s += max(0.0, now - start)
            copy.ended = now
            copy.wall_s = now - copy.created
            copy.waiting_s = max(0.0, copy.wall_s - copy.running_s)
            records.append(copy)
        return records

    def current_step(self) -> tuple[UnitRecord, float] | None:
        """The record of the greenlet running in this thread and the start of its current
        step (None outside a traced greenlet): what an embedding middleware reads at a
        request's start and end to attribute the difference to the request."""
        sampler = self.sampler
        if sampler is None or not self._active:
            return None
        slot = sampler.running.get(get_ident())
        if slot is None:
            return None
        record = slot[0]
        key = record.key
        if record.kind != "greenlet" or (key and key[0] == "hub"):
            return None
        return record, slot[1]

    def hold_clock(self) -> Any:
        """The C hook's capsule of when the running greenlet started its step, for the
        sampler's watch (see sampler.wait_tick); None while the probe is off or a Python trace
        function runs instead of the C hook somewhere (chained), which keeps no such clock, and
        until a gevent hub ran (a program without one, an asyncio server, holds no hub: its
        loop's holds are seen by ticks at every interval)."""
        hook = self._hook
        if hook is None or not self._active or self._chaining or not self._hubs:
            return None
        clock = self._hold_clock
        if clock is None:
            clock = self._hold_clock = hook.hold_clock
        return clock

    def hold_thread(self) -> int | None:
        """The thread whose hub the hold clock watches (the first hub's; the hook keeps one
        clock), for the sampler to read that thread's CPU clock at each look."""
        for record, _segment in list(self._hubs.values()):
            return record.ident
        return None

    # -- trace windows (advisor.embed.windows) -------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    def paused_here(self) -> bool:
        """Whether the tracing of the calling thread is paused (only one thread's can be)."""
        return self._paused_since is not None and get_ident() == self._paused_ident

    def paused_s(self, now: float) -> float:
        """Seconds tracing was paused so far (the current pause up to `now` included)."""
        since = self._paused_since
        return self._paused_s + (max(0.0, now - since) if since is not None else 0.0)

    def now(self) -> float:
        """The probe's clock."""
        return self._clock()

    def trace_counters(self) -> tuple[int, int] | None:
        """(switches traced, requests begun) by the C hook; None without it."""
        hook = self._hook
        return (hook.switches, hook.requests) if hook is not None else None

    def change_tracing_at(self, when: float) -> None:
        """From `when` on, the C hook hands requests to the agent's Python path (which pauses
        or resumes the tracing) instead of measuring them itself."""
        if self._hook is not None:
            self._hook.change_at = when

    def can_pause_here(self) -> bool:
        """Whether the tracing of the calling thread can pause: the C hook traces it, chaining
        nothing (where gevent's monitor thread or a program's own trace function is chained,
        and for standard mode's timeline, the Python hook keeps tracing), and it runs a
        traced greenlet now (a server's request: a threaded server's are measured by their
        threads' CPU clocks, not by switches). One thread's tracing pauses at a time."""
        greenlet, hook = self._greenlet, self._hook
        return (hook is not None and greenlet is not None and self._active and self.timeline is None
                and greenlet.gettrace() is hook and id(greenlet.getcurrent()) in self.ledger.live)

    def pause_here(self, now: float) -> bool:
        """Pause the tracing of the calling thread: the running greenlet's step ends (no wait
        follows it), the hook leaves the thread's greenlet trace, and requests are counted, not
        broken down, until ``resume_here``. False where it cannot (see can_pause_here)."""
        if self._paused_since is not None or not self.can_pause_here():
            return False
        ident = get_ident()
        running = self.sampler.running if self.sampler is not None else {}
        slot = running.get(ident)
        if slot is not None:
            running[ident] = None
            record = slot[0]
            key = record.key
            if record.kind == "greenlet" and not (key and key[0] == "hub"):
                if slot[2] is not None or slot[3] >= 0.0:
                    self._close_slot(slot, now, ident)
                TaskLedger.step_ended(record, slot[1], now, READY, 0.0, None)
        for record, segment in list(self._hubs.values()):
            if segment[0] is not None and record.ident == ident:
                record.running_s += max(0.0, now - segment[0])
                segment[0] = None
        self._hook.pause()
        if self.sampler is not None:
            self.sampler.quiet = True
        self._greenlet.settrace(None)
        self._paused_since = now
        self._paused_ident = get_ident()
        self.ledger.seen_until = now
        return True

    def resume_here(self, now: float) -> None:
        """Trace the calling thread again from `now`: the greenlet running here starts a
        step; a greenlet's suspension that began before is not charged when it resumes."""
        since = self._paused_since
        if since is None or get_ident() != self._paused_ident:
            return
        self._paused_since = None
        self._paused_s += max(0.0, now - since)
        self.ledger.unseen_before, self.ledger.seen_until = now, None
        greenlet, hook = self._greenlet, self._hook
        if greenlet is None or hook is None or not self._active:
            return
        ident = get_ident()
        running = self.sampler.running if self.sampler is not None else {}
        current = greenlet.getcurrent()
        record = self.ledger.live.get(id(current))
        hub = self._hubs.get(id(current))
        if hub is not None:
            hub[1][0] = now
            running[ident] = [hub[0], now, None, -1.0]
        elif record is not None:
            record.susp_at = None  # the pause was no wait
            record.wait_site = None
            TaskLedger.step_started(record, now)
            running[ident] = [record, now, None, -1.0]
        hook.resume(now, record is not None)
        if self.sampler is not None:
            self.sampler.quiet = False
        # as at start: the C hook, or the Python one chaining what was installed meanwhile
        self._previous.pop(ident, None)
        self._install_here()
        if record is None and hub is None:
            self._adopt_current()

    def install_here(self) -> None:
        """Trace greenlet switches in the calling thread too (for a probe started from
        another thread than the server's): cheap when already installed."""
        self._install_here()

    def uninstall_here(self) -> None:
        """Take this probe's trace function out of the calling thread, if it is still the
        one installed there (a probe stopped from another thread)."""
        greenlet = self._greenlet
        if greenlet is not None and self._ours(greenlet.gettrace()):
            greenlet.settrace(_below_stopped(self._previous.pop(get_ident(), None)))
            self._chaining = any(previous is not None for previous in list(self._previous.values()))

    def _install_here(self) -> None:
        """Install the trace function in the calling thread, chaining the one already there."""
        greenlet = self._greenlet
        if greenlet is None or not self._active:
            return
        previous = greenlet.gettrace()
        if self._ours(previous):
            return
        self._previous[get_ident()] = previous
        if previous is not None:
            self._chaining = True
        # the C hook where there is nothing to chain; the Python one chains
        greenlet.settrace(self._hook if previous is None and self._hook is not None else self._trace)

    def _ours(self, trace: Any) -> bool:
        """Whether a greenlet trace function is this probe's hook (either of them)."""
        # a bound method is a new object each time: compare with ==, not `is`
        return trace is not None and (trace == self._trace or trace is self._hook)

    def _c_hook(self) -> Any:
        """The C switch hook for this probe, or None: when it was not built, and when the
        Python hook was replaced (a subclass, a test's fault), which then runs instead."""
        if (SwitchHook is None or self.sampler is None or type(self)._switch is not _PYTHON_SWITCH
                or self.timeline is not None):
            return None
        try:
            # the ledger's step bookkeeping is done in C on plain UnitRecords (TaskLedger's
            # functions for any other record): a common switch calls no Python code
            hook = SwitchHook(self, self._hubs, self._code_roles, self._sites, self._clock, time.thread_time,
                              TaskLedger.step_started, TaskLedger.step_ended, _OTHER, _PROGRAM, _GEVENT_SLEEP,
                              _GEVENT_IO, TIMER, IO, WAITING, READY, LOCK, UnitRecord)
            hook.suspect_step_s = SUSPECT_STEP_S
            return hook
        except Exception:  # a module built from another version of this file: the Python hook
            return None

    # -- spawn times -----------------------------------------------------------------
    def _wrap_spawn(self, gevent: Any) -> None:
        """Record when greenlets are spawned (gevent.spawn and pools), for their scheduling."""
        clock = self._clock
        spawned = self._spawned
        spawners = self._spawners if self.timeline is not None else None
        live = self.ledger.live
        getcurrent = self._greenlet.getcurrent if self._greenlet is not None else None
        switch = Switch()  # off: the wrappers pass through (see patches.py)

        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def spawn(*args: Any, **kwargs: Any) -> Any:
                if not switch.on:
                    return original(*args, **kwargs)
                t = clock()
                glet = original(*args, **kwargs)
                if len(spawned) < 1_000_000:
                    spawned[id(glet)] = t
                    if spawners is not None and getcurrent is not None:
                        parent = live.get(id(getcurrent()))
                        if parent is not None:
                            spawners[id(glet)] = parent.uid
                return glet
            spawn.__doc__ = original.__doc__
            return mark(spawn, original, switch)

        targets: list[tuple[Any, str]] = [(gevent, "spawn")]
        pool = sys.modules.get("gevent.pool")
        if pool is not None:
            targets.append((pool.Group, "spawn"))
        for owner, attribute in targets:
            original = getattr(owner, attribute, None)
            if original is None:
                continue
            hook = wrap(original)
            try:
                setattr(owner, attribute, hook)
                self._spawn_originals.append((owner, attribute, original, hook, switch))
            except (AttributeError, TypeError):
                continue

    # -- the trace function ------------------------------------------------------------
    # Runs at every switch of every traced thread: a server pays it twice per keep-alive
    # request, so the common path (a known greenlet parks, a known one resumes) is kept to a
    # handful of dict lookups and attribute reads, with the rare cases in methods of their own.
    def _trace(self, event: str, args: Any) -> None:
        if self._chaining:
            previous = self._previous.get(get_ident())
            if previous is not None:
                try:
                    previous(event, args)
                except Exception:
                    pass
        if not self._active or (event != "switch" and event != "throw"):
            return
        try:
            self._switch(args[0], args[1], self._clock())
        except Exception as error:  # never break the program: stop tracing
            self._disable(error)

    def _disable(self, error: BaseException) -> None:
        self.failed = f"{type(error).__name__}: {error}"
        self._set_active(False)

    def _is_hub(self, glet: Any) -> bool:
        hub_type = getattr(sys.modules.get("gevent.hub"), "Hub", None)
        return hub_type is not None and isinstance(glet, hub_type)

    # What follows is the hook's work, in Python; _switch_hook.c does the same (its common
    # path) and calls the methods below for the rest: a change here is a change there.
    def _switch(self, origin: Any, target: Any, now: float) -> None:
        self._switches += 1
        ident = get_ident()
        sampler = self.sampler
        running = sampler.running if sampler is not None else {}
        slot = running.get(ident)
        # the origin's step (or hub segment) ends
        step_start = now
        if slot is not None and slot[0].kind == "greenlet":
            running[ident] = None
            step_start = slot[1]
            if sampler is not None and (slot[2] is not None or slot[3] >= 0.0):
                self._close_slot(slot, now, ident)
        hubs = self._hubs
        hub = hubs.get(id(origin))
        if hub is not None:
            segment = hub[1]
            if segment[0] is not None:
                hub[0].running_s += now - segment[0]
                segment[0] = None
        elif origin.parent is not None:
            record = self.ledger.live.get(id(origin))
            if record is not None:
                if self.timeline is not None:
                    self.timeline.finish(record.uid, step_start, now, -1.0 if slot is None or slot[3] < 0.0
                                         else time.thread_time() - slot[3])
                if origin.dead:
                    self._finished(origin, record, step_start, now)
                else:
                    frame = origin.gr_frame
                    if record.steps == 0 and frame is not None:
                        self._first_step_ended(record, frame)
                    kind, due, site = self.classify_switch(frame, now)
                    TaskLedger.step_ended(record, step_start, now, kind, due, site)
        # the target's starts
        if target.parent is None:
            return  # a thread's main greenlet is the thread itself
        # known hubs and greenlets first: is-it-a-hub is asked once per new greenlet
        key = id(target)
        hub = hubs.get(key)
        if hub is not None:
            hub[1][0] = now
            running[ident] = [hub[0], now, None, -1.0]
            return
        unit = self.ledger.live.get(key)
        if unit is None:
            self._start_new(target, now, running, ident)
            return
        cpu0 = time.thread_time() if unit.longest_step_s > SUSPECT_STEP_S else -1.0
        if self.timeline is not None:
            self.timeline.begin(unit.uid, unit.wait_kind if unit.first_run is not None else NEW, unit.due)
        TaskLedger.step_started(unit, now)
        running[ident] = [unit, now, None, cpu0]

    def _close_slot(self, slot: list[Any], now: float, ident: int) -> None:
        """A step the sampler saw, or whose start CPU was read, ended: the rest of it."""
        sampler = self.sampler
        if sampler is not None:
            sampler.close_step(slot, now, time.thread_time(), ident)

    def _start_new(self, target: Any, now: float, running: dict[int, Any], ident: int) -> None:
        """A greenlet (or hub) seen for the first time starts a step."""
        if self._is_hub(target):
            record, segment = self._new_hub(target, now)
            segment[0] = now
            running[ident] = [record, now, None, -1.0]
            return
        unit = self._track(target, now)
        cpu0 = time.thread_time() if unit.longest_step_s > SUSPECT_STEP_S else -1.0
        if self.timeline is not None:
            self.timeline.begin(unit.uid, unit.wait_kind if unit.first_run is not None else NEW, unit.due)
        TaskLedger.step_started(unit, now)
        running[ident] = [unit, now, None, cpu0]

    def _new_hub(self, hub: Any, now: float) -> tuple[UnitRecord, list[Any]]:
        record = UnitRecord(0, "greenlet", "gevent.hub.Hub.run", "", 0, now)
        record.first_run = now
        record.name = HUB_NAME
        record.named = True
        record.key = ("hub", id(hub))
        record.ident = get_ident()
        entry = (record, [None])
        self._hubs[id(hub)] = entry
        return entry

    def _track(self, glet: Any, now: float) -> UnitRecord:
        key = id(glet)
        target, file, line = greenlet_target(glet)
        # (spawned while tracing was paused: ready since it resumed, as far as seen)
        created = max(min(self._spawned.pop(key, now), now), self.ledger.unseen_before)
        record = self.ledger.create(key, target, file, line, created)
        record.name = greenlet_name(glet)
        record.ident = get_ident()  # the thread of its hub: which greenlets share a hub (what-if)
        self.ledger.watch(key, glet, self._clock)
        if not file and glet.gr_frame is None and not glet.dead:
            self._catch_first_call(record)
        if self.timeline is not None:
            self.timeline.created(record.uid, record.created, self._spawners.pop(key, 0), record.ident)
        return record

    def _catch_first_call(self, record: UnitRecord) -> None:
        """A raw greenlet's ``run`` is deleted before the trace sees its first switch, and a
        greenlet that ends without switching away never shows its frames: catch the very next
        call in this thread, which is ``run`` itself, with a one-shot profile function. Only
        when no profiler is installed (yappi installs a C one that ``sys.getprofile`` cannot
        see, hence the explicit check), so nothing of the program's is displaced."""
        if sys.getprofile() is not None:
            return
        yappi = sys.modules.get("yappi")
        if yappi is not None and yappi.is_running():
            return

        def first_call(frame: FrameType, event: str, arg: Any) -> None:
            sys.setprofile(None)
            # the greenlet's outermost frame has no caller; anything else is not its run
            if event == "call" and frame.f_back is None and not record.target_file:
                self._target_from_frames(record, frame)

        sys.setprofile(first_call)

    def _finished(self, glet: Any, record: UnitRecord, start: float, now: float) -> None:
        """A greenlet's last step ended: it is dead."""
        TaskLedger.step_ended(record, start, now, READY, 0.0)
        context = getattr(glet, "_yappi_tid", None)  # deep mode: yappi's id for it
        if isinstance(context, int):
            record.contexts = [context]
        # a patched thread's greenlet loses its run method when it starts: the thread's
        # name was taken when it was first seen
        name = greenlet_name(glet)
        if ANONYMOUS_TASK.match(name) and record.name:
            name = record.name
        self.ledger.finish(id(glet), now, name)

    def _first_step_ended(self, record: UnitRecord, frame: FrameType) -> None:
        """The first step of a greenlet ended: its frames say what it runs, and for a
        patched thread's greenlet, the thread's name."""
        if not record.target_file:
            self._target_from_frames(record, frame)
        if not record.name:
            record.name = thread_name_from_frames(frame)

    @staticmethod
    def _target_from_frames(record: UnitRecord, frame: FrameType) -> None:
        """A raw greenlet's ``run`` is gone once it starts: its outermost frame is it."""
        while frame.f_back is not None:
            frame = frame.f_back
        code = frame.f_code
        module = frame.f_globals.get("__name__", "") if frame.f_globals else ""
        qualname = getattr(code, "co_qualname", code.co_name)
        record.target = f"{module}.{qualname}" if module else qualname
        record.target_file, record.target_line = code.co_filename, code.co_firstlineno

    def classify_switch(self, frame: FrameType | None, now: float) -> tuple[int, float, Any]:
        """Why a greenlet switched to the hub, from its stack: (kind, due, await site).

        Runs on every switch, and under deep mode in the interpreter's slow tracing path, so
        it does little: what each code object is (the program's, gevent's I/O or sleep,
        other) is looked up once per code object, and the await site (which needs line
        numbers, slow to compute) is cached by the program frames' code and instruction;
        both by the code's id."""
        kind: int | None = None
        due = 0.0
        positions: list[Any] = []  # id(code), instruction, id(code), instruction... innermost first
        program: list[FrameType] = []
        roles = self._code_roles
        for _ in _DEPTHS:
            if frame is None:
                break
            code = frame.f_code
            entry = roles.get(id(code))
            if entry is None:
                entry = roles[id(code)] = (self._code_role(code), code)
            role = entry[0]
            if role:  # most frames are _OTHER (0)
                if role == _PROGRAM:
                    positions.append(id(code))
                    positions.append(frame.f_lasti)
                    program.append(frame)
                elif kind is None:
                    if role == _GEVENT_SLEEP:
                        kind, due = TIMER, self._sleep_due(frame, now)
                    else:
                        kind = IO
            frame = frame.f_back
        if not positions:
            return (kind if kind is not None else WAITING), due, None
        key = tuple(positions)
        frames = self._sites.get(key)
        if frames is None:
            frames = self._site_frames(key, [program_frame.f_code for program_frame in program])
        # the callee: the frame the outermost program frame called (itself when alone)
        site = (frames, id(program[-2] if len(program) > 1 else program[0]))
        return (kind if kind is not None else WAITING), due, site

    @staticmethod
    def _sleep_due(frame: FrameType, now: float) -> float:
        """When a greenlet parked in ``gevent.sleep`` (this frame) is due."""
        seconds = frame.f_locals.get("seconds", 0)
        return now + max(0.0, float(seconds or 0))

    def _site_frames(self, key: tuple[Any, ...], codes: list[CodeType]) -> tuple[tuple[CodeType, int], ...]:
        """(code, line) of each program frame, outermost first, from the key's (id(code),
        instruction) pairs and the code objects, innermost first (the cached frames keep
        them, so the ids in the key stay theirs)."""
        pairs = [(code, key[2 * index + 1]) for index, code in enumerate(codes)]
        frames = tuple((code, _line_of(code, lasti)) for code, lasti in reversed(pairs))
        if len(self._sites) >= _MAX_CACHED_SITES:
            self._sites.clear()
        self._sites[key] = frames
        return frames

    def _code_role(self, code: CodeType) -> int:
        filename = code.co_filename
        if _GEVENT_SEP in filename:
            base = os.path.basename(filename)
            if base == "hub.py" and code.co_name == "sleep":
                return _GEVENT_SLEEP
            if base in _GEVENT_IO_FILES or "resolver" in filename:
                return _GEVENT_IO
            return _OTHER  # hub switches, waiters, events, locks: a wait unless I/O or sleep shows below
        return _PROGRAM if self._program(code) else _OTHER


_PYTHON_SWITCH = GreenletProbe._switch  # the C hook stands in for this one only
