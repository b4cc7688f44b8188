"""The asyncio probe: per-task steps, suspensions and what each suspension waited for.

Two class-level hooks cover every event loop the program creates, in any thread, and
whatever task factory it installs (now or later): ``BaseEventLoop.create_task`` records
a task's creation, and ``asyncio.events.Handle._run`` times every loop callback whose
target is a task step or wake-up (its ``__self__`` is the task). After each step the
probe looks at what the task awaits — the chain of ``cr_await`` down to the innermost
coroutine of asyncio or a known I/O library, and the future in ``_fut_waiter`` — and
tells the ledger whether the task now waits for I/O, a timer (with its due time), a
lock/queue/event/other task, or nothing at all (ready again). Only ``perf_counter`` is
read per step; CPU time and blocking inside long steps come from the sampler.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import sys
import time
import weakref
from asyncio import base_events, events
from collections.abc import Callable
from types import CodeType
from typing import Any

from .codeinfo import ProgramCode
from .deep import UNIT_TAG
from .native import get_ident
from .patches import Switch, mark, take_off
from .records import UnitRecord
from .sampler import Sampler
from .task_ledger import IO, LOCK, READY, SUSPECT_STEP_S, TIMER, WAITING, TaskLedger
from .timeline import NEW, StepTimeline

_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)

# Deep mode tags the first this many tasks one by one, later ones by coroutine.
MAX_TASK_TAGS = 2_000

# The due time of a timer whose timer has not fired yet.
_NOT_DUE = float("inf")

# A step longer than this may have been seen by the sampler: it is closed with it.
SEEN_STEP_S = 0.001

# Modules of the standard library's asyncio whose coroutines wait for I/O.
_ASYNCIO_IO_MODULES = {"streams.py", "selector_events.py", "proactor_events.py", "subprocess.py",
                       "unix_events.py", "sslproto.py", "threads.py"}
_ASYNCIO_IO_FUNCTIONS = {"create_connection", "create_datagram_endpoint", "create_unix_connection",
                         "getaddrinfo", "getnameinfo", "sock_recv", "sock_recv_into", "sock_recvfrom",
                         "sock_sendall", "sock_sendto", "sock_connect", "sock_accept", "sendfile",
                         "sock_sendfile", "start_tls", "subprocess_exec", "subprocess_shell",
                         "connect_read_pipe", "connect_write_pipe", "_ensure_resolved",
                         "_connect_sock", "open_connection", "open_unix_connection"}
# Third-party packages whose awaits are network or file I/O.
_IO_PACKAGES = ("aiohttp", "httpx", "httpcore", "anyio", "asyncpg", "aiomysql", "aiopg", "redis",
                "aioredis", "motor", "websockets", "aiofiles", "aiosqlite", "grpc", "aiokafka",
                "aio_pika", "aiormq", "psycopg", "databases", "h11", "h2", "uvicorn", "hypercorn")


def report_callback_error(handle: Any, error: BaseException) -> None:
    """Hand an exception that escaped a loop callback to the loop's exception handler, as
    ``Handle._run`` does."""
    context = {"message": f"Exception in callback {handle._callback!r}", "exception": error, "handle": handle}
    if getattr(handle, "_source_traceback", None):
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


def classify_code(code: CodeType) -> int | None:
    """What awaiting inside this coroutine means, or None if it says nothing."""
    filename = code.co_filename
    if filename.startswith(_ASYNCIO_DIR):
        base = os.path.basename(filename)
        name = code.co_name
        if base == "tasks.py" and name == "sleep":
            return TIMER
        if base == "locks.py" and name == "acquire":
            return LOCK
        if base in _ASYNCIO_IO_MODULES or name in _ASYNCIO_IO_FUNCTIONS:
            return IO
        if base in ("locks.py", "queues.py", "tasks.py", "timeouts.py", "futures.py"):
            return WAITING
        return None
    marker = filename.rfind("site-packages" + os.sep)
    if marker >= 0:
        package = filename[marker + 14:].split(os.sep, 1)[0]
        if package.startswith(_IO_PACKAGES):
            return IO
    return None


class AsyncioProbe:
    """Hooks task creation and task steps on every asyncio loop."""

    name = "asyncio"

    def __init__(self, sampler: Sampler | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.ledger = TaskLedger("asyncio-task")
        self.sampler = sampler
        self._clock = clock
        self._code_info: dict[CodeType, tuple[int | None, bool]] = {}  # code -> (wait kind, program's)
        self._program_code = ProgramCode()
        # loop.time() is time.monotonic(); timer due times are turned into perf_counter time
        self._monotonic_offset = time.perf_counter() - time.monotonic()
        self._original_run: Callable[..., Any] | None = None
        self._original_create_task: Callable[..., Any] | None = None
        self._run_hook: Callable[..., Any] | None = None
        self._create_task_hook: Callable[..., Any] | None = None
        self._switch = Switch()  # off: the hooks pass through (see patches.py)
        self.failed: str | None = None
        # deep mode: tag each task's context so yappi's stats split by task group; told at
        # the first tagged task (deep mode then turns on yappi's tag callback)
        self.tagging = False
        self.on_first_tag: Callable[[], None] | None = None
        self._tagged = 0
        self._tags: dict[object, int] = {}
        self._run_codes: set[CodeType] = set()  # the step hook's code (current_step looks for it)
        # standard and deep mode: every step on the timeline the what-if replay simulates
        self.timeline: StepTimeline | None = None

    def record_timeline(self, timeline: StepTimeline) -> None:
        """Record each step on `timeline` from now on (call before ``start``)."""
        self.timeline = timeline
        self.ledger.on_fold = timeline.fold

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self._switch = Switch()
        self._original_run = events.Handle._run
        self._original_create_task = base_events.BaseEventLoop.create_task
        hook = self._make_run_hook(self._original_run)
        if self.timeline is not None:
            hook = self._make_timeline_hook(hook, self.timeline)
        self._run_hook = mark(hook, self._original_run, self._switch)
        self._create_task_hook = mark(self._make_create_task_hook(self._original_create_task),
                                      self._original_create_task, self._switch)
        events.Handle._run = self._run_hook  # type: ignore[method-assign]
        base_events.BaseEventLoop.create_task = self._create_task_hook  # type: ignore[method-assign]

    def stop(self) -> None:
        if self._original_run is not None:
            take_off(events.Handle, "_run", self._run_hook, self._original_run, self._switch)
            self._original_run = self._run_hook = None
        if self._original_create_task is not None:
            take_off(base_events.BaseEventLoop, "create_task", self._create_task_hook, self._original_create_task,
                     self._switch)
            self._original_create_task = self._create_task_hook = None

    @property
    def steps(self) -> int:
        """Task steps seen (counted by the ledger, not per step here)."""
        # list() copies in C: a report may be taken from another thread while tasks come and go
        return sum(record.steps for record in list(self.ledger.live.values())) + sum(
            record.steps for record in list(self.ledger.finished.values()))

    def drain(self) -> list[UnitRecord]:
        """Close the tasks still alive and return every (folded) task record.

        Tasks whose coroutine is asyncio's own housekeeping (``asyncio.run`` shutting down
        async generators and the default executor) are left out: they are not the program's.
        """
        names = self.ledger.live_names(lambda task: task.get_name())
        self.ledger.close_live(self._clock(), names)
        return [record for record in self.ledger.all_records()
                if not record.target_file.startswith(_ASYNCIO_DIR)]

    def snapshot(self) -> list[UnitRecord]:
        """What ``drain`` would return now, from copies: the hooks go on untouched."""
        in_step: dict[int, float] = {}
        current = self.current_step()
        if current is not None:
            in_step[id(current[0])] = current[1]
        names = self.ledger.live_names(lambda task: task.get_name())
        return [record for record in self.ledger.snapshot(self._clock(), names, in_step)
                if not record.target_file.startswith(_ASYNCIO_DIR)]

    def current_step(self) -> tuple[UnitRecord, float] | None:
        """The running task's record and the start of its current step (None outside a
        tracked task): an embedding middleware reads it at a request's start and end. The
        first step's start is the task's first run; a later one is read from the hook's
        frame, as the sampler does (the hook publishes nothing per step)."""
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return None
        record = self.ledger.live.get(id(task))
        if record is None:
            return None
        if record.steps == 0 and record.first_run is not None:
            return record, record.first_run
        frame: Any = sys._getframe(1)
        depth = 0
        hooks = self._run_codes
        while frame is not None and depth < 256:
            if frame.f_code in hooks:
                t0 = frame.f_locals.get("t0")
                return (record, t0) if isinstance(t0, float) else None
            frame = frame.f_back
            depth += 1
        return None

    # -- hooks -----------------------------------------------------------------------
    def _disable(self, error: BaseException) -> None:
        """A probe that fails removes itself and lets the program go on."""
        self.failed = f"{type(error).__name__}: {error}"
        self.stop()

    def _make_create_task_hook(self, original: Callable[..., Any]) -> Callable[..., Any]:
        probe = self
        clock = self._clock
        switch = self._switch

        def create_task(loop: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
            if not switch.on:
                return original(loop, coro, *args, **kwargs)
            t = clock()
            tag = 0
            if probe.tagging and probe._factory_takes_context(loop):
                try:
                    tag = probe._tag_context(coro, kwargs)
                except Exception:
                    tag = 0
            task = original(loop, coro, *args, **kwargs)
            try:
                record = probe._track(task, t)
                if tag:
                    record.contexts = [tag]
                if task.done():
                    # an eager task factory (Python 3.12+) ran it to completion right here
                    t1 = clock()
                    probe.ledger.step_started(record, t)
                    probe._after_step(task, task._fut_waiter, record, t, t1)
            except Exception as error:
                probe._disable(error)
            return task

        return create_task

    @staticmethod
    def _factory_takes_context(loop: Any) -> bool:
        """A task factory written before Python 3.11 takes no ``context``: leave it be."""
        factory = loop.get_task_factory()
        if factory is None:
            return True
        try:
            parameters = inspect.signature(factory).parameters.values()
        except (TypeError, ValueError):
            return False
        return any(p.name == "context" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)

    def _tag_context(self, coro: Any, kwargs: dict[str, Any]) -> int:
        """Give the new task a context in which UNIT_TAG names it, and return the tag: one
        tag per task for the first MAX_TASK_TAGS tasks, then one per coroutine (yappi keeps
        stats per tag, so their number must stay bounded)."""
        self._tagged += 1
        if self._tagged == 1 and self.on_first_tag is not None:
            self.on_first_tag()
        if self._tagged <= MAX_TASK_TAGS:
            tag = self._tagged
        else:
            group = getattr(coro, "cr_code", None)
            tag = self._tags.get(group, 0)
            if not tag:
                tag = self._tags[group] = MAX_TASK_TAGS + len(self._tags) + 1
        context = kwargs.get("context")
        if context is None:
            context = contextvars.copy_context()
            kwargs["context"] = context
        context.run(UNIT_TAG.set, tag)
        return tag

    def _track(self, task: Any, t: float) -> UnitRecord:
        key = id(task)
        record = self.ledger.live.get(key)
        if record is not None:
            return record
        coro = task.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            module = frame.f_globals.get("__name__", "") if frame is not None else ""
            qualname = getattr(code, "co_qualname", code.co_name)
            target = f"{module}.{qualname}" if module else qualname
            record = self.ledger.create(key, target, code.co_filename, code.co_firstlineno, t)
        else:
            record = self.ledger.create(key, type(coro).__qualname__, "", 0, t)
        record.name = task.get_name()  # kept if the task is collected before it finishes
        record.ident = get_ident()  # the thread running its loop: which tasks share a loop (what-if)
        self.ledger.watch(key, task, self._clock)
        if self.timeline is not None:
            self._note_creation(record, t)
        return record

    def _note_creation(self, record: UnitRecord, t: float) -> None:
        """Tell the timeline who created the task: the task whose step is running, if any."""
        assert self.timeline is not None
        try:
            creator = asyncio.current_task()
        except RuntimeError:
            creator = None
        parent = self.ledger.live.get(id(creator)) if creator is not None else None
        self.timeline.created(record.uid, t, parent.uid if parent is not None else 0, record.ident)

    def _make_run_hook(self, original: Callable[..., Any]) -> Callable[..., Any]:
        probe = self
        clock = self._clock
        live = self.ledger.live
        step_started = self.ledger.step_started
        sampler = self.sampler
        thread_time = time.thread_time
        task_types = (asyncio.Task,)
        timer_fired = self._timer_fired
        set_result_unless_cancelled = asyncio.futures._set_result_unless_cancelled  # type: ignore[attr-defined]
        # another probe's hook is already there (an embedded server's deep capture runs beside
        # its always-on probes): run the step through it, so that its ledger sees the step too
        chained = getattr(original, "__wrapped__", None) is not None
        switch = self._switch

        def _run(handle: Any) -> None:
            if not switch.on:
                original(handle)
                return
            callback = handle._callback
            task: Any = getattr(callback, "__self__", None)
            record = live.get(id(task))
            if record is None:
                if task is None or not isinstance(task, task_types):
                    if callback is set_result_unless_cancelled:
                        timer_fired(handle)  # an asyncio.sleep is due: its task is ready now
                    original(handle)
                    return
                try:
                    record = probe._track(task, clock())
                except Exception as error:
                    probe._disable(error)
                    original(handle)
                    return
            # a task that once held the loop for long gets its CPU read at each step start,
            # so its next long steps split into compute and blocking exactly; the sampler finds
            # `record`, `t0` and `cpu0` in this frame when it looks at the thread
            cpu0 = thread_time() if record.longest_step_s > SUSPECT_STEP_S else -1.0
            t0 = clock()
            if record.wait_kind == READY and record.susp_at is not None:
                # the common case, inline: it yielded and was ready at once (sleep(0))
                record.scheduling_s += t0 - record.susp_at
                record.susp_at = None
            else:
                step_started(record, t0)
            try:
                # what Handle._run does, one Python call less per step: the task's step runs
                # in its context; an exception escaping it goes to the loop's handler
                if chained:
                    original(handle)
                else:
                    handle._context.run(callback, *handle._args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                report_callback_error(handle, exc)
            finally:
                t1 = clock()
                try:
                    if sampler is not None and (cpu0 >= 0.0 or t1 - t0 > SEEN_STEP_S):
                        sampler.close_step_at(get_ident(), record, t0, t1, cpu0, thread_time())
                    waiter = task._fut_waiter
                    if waiter is None and not task.done():
                        # TaskLedger.step_ended(READY) inlined: one Python call less on the
                        # commonest step (no await site: it was cleared when the step started)
                        took = t1 - t0
                        record.steps += 1
                        record.running_s += took
                        if took > record.longest_step_s:
                            record.longest_step_s = took
                        record.susp_at = t1
                        record.wait_kind = READY
                    else:
                        probe._after_step(task, waiter, record, t0, t1)
                except Exception as error:
                    probe._disable(error)

        _run.__wrapped__ = original  # type: ignore[attr-defined]
        self._run_codes.add(_run.__code__)
        if sampler is not None:
            sampler.step_frames.add(_run.__code__)
        return _run

    def _make_timeline_hook(self, run: Callable[..., Any], timeline: StepTimeline) -> Callable[..., Any]:
        """The step hook, wrapped to put each task step on the timeline (standard and deep
        mode). A wrapper rather than code in the hook itself: light mode, made to be left on,
        pays nothing for it. The step's start and end are read back from the ledger: it ended
        at the record's suspension (or end) time, and took what its running time grew by."""
        live = self.ledger.live
        thread_time = time.thread_time
        add = timeline.add
        pending = timeline.pending  # what a task said it waits on (``StepTimeline.waits_on``)
        switch = self._switch

        def _run_recorded(handle: Any) -> None:
            if not switch.on:
                run(handle)  # which passes it through too
                return
            task = getattr(handle._callback, "__self__", None)
            record = live.get(id(task)) if task is not None else None
            if record is None:  # not a task step, or a task the hook will track now
                run(handle)
                return
            before = record.wait_kind if record.first_run is not None else NEW
            due = record.due if before == TIMER else 0.0
            running = record.running_s
            # the tasks it waited on, said when its previous step ended (this step may say anew)
            after = pending.pop(record.uid, None) if pending else None
            cpu0 = thread_time() if record.longest_step_s > SUSPECT_STEP_S else -1.0
            run(handle)
            try:
                t1 = record.susp_at if record.susp_at is not None else record.ended
                if t1 is not None:
                    add(record.uid, before, due, t1 - (record.running_s - running), t1,
                        thread_time() - cpu0 if cpu0 >= 0.0 else -1.0, after)
            except Exception as error:
                self._disable(error)

        _run_recorded.__wrapped__ = run.__wrapped__  # type: ignore[attr-defined]
        return _run_recorded

    def _timer_fired(self, handle: Any) -> None:
        """An asyncio.sleep's timer runs: the sleeping task was due at the timer's time."""
        try:
            future = handle._args[0]
            when = handle._when + self._monotonic_offset
            for callback, _context in future._callbacks or ():
                record = self.ledger.live.get(id(getattr(callback, "__self__", None)))
                if record is not None and record.wait_kind == TIMER:
                    record.due = when
        except Exception:
            pass

    def _after_step(self, task: Any, waiter: Any, record: UnitRecord, t0: float, t1: float) -> None:
        if task.done():
            TaskLedger.step_ended(record, t0, t1, READY, 0.0)
            self.ledger.finish(id(task), t1, task.get_name())
            return
        kind, site = self._classify_wait(task, waiter)
        if self.timeline is not None and kind in (WAITING, LOCK):
            self._note_awaited(record, waiter)
        # a timer's due time is set when its timer fires (until then: not ready)
        TaskLedger.step_ended(record, t0, t1, kind, _NOT_DUE if kind == TIMER else 0.0, site)

    def _note_awaited(self, record: UnitRecord, waiter: Any) -> None:
        """The tasks the step's task now waits on, where asyncio says: an awaited task, or
        the children of a ``gather`` (its future keeps them); the timeline's replay moves
        the task's next step with their ends."""
        assert self.timeline is not None
        if isinstance(waiter, asyncio.Task):
            awaited: Any = (waiter,)
        else:
            awaited = getattr(waiter, "_children", None)
            if not isinstance(awaited, list):
                return
        live = self.ledger.live
        uids = tuple(other.uid for other in (live.get(id(child)) for child in awaited) if other is not None)
        self.timeline.waits_on(record.uid, uids)

    def _classify_wait(self, task: Any, waiter: Any) -> tuple[int, Any]:
        """What the task waits for (ledger kind), and the await site: the program's own
        frames in the await chain and (a weak reference to) what it awaits there. Timer
        waits get no site: no rule needs where a task sleeps, and it is the commonest wait."""
        coro = task.get_coro()
        codes = self._code_info
        found: int | None = None
        program: list[Any] = []
        callee: Any = None
        depth = 0
        while coro is not None and depth < 64:
            code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
            if code is None:
                break
            info = codes.get(code)
            if info is None:
                info = codes[code] = (classify_code(code), self._program_code(code))
            if info[0] is not None:
                found = info[0]
            nxt = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
            if info[1]:
                program.append(coro)
                if len(program) == 1 and nxt is not None:
                    callee = nxt
            coro = nxt
            depth += 1
        if found == TIMER:
            return TIMER, None
        site = None
        if program:
            frames = []
            for owner in program:
                frame = owner.cr_frame if hasattr(owner, "cr_frame") else owner.gi_frame
                if frame is not None:
                    code = frame.f_code
                    frames.append((code, frame.f_lineno or code.co_firstlineno))
            token: Any = None
            if callee is not None:
                try:
                    token = weakref.ref(callee)
                except TypeError:
                    token = id(callee)
            site = (tuple(frames), token)
        if found is not None:
            return found, site
        if isinstance(waiter, asyncio.Task) and self.ledger.live.get(id(waiter)) is None and waiter.done():
            return READY, site
        return WAITING, site


__all__ = ["AsyncioProbe", "classify_code"]
