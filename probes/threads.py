"""The thread registry: when each thread started and ended, and its exact CPU time.

It wraps ``threading.Thread._bootstrap_inner`` (restored on stop), which runs first and
last in every thread started through ``threading``: the thread's own ``thread_time()``
at exit is its exact CPU time, and its kernel thread id gives the sampler a clock to read
that thread's CPU from outside (``clock_gettime`` on a per-thread CPU clock id), with
no pthread handle that could dangle once the thread is gone. Threads started before the
probe, or through ``_thread`` directly, are adopted by the sampler when first seen.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from time import clock_gettime  # bound now: a program may replace time's functions
from typing import Any

from .forks import renew_in_child
from .native import allocate_lock, get_ident
from .patches import Switch, mark, take_off
from .records import UnitRecord
from .task_ledger import NUMBERED, fold

# Finished threads are kept one by one up to this many; past it (a thread per request for
# an hour) a thread folds into the entry of its target (default names, ``Thread-N``) or of
# its name's pattern, its numbers as ``*``; past FOLDS_KEPT folds, into ``*`` per target.
THREADS_KEPT = 1_000
FOLDS_KEPT = 1_000
DEFAULT_THREAD_NAME = re.compile(r"^Thread-\d+( \(.*\))?$")


def thread_cpu_clock(native_id: int) -> int | None:
    """The clock id of a thread's CPU-time clock on Linux (None where unsupported).

    Linux encodes a per-thread CPU clock as ``(~tid << 3) | CPUCLOCK_PERTHREAD | SCHED``;
    reading it once the thread has exited fails with EINVAL instead of touching freed
    memory, which is why it is built from the kernel id and not via pthread_getcpuclockid.
    """
    if not sys.platform.startswith("linux"):
        return None
    return ((~native_id) << 3) | 6


def main_native_id() -> int | None:
    """The kernel id of the process's main thread. Not ``threading.main_thread().native_id``
    alone: in a forked child Python 3.11 leaves the parent's id there (the forking thread's
    object is kept), and a profiler started in a pre-forked worker read its main thread's
    CPU clock by it and got none. On Linux the main thread's id is the pid."""
    if sys.platform.startswith("linux"):
        return os.getpid()
    return threading.main_thread().native_id


def native_id_of(thread: threading.Thread | None) -> int | None:
    """A thread's kernel id, the main thread's from main_native_id()."""
    if thread is None:
        return None
    if thread is threading.main_thread():
        return main_native_id()
    return getattr(thread, "native_id", None)


# Descriptors advisor keeps open on threads' schedstat files: at most this many, within the
# top eighth of the process's limit on open files (a program with a limit of 64 lost 11 of
# its own to 40 threads' descriptors). A thread past them has no run-queue time: its time
# off the CPU is not told apart into scheduling (128 threads with the usual limit of 1,024).
MAX_SCHEDSTAT_FDS = 512
SCHEDSTAT_FD_SHARE = 8
_schedstat_fds = [0]


def _descriptor_floor() -> int | None:
    """The lowest number advisor's descriptors may take, or None when the limit on open
    files leaves no room. Out of the low numbers the program's own files get: a program that
    closes every descriptor from 3 up (as a daemon does) opened a pipe on a number advisor
    still held, and advisor closed it when the thread ended; select() takes no number past
    1023, and 1,100 threads pushed the program's sockets there."""
    import resource  # POSIX only, as /proc is

    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft > 4096:
        return 2048
    floor = soft - soft // SCHEDSTAT_FD_SHARE
    return floor if floor > 3 else None


def open_schedstat(native_id: int | None) -> tuple[int, tuple[int, int]] | None:
    """A descriptor on the thread's scheduler statistics (Linux), high in the descriptor
    table, with the file's identity (device, inode); or None."""
    if not native_id or not sys.platform.startswith("linux"):
        return None
    import fcntl

    floor = _descriptor_floor()
    if floor is None or _schedstat_fds[0] >= MAX_SCHEDSTAT_FDS:
        return None
    try:
        low = os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = fcntl.fcntl(low, fcntl.F_DUPFD_CLOEXEC, floor)
        status = os.fstat(fd)
    except OSError:  # no free number that high: no run-queue time for this thread
        return None
    finally:
        os.close(low)
    _schedstat_fds[0] += 1
    return fd, (status.st_dev, status.st_ino)


def close_schedstat(fd: int, identity: tuple[int, int]) -> None:
    """Close advisor's descriptor, if the number is still on the file it opened (the program
    may have closed it and got the number for a file of its own)."""
    _schedstat_fds[0] -= 1
    try:
        status = os.fstat(fd)
        if (status.st_dev, status.st_ino) == identity:
            os.close(fd)
    except OSError:
        pass


def read_run_delay(fd: int | None) -> float | None:
    """Seconds the thread has spent runnable but waiting for a CPU (the run queue)."""
    if fd is None:
        return None
    try:
        fields = os.pread(fd, 96, 0).split()
        return int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class CallerRunDelay:
    """Seconds the calling thread has spent runnable but waiting for a CPU so far (its
    run-queue time), or None where the kernel does not say. One descriptor, on the last
    thread asked (a server's, which asks again and again): another thread, or the same code
    in a forked child, closes it and opens its own."""

    def __init__(self) -> None:
        self._native: int | None = None
        self._opened: tuple[int, tuple[int, int]] | None = None

    def __call__(self) -> float | None:
        native = threading.get_native_id()
        if native != self._native:
            self.close()
            self._native = native
            self._opened = open_schedstat(native)
        return read_run_delay(self._opened[0]) if self._opened is not None else None

    def close(self) -> None:
        opened, self._opened, self._native = self._opened, None, None
        if opened is not None:
            close_schedstat(*opened)


def read_clock(clock: int | None) -> float | None:
    """CPU seconds of a thread's clock, or None once the thread is gone."""
    if clock is None:
        return None
    try:
        return clock_gettime(clock)
    except OSError:
        return None


class ThreadInfo:
    """Registry entry of one thread: its record plus what the sampler needs."""

    __slots__ = ("clock", "cpu0", "ident", "last_cpu", "last_delay", "last_t", "record", "schedstat",
                 "schedstat_id", "thread")

    def __init__(self, ident: int, record: UnitRecord, clock: int | None, cpu0: float,
                 thread: threading.Thread | None, native_id: int | None = None) -> None:
        self.ident = ident
        self.record = record
        self.clock = clock
        self.cpu0 = cpu0
        self.last_t = record.created
        self.last_cpu = cpu0
        self.thread = thread
        # the kernel's count of time this thread was runnable but not running
        opened = open_schedstat(native_id)
        self.schedstat: int | None = opened[0] if opened is not None else None
        self.schedstat_id: tuple[int, int] | None = opened[1] if opened is not None else None
        self.last_delay = read_run_delay(self.schedstat) or 0.0

    def close(self) -> None:
        fd, identity = self.schedstat, self.schedstat_id
        self.schedstat = self.schedstat_id = None
        if fd is not None and identity is not None:
            close_schedstat(fd, identity)


class ThreadRegistry:
    """Threads of the observed program, alive and finished."""

    name = "threads"

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.alive: dict[int, ThreadInfo] = {}
        self.finished: list[UnitRecord] = []
        # the interpreter's lock even when gevent patched threading first (embedded use)
        self._lock = allocate_lock()
        self._next_uid = 0
        self._original: Callable[..., Any] | None = None
        self._hook: Callable[..., Any] | None = None
        self._switch = Switch()  # off: the hook passes through (see patches.py)
        self.ignored: set[int] = set()
        self.started_at = 0.0
        # called in each new thread as it starts (other probes install per-thread hooks)
        self.on_thread_start: list[Callable[[], None]] = []
        self.failed: str | None = None  # why a thread's start or end could not be recorded
        self._folds: dict[tuple[str, ...], UnitRecord] = {}

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self.started_at = self._clock()
        renew_in_child(self, "_forked")
        main = threading.main_thread()
        # by kernel thread id: under gevent's patching (a server that embeds advisor patched
        # first) current_thread() and main.ident name greenlets, not the OS thread; and from
        # another thread main.is_alive() would wait on a gevent lock there (a deadlock), so
        # the main thread counts as alive unless it is known to have stopped
        on_main = main_native_id() == threading.get_native_id()
        if on_main or not getattr(main, "_is_stopped", False):
            ident = get_ident() if on_main else (main.ident or 0)
            info = self.adopt(ident, main, self.started_at, time.thread_time() if on_main else None)
            if info is not None and on_main:
                # the sampler may have adopted it already: the run starts now, not then
                with self._lock:
                    info.cpu0 = info.last_cpu = time.thread_time()
                    info.last_delay = read_run_delay(info.schedstat) or 0.0
                    info.last_t = info.record.created = info.record.first_run = self.started_at
        original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
        self._original = original
        registry = self
        switch = self._switch = Switch()

        def _bootstrap_inner(thread: threading.Thread) -> None:
            if not switch.on:
                original(thread)
                return
            info = registry._thread_began(thread)
            try:
                original(thread)
            finally:
                registry._thread_ended(info)

        self._hook = mark(_bootstrap_inner, original, switch)
        threading.Thread._bootstrap_inner = self._hook  # type: ignore[attr-defined]

    def _forked(self) -> None:
        """In a forked child: a lock another thread held at the fork is held forever."""
        self._lock = allocate_lock()

    def stop(self) -> None:
        if self._original is not None:
            take_off(threading.Thread, "_bootstrap_inner", self._hook, self._original, self._switch)
            self._original = self._hook = None

    def drain(self) -> list[UnitRecord]:
        """Close the threads still alive (they ran until now) and return all records."""
        now = self._clock()
        with self._lock:
            for info in list(self.alive.values()):
                self._close(info, now, None)
            self.alive.clear()
            return list(self.finished)

    def snapshot(self) -> list[UnitRecord]:
        """Every thread as ``drain`` would give it now, from copies: nothing is closed."""
        now = self._clock()
        me = get_ident()
        with self._lock:
            records = [record.copy() for record in self.finished]
            alive = list(self.alive.values())
        for info in alive:
            copy = info.record.copy()
            cpu = time.thread_time() if info.ident == me else read_clock(info.clock)
            copy.cpu_s = max(0.0, (cpu if cpu is not None else info.last_cpu) - info.cpu0)
            copy.ended = now
            copy.wall_s = max(0.0, now - copy.created)
            thread = info.thread
            copy.name = thread.name if thread is not None else f"thread-{info.ident}"
            copy.named = True
            records.append(copy)
        return records

    # -- events --------------------------------------------------------------------
    def adopt(self, ident: int, thread: threading.Thread | None, t: float,
              cpu_now: float | None) -> ThreadInfo | None:
        """Start tracking a thread that is already running."""
        native = native_id_of(thread)
        clock = thread_cpu_clock(native) if native else None
        cpu = cpu_now if cpu_now is not None else read_clock(clock)
        if cpu is None and clock is not None:
            return None
        with self._lock:
            info = self.alive.get(ident)
            if info is not None:
                return info
            record = self._new_record(thread, t)
            record.ident = ident
            info = ThreadInfo(ident, record, clock, cpu or 0.0, thread, native)
            self.alive[ident] = info
            return info

    def _new_record(self, thread: threading.Thread | None, t: float) -> UnitRecord:
        self._next_uid += 1
        target = getattr(thread, "_target", None) if thread is not None else None
        code = getattr(target, "__code__", None)
        if target is not None and code is not None:
            qualname = getattr(target, "__qualname__", code.co_name)
            name = f"{getattr(target, '__module__', '') or ''}.{qualname}".lstrip(".")
            record = UnitRecord(self._next_uid, "thread", name, code.co_filename, code.co_firstlineno, t)
        else:
            label = type(thread).__qualname__ if thread is not None else "thread"
            record = UnitRecord(self._next_uid, "thread", label, "", 0, t)
        record.first_run = t
        return record

    def _thread_began(self, thread: threading.Thread) -> ThreadInfo | None:
        if getattr(thread, "_advisor_internal", False):
            return None
        try:
            t = self._clock()
            ident = get_ident()
            if threading.get_ident() != ident:
                # gevent patched threading: this "thread" is a greenlet, measured as one
                return None
            native = threading.get_native_id()
            clock = thread_cpu_clock(native)
            with self._lock:
                record = self._new_record(thread, t)
                record.ident = ident
                info = ThreadInfo(ident, record, clock, time.thread_time(), thread, native)
                self.alive[ident] = info
            for callback in list(self.on_thread_start):
                callback()
            return info
        except Exception as error:  # a probe never breaks the thread it observes
            self.failed = f"{type(error).__name__}: {error}"
            return None

    def _thread_ended(self, info: ThreadInfo | None) -> None:
        if info is None:
            return
        try:
            now = self._clock()
            cpu = time.thread_time()
            with self._lock:
                if self.alive.pop(info.ident, None) is not None:
                    self._close(info, now, cpu)
        except Exception as error:
            self.failed = f"{type(error).__name__}: {error}"

    def _close(self, info: ThreadInfo, now: float, cpu: float | None) -> None:
        info.close()
        record = info.record
        if cpu is None:
            cpu = read_clock(info.clock)
            if cpu is None:
                cpu = info.last_cpu
        record.cpu_s = max(0.0, cpu - info.cpu0)
        record.ended = now
        record.wall_s = max(0.0, now - record.created)
        thread = info.thread
        record.name = thread.name if thread is not None else f"thread-{info.ident}"
        record.named = True
        self._keep(record)

    def _keep(self, record: UnitRecord) -> None:
        """Add a finished thread's record, folded once THREADS_KEPT are kept (see above)."""
        if len(self.finished) < THREADS_KEPT:
            self.finished.append(record)
            return
        default = DEFAULT_THREAD_NAME.match(record.name) is not None
        name = record.target if default else NUMBERED.sub("*", record.name)
        key = (name, record.target)
        if key not in self._folds and len(self._folds) >= FOLDS_KEPT:
            name = "*"
            key = (name, record.target)
        into = self._folds.get(key)
        if into is None:
            record.name = name
            self._folds[key] = record
            self.finished.append(record)
            return
        fold(into, record)
