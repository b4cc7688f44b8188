"""Call counts and argument distinctness for the few functions the sampler finds hot.

A deterministic profiler pays for every call of every function; advisor only needs call
evidence for the handful of the program's own functions that dominate the samples. Every
few hundred milliseconds this probe takes the hottest program functions the sampler has
seen on the CPU and, for a bounded window (a number of calls or a time), puts a thin
wrapper in its way that counts calls, hashes the argument tuple (only the hash is kept,
never the values) and times each call. Then it puts the original back. The wrapper goes in
the function's own ``__code__`` where it can (a function with no closure): the function
stays the same object, for the program's registries, identity checks and pickling by
reference; otherwise it stands in the name calls go through (the module global or the
class attribute). The window's per-call time and distinct-argument ratio, with the sampled
time of the whole run, give the evidence the cacheable-function and call-overhead rules
need, at a cost bounded by the window.
"""

from __future__ import annotations

import gc
import inspect
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from .codeinfo import ProgramCode
from .forks import renew_in_child
from .sampler import Sampler

# Functions whose calls are counted at most this many at a time, and how hot they must be.
MAX_INSTRUMENTED = 12
MIN_HOT_SHARE = 0.02  # of the sampled on-CPU time so far
CHECK_EVERY_S = 0.1
WINDOW_CALLS = 50_000
WINDOW_S = 1.0
MAX_DISTINCT = 4_096  # distinct argument hashes remembered per function
# Counted calls nested deeper than this (of any counted functions together: a parser's
# mutually recursive functions are counted at once) end the window of the function called:
# each adds up to two frames (the function's stand-in code and the counter), and a program
# recursing near the recursion limit would hit it
MAX_NESTING = 4
# What the wrapper takes of the function it stands for: its names and docs (so that it reads
# as the function in a traceback or repr) and its very attribute dict (``f.calls += 1`` inside
# ``f`` must land on ``f``; functools.wraps copies the dict, and the increments were lost)
_COPIED = ("__module__", "__name__", "__qualname__", "__doc__")
_NOT_PLAIN = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


class CallStats:
    """What one instrumented function's window saw."""

    __slots__ = ("calls", "code", "distinct", "ended", "started", "time_s", "unhashable", "where")

    def __init__(self, code: types.CodeType, where: str) -> None:
        self.code = code
        self.where = where
        self.calls = 0
        self.time_s = 0.0
        self.distinct: set[int] = set()
        self.unhashable = 0
        self.started = 0.0
        self.ended = 0.0


class _Binding:
    """A place a function is called through: a namespace dict and a name in it."""

    __slots__ = ("name", "namespace", "original", "wrapper")

    def __init__(self, namespace: dict[str, Any], name: str, original: Any, wrapper: Any) -> None:
        self.namespace = namespace
        self.name = name
        self.original = original
        self.wrapper = wrapper

    def install(self) -> None:
        self.namespace[self.name] = self.wrapper

    def restore(self) -> None:
        # only if nobody rebound the name meanwhile
        if self.namespace.get(self.name) is self.wrapper:
            self.namespace[self.name] = self.original


# The stand-in code of a function counted in place: it calls the counter, which the
# function's own code object cannot reach through a closure (it has none) or its globals
# (the program's): the counter is put in the code's constants, in place of this marker.
_COUNTER_MARK = "advisor: the counter goes here"


def _stand_in(*args: Any, **kwargs: Any) -> Any:
    counter: Any = "advisor: the counter goes here"  # a constant (_COUNTER_MARK), replaced
    return counter(*args, **kwargs)


class _CodeSwap:
    """A function counted in place: its ``__code__`` swapped for a stand-in that calls the
    counter, which calls a copy of the function with the original code."""

    __slots__ = ("function", "name", "original", "stand_in")

    def __init__(self, function: types.FunctionType, counter: Callable[..., Any]) -> None:
        self.function = function
        self.name = function.__name__
        self.original = function.__code__
        consts = tuple(counter if const == _COUNTER_MARK else const for const in _stand_in.__code__.co_consts)
        stand_in = _stand_in.__code__.replace(co_consts=consts, co_name=self.original.co_name)
        if hasattr(stand_in, "co_qualname"):  # Python 3.11+: as the function in a traceback
            stand_in = stand_in.replace(co_qualname=self.original.co_qualname)
        self.stand_in = stand_in

    @staticmethod
    def original_copy(function: types.FunctionType) -> types.FunctionType:
        """The function as it is, as another object: what the counter calls."""
        copy = types.FunctionType(function.__code__, function.__globals__, function.__name__,
                                  function.__defaults__, None)
        copy.__kwdefaults__ = function.__kwdefaults__
        copy.__qualname__ = function.__qualname__
        copy.__module__ = function.__module__
        return copy

    def install(self) -> None:
        self.function.__code__ = self.stand_in

    def restore(self) -> None:
        # only if nobody changed the code meanwhile
        if self.function.__code__ is self.stand_in:
            self.function.__code__ = self.original


def measure_call_cost(rounds: int = 200_000) -> float:
    """Seconds a call of a one-line method costs here: what inlining it into a loop saves.

    Timed on the thread's CPU clock, as every calibration of the probes is: on a busy
    machine a preemption inside one timed loop would otherwise skew the difference (seen:
    half the real cost, which halved the replayed saving of inlining a call)."""
    class Rate:
        percent = 120

        def apply(self, value: int) -> int:
            return value * self.percent

    rate = Rate()

    def with_calls() -> float:
        begin = time.thread_time()
        for number in range(rounds):
            rate.apply(number)
        return time.thread_time() - begin

    def inline() -> float:
        percent = rate.percent
        begin = time.thread_time()
        for number in range(rounds):
            _ = number * percent  # the same work without the call
        return time.thread_time() - begin

    return max(0.0, (min(with_calls() for _ in range(3)) - min(inline() for _ in range(3))) / rounds)


class HotCallProbe:
    """Counts calls of the sampler's hottest program functions, one bounded window each."""

    name = "hot-calls"

    def __init__(self, sampler: Sampler, clock: Callable[[], float] = time.perf_counter) -> None:
        self.sampler = sampler
        self._clock = clock
        self._program = ProgramCode()
        self.stats: dict[types.CodeType, CallStats] = {}
        self._bindings: dict[types.CodeType, list[_Binding | _CodeSwap]] = {}
        self._lock = threading.Lock()
        self._last_check = 0.0
        self._nesting = [0]  # counted calls under way, of all counted functions
        self.wrapper_cost_s = 0.0
        self.call_cost_s = 0.0
        self._prepared = False
        self.failed: str | None = None

    def prepare(self) -> None:
        """Measure what a call and the counting wrapper cost (before sampling starts)."""
        self.call_cost_s = measure_call_cost()
        self.wrapper_cost_s = self._measure_wrapper_cost()
        self._prepared = True

    def start(self) -> None:
        if not self._prepared:
            self.prepare()
        self.sampler.hot_codes = {}
        self.sampler.after_tick.append(self._after_tick)
        renew_in_child(self, "_forked")

    def _forked(self) -> None:
        """In a forked child: the sampler's thread may have held the lock at the fork."""
        self._lock = threading.Lock()

    def stop(self) -> None:
        if self._after_tick in self.sampler.after_tick:
            self.sampler.after_tick.remove(self._after_tick)
        with self._lock:
            for bindings in self._bindings.values():
                for binding in bindings:
                    binding.restore()
            self._bindings.clear()

    def drain(self) -> list[CallStats]:
        return [stats for stats in self.stats.values() if stats.calls]

    # -- choosing -------------------------------------------------------------------
    def _after_tick(self, now: float) -> None:
        if now - self._last_check < CHECK_EVERY_S:
            return
        self._last_check = now
        try:
            self._instrument_hottest(now)
        except Exception as error:  # never break the program: stop instrumenting
            self.failed = f"{type(error).__name__}: {error}"
            self.stop()

    def _instrument_hottest(self, now: float) -> None:
        hot = self.sampler.hot_codes
        if not hot:
            return
        total = sum(hot.values())
        ranked = sorted(hot.items(), key=lambda item: -item[1])
        for code, seconds in ranked[:MAX_INSTRUMENTED * 2]:
            if len(self.stats) >= MAX_INSTRUMENTED or seconds < MIN_HOT_SHARE * total:
                return
            if code in self.stats or not self._eligible(code):
                continue
            self._instrument(code, now)

    def _eligible(self, code: types.CodeType) -> bool:
        return (self._program(code) and not code.co_flags & _NOT_PLAIN
                and not code.co_name.startswith("<"))

    # -- wrapping ---------------------------------------------------------------------
    def _instrument(self, code: types.CodeType, now: float) -> None:
        functions = [ref for ref in gc.get_referrers(code)
                     if isinstance(ref, types.FunctionType) and ref.__code__ is code]
        stats = CallStats(code, "")
        self.stats[code] = stats  # even when no binding is found: do not try again
        bindings: list[_Binding | _CodeSwap] = []
        for function in functions:
            if function.__closure__ is None:
                bindings.append(self._swap(function, stats))
                continue
            for namespace, name in self._places(function):
                wrapper = self._wrap(function, stats)
                bindings.append(_Binding(namespace, name, function, wrapper))
        if not bindings:
            return
        stats.started = now
        stats.where = ", ".join(binding.name for binding in bindings)
        with self._lock:
            self._bindings[code] = bindings
            for binding in bindings:
                binding.install()

    @staticmethod
    def _places(function: types.FunctionType) -> list[tuple[dict[str, Any], str]]:
        """Where calls to `function` are looked up: module globals, or its class's dict."""
        places: list[tuple[dict[str, Any], str]] = []
        module_globals = function.__globals__
        for name, value in list(module_globals.items()):
            if value is function:
                places.append((module_globals, name))
        owner_path = function.__qualname__.split(".")[:-1]
        if owner_path and "<locals>" not in owner_path:
            owner: Any = module_globals.get(owner_path[0])
            for part in owner_path[1:]:
                owner = getattr(owner, part, None)
            if isinstance(owner, type):
                attribute = function.__name__
                if owner.__dict__.get(attribute) is function:
                    # class __dict__ is a read-only mapping: rebinding goes through setattr
                    places.append((_ClassNamespace(owner), attribute))  # type: ignore[arg-type]
        return places

    def _swap(self, function: types.FunctionType, stats: CallStats) -> _CodeSwap:
        """Counting `function` in place: the counter calls a copy with its original code."""
        return _CodeSwap(function, self._wrap(_CodeSwap.original_copy(function), stats))

    def _wrap(self, function: types.FunctionType, stats: CallStats) -> Callable[..., Any]:
        clock = self._clock
        distinct = stats.distinct
        probe = self
        nesting = self._nesting

        def counted(*args: Any, **kwargs: Any) -> Any:
            stats.calls += 1
            try:
                key = hash((args, tuple(sorted(kwargs.items()))) if kwargs else args)
                if len(distinct) < MAX_DISTINCT:
                    distinct.add(key)
            except Exception:  # TypeError, or an argument whose own __hash__ raises
                stats.unhashable += 1
            nesting[0] += 1
            if nesting[0] > MAX_NESTING:
                # recursion: put the original back, so that deeper calls add no frame of ours
                probe._close_window(stats, clock())
            begin = clock()
            try:
                return function(*args, **kwargs)
            finally:
                end = clock()
                nesting[0] -= 1
                stats.time_s += end - begin
                if stats.calls >= WINDOW_CALLS or end - stats.started >= WINDOW_S:
                    probe._close_window(stats, end)

        for attribute in _COPIED:
            setattr(counted, attribute, getattr(function, attribute))
        counted.__dict__ = function.__dict__
        return counted

    def _close_window(self, stats: CallStats, now: float) -> None:
        with self._lock:
            bindings = self._bindings.pop(stats.code, None)
            if bindings is None:
                return
            stats.ended = now
            for binding in bindings:
                binding.restore()

    def _measure_wrapper_cost(self, rounds: int = 20_000) -> float:
        """Seconds the counting wrapper adds to one call (subtracted from per-call times)."""
        def target(value: int) -> int:
            return value

        stats = CallStats(target.__code__, "calibration")
        stats.started = self._clock()
        # counted in place, as a function with no closure is (the costlier of the two ways)
        swap = self._swap(target, stats)  # type: ignore[arg-type]
        # keep the calibration window open for all rounds
        stats.started = float("inf")

        def run() -> float:
            begin = time.thread_time()  # the thread's CPU: see measure_call_cost
            for number in range(rounds):
                target(number % 7)
            return time.thread_time() - begin

        bare = min(run() for _ in range(3))
        swap.install()
        try:
            timed = min(run() for _ in range(3))
        finally:
            swap.restore()
        return max(0.0, (timed - bare) / rounds)


class _ClassNamespace:
    """A class seen as a mutable namespace (``setattr`` instead of item assignment)."""

    __slots__ = ("owner",)

    def __init__(self, owner: type) -> None:
        self.owner = owner

    def __setitem__(self, name: str, value: Any) -> None:
        setattr(self.owner, name, value)

    def get(self, name: str) -> Any:
        return self.owner.__dict__.get(name)
