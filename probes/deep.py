"""Deep mode: yappi's deterministic profile, per asyncio task group, greenlet and thread.

yappi runs with its wall clock (a CPU clock read per call costs several times more).
Asyncio tasks are told apart by a tag: a ``ContextVar`` whose C-level ``get`` is yappi's
tag callback (no Python frame per call), set in each task's context by the asyncio
probe. Greenlets use yappi's greenlet context backend when the program uses gevent.
Before the run, the cost yappi adds to one call is measured (by kind of call, C calls
included: yappi times every one, so it is started with builtins on, to count them), split
into what lands in the caller's and in the callee's own time, and so is how much slower
bytecode runs under it, so the report can take both out; they are measured
again once the run's stats are read, and the two are averaged (when they disagree by more
than 20%, one of them caught a slow spell: the lower is taken; in a running server, where
other threads may still be inside yappi's callback, only the start-up's is taken, and
yappi's tables are freed at the next capture's start). Each measure is timed beside a
*reference*, a short loop of calls under yappi, and kept relative to it; while the program
runs, its main thread times the same reference every ``SPEED_EVERY_S`` (a pending call, see
``_yappi_context.call_on_main``), and the costs are scaled to the speed it saw: a machine
whose speed changes (a shared core, turbo, throttling) charges the run's calls what they
cost while it ran, not what they cost during a calibration a fraction of a second long.
yappi's coroutine-aware wall clock grows with the square of the suspended coroutines, so
the profile pauses while more than ``MAX_LIVE_TASKS`` tasks are alive, and says so.
"""

from __future__ import annotations

import contextvars
import dis
import statistics
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .gc_hold import collections_held

try:  # deep mode's speed samples need it (optional: built where a compiler was)
    from ._yappi_context import call_on_main  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the build
    def call_on_main(function: Callable[[], object]) -> bool:
        """Where _yappi_context.c was not built: no speed sample (the calibrations' speed)."""
        return False

# The unit tag of the code running now (0: not inside a tagged asyncio task).
UNIT_TAG: contextvars.ContextVar[int] = contextvars.ContextVar("advisor_unit_tag", default=0)

MAX_LIVE_TASKS = 1_000
DISAGREEMENT = 1.2  # two calibrations further apart than this: one caught a slow spell
RESUME_BELOW = 800
MAX_QUERIES = 2_500  # per-tag and per-context stats asked of yappi at the end
SETTLE_S = 0.02  # after yappi stops: for a callback in flight in another thread to end
# The speed reference: a loop of this many calls under yappi (~0.15-0.3 ms), after a few
# untimed ones (the loop's code and yappi's entries for it back in the caches). Timed in the
# program's main thread every SPEED_EVERY_S while it runs (~0.2-0.3% of its time); scaled to
# when at least MIN_SPEED_SAMPLES were taken
REFERENCE_CALLS = 500
REFERENCE_WARM_UP = 50
SPEED_EVERY_S = 0.1
MIN_SPEED_SAMPLES = 5
_STALE = [False]  # yappi holds a capture's tables, to be freed at the next capture's start


@dataclass
class CallCost:
    """What yappi adds to one profiled call: in the caller's and the callee's own time (as
    yappi reports them), and in wall time as the program feels it (hooks included)."""

    caller_s: float = 0.0
    callee_s: float = 0.0
    wall_s: float = 0.0
    # yappi's cost differs by kind of call: recursive functions, methods, constructors
    recursive_wall_s: float = 0.0
    method_wall_s: float = 0.0
    init_wall_s: float = 0.0
    recursive_method_wall_s: float = 0.0
    # a call of a C function (``len``, ``list.append``): yappi times every one of them,
    # even when builtins are left out of its stats, and one costs more than a Python call
    builtin_wall_s: float = 0.0
    builtin_callee_s: float = 0.0  # of which in the C function's own time
    # a C method called on its object (``items.append(x)``): the interpreter makes a bound
    # method for yappi's callback on each call
    builtin_method_wall_s: float = 0.0
    # On Python 3.11 a profile function turns off the specialised instructions for every
    # instruction the thread runs: bytecode runs this many times slower under yappi, calls
    # or none (the costs per call above are what is left once that is taken out)
    bytecode_factor: float = 1.0
    # the mean time of one instruction of the calibration's loop under yappi: a function
    # with no loop cannot run much longer a call than its instructions take (see
    # advisor/code_shape.py)
    instruction_s: float = 0.0
    # the reference loop's time per call under yappi when these were measured (0: not
    # measured): the speed the costs above are at
    reference_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.caller_s + self.callee_s

    @property
    def c_method_wall_s(self) -> float:
        """A C method call's cost: its own calibration, else (where that loop measured
        nothing) a C function call's."""
        return self.builtin_method_wall_s or self.builtin_wall_s

    def scaled(self, by: float) -> CallCost:
        """These costs on a machine `by` times as slow (the bytecode factor is a ratio)."""
        return CallCost(**{name: value if name == "bytecode_factor" else value * by
                           for name, value in vars(self).items()})

    def at_speed(self, reference_s: float) -> CallCost:
        """These costs at the speed where the reference loop takes `reference_s` a call."""
        if not self.reference_s > 0.0 or not reference_s > 0.0:
            return self
        return self.scaled(reference_s / self.reference_s)

    def combined(self, other: CallCost) -> CallCost:
        """The start-up's and the end's calibrations made one, field by field: their mean
        where they agree (within DISAGREEMENT), else the lower one. A calibration lasts a
        fraction of a second, and a shared machine's slow spell caught in it (seen: 0.80 µs a
        call at the start against 0.46 µs at the end, and 0.46-0.49 µs in both in five other
        runs) would be charged to every call of a run of seconds: the mean of those two took
        out all but 0.19 s of a program that runs 0.30-0.47 s bare, or all of it. A spell
        may catch one kind of call's loop alone (seen: 856 ns a method call against 506 ns in
        the same calibration's other loops), hence field by field. The bytecode factor is
        compared by what it adds (1.9 and 2.0 agree as 0.9 and 1.0 do). Calibrations kept
        relative to their reference loops are first both taken to the speed between their
        references: a machine that slowed between them is not a disagreement."""
        if not other.wall_s:
            return self
        if not self.wall_s:
            return other
        if self.reference_s > 0.0 and other.reference_s > 0.0:  # both at the speed between theirs
            speed = (self.reference_s + other.reference_s) / 2
            return self.at_speed(speed)._field_by_field(other.at_speed(speed))
        return self._field_by_field(other)

    def _field_by_field(self, other: CallCost) -> CallCost:
        values = {}
        for name, mine in vars(self).items():
            theirs = getattr(other, name)
            base = 1.0 if name == "bytecode_factor" else 0.0
            low, high = sorted((mine - base, theirs - base))
            values[name] = min(mine, theirs) if high > DISAGREEMENT * low else (mine + theirs) / 2
        values["reference_s"] = self.reference_s
        return CallCost(**values)


@dataclass
class DeepFunction:
    """One function's deterministic stats in one context/tag (plain data, no yappi objects)."""

    module: str
    name: str
    lineno: int
    ncall: int
    tsub: float
    ttot: float
    ctx_id: int
    tag: int
    # callees: (module, name, first line, calls, tsub, ttot)
    children: list[tuple[str, str, int, int, float, float]] = field(default_factory=list)
    builtin: bool = False  # a C function (module "builtins" or the C module, line 0)


@dataclass
class DeepProfile:
    """yappi's stats as plain data: merged over everything, and per unit handle.

    yappi's unfiltered stats merge a function's entries across tags and contexts (and
    show one of them), so per-unit stats are asked for one tag or context at a time."""

    functions: list[DeepFunction]
    by_tag: dict[int, list[DeepFunction]]
    by_context: dict[int, list[DeepFunction]]
    cost: CallCost
    contexts: dict[int, int]  # ctx id -> thread ident (a thread's, or a greenlet's)
    paused_s: float
    clock: str
    backend: str
    # the main thread's speed while the program ran: reference loops timed, and the scale
    # the calibrated costs were given for it (1.0: too few were taken, the calibrations' own)
    speed_samples: int = 0
    speed_scale: float = 1.0


class SpeedSamples:
    """The reference loop's time per call in the program's main thread, sampled as it runs.

    Kept as their count and the sum of their inverses, bounded: the speed to scale yappi's
    cost per call to is their harmonic mean. A call costs `c` at a time the loop took `c`, and
    a program makes more calls a second when calls are cheap, so the calls' mean cost is the
    time-weighted harmonic mean of `c`; the samples are spread evenly in time. Not the
    median: a slow spell of a third of the run is a third of its calls' cost."""

    def __init__(self) -> None:
        self.count = 0
        self._inverse_sum = 0.0

    def add(self, seconds_per_call: float) -> None:
        if seconds_per_call > 0.0:
            self.count += 1
            self._inverse_sum += 1.0 / seconds_per_call

    @property
    def typical(self) -> float:
        return self.count / self._inverse_sum if self.count else 0.0


# The calibrations time the calibrating thread's CPU, not the wall clock: on a busy machine
# a preemption inside a timed loop would count as yappi's cost (seen: 30-80% too high
# under load, which turned the correction of a call-heavy run into an over-correction).
_cpu_clock = time.thread_time


def _typical(timings: Iterable[float]) -> float:
    """The median of a few timings of one loop. Not the least: the run pays the cost as it is
    on average, and the thread CPU clock of a virtual machine now and then reads a loop of
    profiled calls at a third of its time (seen: 1.7 ms for a loop that takes 4.9 ms)."""
    return statistics.median(timings)


# The calibrations' code, at module level: a program calls its functions and classes through
# its globals (a dict look-up per call, and a slow one while yappi runs: a profile function
# turns off Python 3.11's specialised instructions), not through closure cells.
def _empty() -> None:
    return None


def _caller(count: int) -> None:
    for _ in range(count):
        _empty()


def _fib(n: int) -> int:
    return n if n < 2 else _fib(n - 1) + _fib(n - 2)


class _Point:
    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def norm(self) -> int:
        return self.x * self.x + self.y * self.y


class _Link:
    def __init__(self, rest: _Link | None) -> None:
        self.rest = rest

    def length(self) -> int:
        return 1 if self.rest is None else 1 + self.rest.length()


_SCALE = 3


def _reference_callee() -> None:
    return None


def _reference_loop(count: int) -> None:
    for _ in range(count):
        _reference_callee()


def reference_time() -> float:
    """The reference loop's time per call, as this thread runs it now (under yappi, where
    it runs): the speed the calibration's measures are kept relative to, and the speed the
    program's main thread is sampled at while it runs."""
    _reference_loop(REFERENCE_WARM_UP)
    begin = _cpu_clock()
    _reference_loop(REFERENCE_CALLS)
    return (_cpu_clock() - begin) / REFERENCE_CALLS


class Reference:
    """A calibration's speed reference, timed under yappi beside each of its measures. A
    shared machine's speed can change by half within a calibration of a fraction of a
    second (seen here: a call under yappi 320 ns or 620 ns from one second to the next);
    each measure divided by the reference timed beside it is a figure the machine's speed
    leaves alone, and the calibration's seconds are those figures at the reference's median."""

    def __init__(self, timer: Callable[[], float] = reference_time) -> None:
        self._timer = timer
        self.seen: list[float] = []

    def take(self) -> float:
        """Time the reference now (yappi running). Where the clock did not move, the
        references so far stand for it (none so far: 1.0, the measure left in seconds)."""
        value = self._timer()
        if value > 0.0:
            self.seen.append(value)
            return value
        return self.typical or 1.0

    def around(self, yappi: Any, threads: bool) -> float:
        """Time the reference with yappi started for it (beside a measure taken bare)."""
        yappi.start(builtins=True, profile_threads=threads)
        try:
            return self.take()
        finally:
            yappi.stop()

    @property
    def typical(self) -> float:
        return statistics.median(self.seen) if self.seen else 0.0

    def since(self, mark: int) -> float:
        """The median of the references taken since `mark` (a len(seen) before)."""
        return statistics.median(self.seen[mark:]) if len(self.seen) > mark else 1.0


def _bytecode(count: int) -> float:
    """A loop of no calls, with the instructions a program's bodies are made of (global and
    attribute loads, an attribute store, int and float arithmetic, a compare and a branch,
    list and dict subscripts): timed bare and under yappi, it gives the bytecode factor.
    The factor differs by instruction (measured here: 1.5x for int arithmetic, 1.6-1.75x
    for attribute loads, subscripts and strings, 2.1-2.6x for this mix)."""
    point = _Point(1, 2)
    table = {"a": 1}
    items = [1, 2]
    total = 0.0
    for index in range(count):
        value = point.x * index + _SCALE
        if value > 10:
            total += items[index & 1] + table["a"] * 0.5
        else:
            point.y = index - 1
    return total


def _extra(yappi: Any, timer: Callable[[], float], pairs: int = 7, threads: bool = True,
           reference: Reference | None = None) -> tuple[float, float]:
    """What yappi adds to a timed loop, and the loop's bare time: the medians, over `pairs`
    runs of the loop without and then with yappi, of the difference and of the bare run,
    each pair's divided by the `reference` timed right after it. Taken in pairs, a slower
    spell of the machine lands on both sides of one difference rather than on one side of
    all of them."""
    differences, bares = [], []
    for _ in range(pairs):
        bare = timer()
        yappi.start(builtins=True, profile_threads=threads)
        try:
            profiled = timer()
            unit = reference.take() if reference is not None else 1.0
        finally:
            yappi.stop()
        differences.append((profiled - bare) / unit)
        bares.append(bare / unit)
    return statistics.median(differences), statistics.median(bares)


def _per_call(extra: tuple[float, float], calls: int, factor: float) -> float:
    """yappi's own cost per call of a timed loop of `calls` calls: what it added, less what
    the loop's bytecode lost to the bytecode factor (taken out of each function's own time
    instead, so that a body heavier than the calibration's is corrected too)."""
    added, bare = extra
    return max(0.0, (added - (factor - 1.0) * bare) / calls)


def _calibrate(yappi: Any, rounds: int = 20_000, ignored: Collection[int] = ()) -> CallCost:
    """Measure yappi's per-call cost on an empty function called from a loop, and by kind of
    call (recursive functions and methods, constructors, methods, C functions), and how much
    slower bytecode runs under it. It starts, stops and clears yappi dozens of times. Where
    other threads run (a server), it profiles its own thread alone, so that no other thread
    is inside yappi's callback when a clear frees yappi's tables; and collections are held
    off, so that no finalizer cuts a thread inside the callback meanwhile."""
    alone = not others_run(ignored)
    with collections_held():
        return _measure_calls(yappi, rounds, alone)


def others_run(ignored: Collection[int] = ()) -> bool:
    """Threads besides this one and `ignored` (advisor's own: its live status line): yappi
    is then calibrated on this one alone (its callback in no other thread, none of which can
    then be inside it when a calibration clears yappi's tables), and its tables are cleared
    only once no thread has run under it for a while (see DeepProbe.clear)."""
    own = threading.get_ident()
    with collections_held():  # wrapping other threads' frames: see gc_hold
        idents = list(sys._current_frames())
    return any(ident != own and ident not in ignored for ident in idents)


def _timed(work: Callable[[int], object], count: int) -> Callable[[], float]:
    def timer() -> float:
        begin = _cpu_clock()
        work(count)
        return _cpu_clock() - begin
    return timer


def _bare_relative(work: Callable[[int], object], count: int, yappi: Any, threads: bool,
                   reference: Reference) -> float:
    """A loop's typical bare time (of 5 runs), in the units of the reference timed right
    after it."""
    return _typical(_timed(work, count)() for _ in range(5)) / reference.around(yappi, threads)


def _loop_instructions(function: Callable[..., object]) -> int:
    """The instructions of a function's loop, from its FOR_ITER to its backward jump."""
    names = [instruction.opname for instruction in dis.get_instructions(function)]
    try:
        return names.index("JUMP_BACKWARD") - names.index("FOR_ITER") + 1
    except ValueError:  # another version's bytecode
        return len(names)


def _bytecode_factor(yappi: Any, rounds: int, threads: bool,
                     reference: Reference | None = None) -> tuple[float, float]:
    """How much slower bytecode runs under yappi, and an instruction's mean time under it."""
    added, bare = _extra(yappi, _timed(_bytecode, rounds), threads=threads, reference=reference)
    yappi.clear_stats()
    if bare <= 0.0:
        return 1.0, 0.0
    return 1.0 + max(0.0, added) / bare, (bare + max(0.0, added)) / (rounds * _loop_instructions(_bytecode))


def _measure_calls(yappi: Any, rounds: int, threads: bool) -> CallCost:
    """The calibration's measures, each relative to the reference timed beside it, made
    seconds at the reference's median (see Reference)."""
    def loop(count: int) -> None:
        for _ in range(count):
            pass

    reference = Reference()
    loop_only = _bare_relative(loop, rounds, yappi, threads, reference)
    with_calls = _bare_relative(_caller, rounds, yappi, threads, reference)
    factor, instruction = _bytecode_factor(yappi, rounds // 2, threads, reference)
    passes = 7
    yappi.clear_stats()
    mark = len(reference.seen)
    wall = _per_call(_extra(yappi, _timed(_caller, rounds), passes, threads, reference), rounds, factor)
    unit = reference.since(mark)  # of the passes whose stats these are
    stats = {stat.name: stat for stat in yappi.get_func_stats() if stat.name in ("_empty", "_caller")}
    yappi.clear_stats()
    if "_empty" not in stats or "_caller" not in stats:
        return CallCost()
    calls = rounds * passes
    # the bare call's own time splits between the two; under yappi it runs `factor` slower
    empty_bare = max(0.0, (with_calls - loop_only) / rounds) * factor
    callee = max(0.0, stats["_empty"].tsub / unit / calls - empty_bare / 2)
    caller_own = max(0.0, (stats["_caller"].tsub / unit - factor * loop_only * passes) / calls - empty_bare / 2)
    recursive = _recursive_cost(yappi, factor, threads, reference)
    method, init, recursive_method = _object_costs(yappi, factor, threads, reference)
    builtin, builtin_callee, builtin_method = _builtin_cost(yappi, factor, rounds // 4, threads, reference)
    wall = max(wall, caller_own + callee)
    relative = CallCost(caller_s=caller_own, callee_s=callee, wall_s=wall,
                        recursive_wall_s=max(recursive, wall), method_wall_s=max(method, wall),
                        init_wall_s=max(init, wall), recursive_method_wall_s=max(recursive_method, wall),
                        builtin_wall_s=max(builtin, builtin_callee), builtin_callee_s=builtin_callee,
                        builtin_method_wall_s=max(builtin_method, builtin, builtin_callee),
                        bytecode_factor=factor, instruction_s=instruction, reference_s=1.0)
    return relative.scaled(reference.typical)


def _lengths(count: int) -> int:
    items = [1]
    total = 0
    for _ in range(count):
        total += len(items)
    return total


def _counts(count: int) -> int:
    items = [1]
    total = 0
    for _ in range(count):
        total += items.count(0)
    return total


def _builtin_cost(yappi: Any, factor: float, rounds: int, threads: bool,
                  reference: Reference) -> tuple[float, float, float]:
    """yappi's cost per call of a C function (``len``), the part of it timed as the C
    function's own, and its cost per call of a C method (``items.count(0)``): yappi times
    C calls whether or not builtins are shown in its stats. In `reference`'s units."""
    def bare_loop(count: int) -> None:  # _lengths without its len() call
        total, step = 0, 1
        for _ in range(count):
            total += step

    loop_only = _bare_relative(bare_loop, rounds, yappi, threads, reference)
    with_calls = _bare_relative(_lengths, rounds, yappi, threads, reference)
    passes = 7
    yappi.clear_stats()
    try:
        mark = len(reference.seen)
        wall = _per_call(_extra(yappi, _timed(_lengths, rounds), passes, threads, reference), rounds, factor)
        timed_unit = reference.since(mark)  # of the passes whose stats these are
        timed = [stat for stat in yappi.get_func_stats() if stat.builtin and stat.name == "len"]
        yappi.clear_stats()
        method = _per_call(_extra(yappi, _timed(_counts, rounds), threads=threads, reference=reference),
                           rounds, factor)
    finally:
        yappi.clear_stats()
    own = max(0.0, (with_calls - loop_only) / rounds)  # a bare len() call: C code, not slowed
    callee = max(0.0, timed[0].tsub / timed_unit / (rounds * passes) - own) if timed else 0.0
    return wall, callee, method


def _object_costs(yappi: Any, factor: float, threads: bool, reference: Reference,
                  rounds: int = 10_000) -> tuple[float, float, float]:
    """yappi's wall cost per method call, per constructor call (``__init__``, called from C by the
    class) and per call of a recursive method, the bytecode factor taken out, in `reference`'s
    units.

    Each is timed on its own loop: what a call costs under yappi depends on its kind, and a
    constructor's cost is not a method's."""
    depth = 50
    chain = _Link(None)
    for _ in range(depth - 1):
        chain = _Link(chain)

    def methods(count: int) -> None:
        point = _Point(1, 2)
        for _ in range(count):
            point.norm()

    def constructors(count: int) -> None:
        for index in range(count):
            _Point(index, 2)

    def walks(count: int) -> None:
        for _ in range(count // depth):
            chain.length()

    try:
        method, init, walk = (_per_call(_extra(yappi, _timed(work, rounds), threads=threads, reference=reference),
                                        rounds, factor)
                              for work in (methods, constructors, walks))
    finally:
        yappi.clear_stats()
    return method, init, walk


def _recursive_cost(yappi: Any, factor: float, threads: bool, reference: Reference, depth: int = 18) -> float:
    """yappi's wall cost per call of a recursive function (a small Fibonacci), in
    `reference`'s units."""
    calls = 2 * _fib(depth + 1) - 1  # calls made by _fib(depth)
    try:
        return _per_call(_extra(yappi, _timed(_fib, depth), threads=threads, reference=reference), calls, factor)
    finally:
        yappi.clear_stats()


def use_c_context_callbacks(yappi: Any, greenlets: bool) -> bool:
    """Give yappi the context callbacks of _yappi_context.c in place of its own Python ones
    (after ``set_context_backend``, which installs those): the same ids and names, but no
    bytecode inside yappi's profile callback, where a GIL hand-over let another thread clear
    yappi's tables under it (a deep capture's calibration in a server's control thread: a
    segfault). False where the C module was not built: yappi's own stay."""
    try:
        from . import _yappi_context  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # pragma: no cover - depends on the build
        return False
    counter = getattr(yappi, "GREENLET_COUNTER", None)
    if greenlets:
        from greenlet import getcurrent
    else:
        getcurrent = threading.get_ident  # unused by the thread-name callback
    if counter is None:
        return False
    _yappi_context.configure(getcurrent, counter, threading, getattr(yappi, "get_ident", threading.get_ident))
    if greenlets:
        yappi.set_context_id_callback(_yappi_context.greenlet_id)
        yappi.set_context_name_callback(_yappi_context.greenlet_name)
    else:
        yappi.set_context_name_callback(_yappi_context.thread_name)
    return True


def _plain(stats: Any) -> list[DeepFunction]:
    return [DeepFunction(stat.module, stat.name, stat.lineno, stat.ncall, stat.tsub, stat.ttot, stat.ctx_id,
                         stat.tag, [(child.module, child.name, child.lineno, child.ncall, child.tsub, child.ttot)
                                    for child in stat.children], bool(stat.builtin))
            for stat in stats]


class DeepProbe:
    """Starts yappi for the run and hands over its stats as plain data."""

    name = "deep"

    def __init__(self, greenlets: bool = False, live_tasks: Callable[[], int] | None = None,
                 clock: Callable[[], float] = time.perf_counter, ignored: Collection[int] = ()) -> None:
        self.greenlets = greenlets
        self.ignored = ignored  # advisor's own threads (the capture's live set)
        self._live_tasks = live_tasks
        self._clock = clock
        self._yappi: Any = None
        self.cost = CallCost()
        self.paused_s = 0.0
        self._paused_at: float | None = None
        self.failed: str | None = None
        self.tagging = False  # asyncio tasks are told apart by yappi's tag callback (tag_tasks)
        self.speed = SpeedSamples()
        self._profiling = False  # between start and stop: a speed sample is taken only then
        self._sample_asked = False  # one pending at a time (the main thread may be blocked)
        self._next_sample = 0.0

    def prepare(self) -> None:
        """Configure yappi and measure its per-call cost (before the other probes start, so
        that the sampler does not disturb the measurement)."""
        import yappi

        self._yappi = yappi
        if yappi.is_running():
            raise RuntimeError("yappi is already running in this process")
        # calibrate with everything set as the run starts. The tag callback costs every call
        # (~8% of a call-heavy program): it is set only once the program creates an asyncio
        # task (tag_tasks), and never for a gevent program, whose units are yappi's contexts
        if _STALE[0]:  # the last capture's tables, freed now that nothing runs under yappi
            with collections_held():
                yappi.clear_stats()
            _STALE[0] = False
        yappi.set_clock_type("wall")
        yappi.set_context_backend("greenlet" if self.greenlets else "native_thread")
        use_c_context_callbacks(yappi, self.greenlets)
        yappi.set_tag_callback(None)
        self.cost = _calibrate(yappi, ignored=self.ignored)

    def tag_tasks(self) -> None:
        """The program created its first asyncio task: from now on yappi asks each call's
        task tag (a ``ContextVar``'s C-level ``get``: no Python frame per call). Calls made
        before carry tag 0, the tag of code outside any task."""
        if self._yappi is not None and not self.greenlets and not self.tagging:
            self._yappi.set_tag_callback(UNIT_TAG.get)
            self.tagging = True

    def start(self) -> None:
        if self._yappi is None:
            self.prepare()
        self.speed = SpeedSamples()
        self._yappi.start(builtins=True, profile_threads=True)
        self._profiling = True

    def stop(self) -> None:
        self._profiling = False
        yappi = self._yappi
        if yappi is not None and yappi.is_running():
            with collections_held():
                yappi.stop()
                # a thread that was inside yappi's callback, cut there by a finalizer begun
                # before the hold, finishes it now, before drain's calibration clears the
                # tables it is using (a server's threads run on while a capture stops)
                time.sleep(SETTLE_S)
        if self._paused_at is not None:
            self.paused_s += self._clock() - self._paused_at
            self._paused_at = None

    def watch(self, now: float) -> None:
        """Sampler listener: ask the main thread for a speed sample now and then, and pause
        the profile while too many tasks are alive."""
        if self._yappi is None:
            return
        if now >= self._next_sample and not self._sample_asked and self._profiling and self._paused_at is None:
            self._next_sample = now + SPEED_EVERY_S
            # marked before asking: the main thread may take the GIL and run the sample
            # before call_on_main's answer is stored, and a mark stored after it would stay
            self._sample_asked = True
            if not call_on_main(self._sample_speed):
                self._sample_asked = False
        if self._live_tasks is None:
            return
        live = self._live_tasks()
        if self._paused_at is None and live > MAX_LIVE_TASKS:
            self._yappi.stop()
            self._paused_at = now
        elif self._paused_at is not None and live < RESUME_BELOW:
            self.paused_s += now - self._paused_at
            self._paused_at = None
            self._yappi.start(builtins=True, profile_threads=True)

    def _sample_speed(self) -> None:
        """In the main thread, between two of the program's instructions: time the reference
        under yappi (its calls are advisor's, spliced out of the program's stats and their
        cost taken out with the rest)."""
        self._sample_asked = False
        if self._profiling and self._paused_at is None:
            self.speed.add(reference_time())

    def run_cost(self, calibrated: CallCost) -> tuple[CallCost, float]:
        """The calibrated costs at the speed the program's main thread ran at, and the scale
        applied (1.0 with fewer than MIN_SPEED_SAMPLES samples, or no reference measured)."""
        if self.speed.count < MIN_SPEED_SAMPLES or not calibrated.reference_s > 0.0:
            return calibrated, 1.0
        return calibrated.at_speed(self.speed.typical), self.speed.typical / calibrated.reference_s

    def save(self, path: str, kind: str) -> None:
        """Write the whole profile in a peer tool's format: ``pstat`` or ``callgrind``."""
        self._yappi.get_func_stats().save(path, type=kind)

    def drain(self, tags: Iterable[int] = (), contexts: Mapping[int, int] | None = None) -> DeepProfile:
        """The stats: merged, per asyncio tag in `tags`, and per context (every thread, and
        the greenlet contexts in `contexts`, each with its thread's ident), at most
        MAX_QUERIES filtered queries."""
        yappi = self._yappi
        threads: dict[int, int] = {}
        if yappi is None:
            return DeepProfile([], {}, {}, self.cost, threads, self.paused_s, "wall", "none")
        if not self.greenlets:
            threads = {ctx.id: int(ctx.tid) for ctx in yappi.get_thread_stats()}
        else:  # a thread's functions are its greenlets'
            threads = dict(contexts or {})
        wanted_contexts = list(threads)
        by_tag = {tag: _plain(yappi.get_func_stats(filter={"tag": tag}))
                  for tag in list(dict.fromkeys(tags))[:MAX_QUERIES]}
        by_context = {ctx: _plain(yappi.get_func_stats(filter={"ctx_id": ctx}))
                      for ctx in list(dict.fromkeys(wanted_contexts))[:MAX_QUERIES]}
        functions = _plain(yappi.get_func_stats())
        # the stats are plain data now: measure yappi's cost again (it clears them) and take
        # the mean with the start-up's. On a shared machine the cost per call drifts with the
        # load (seen: 3-5% between the start and the end of a 3 s run), and in a call-heavy
        # program the correction is several times what is left, so each % counts several times
        end = CallCost()  # where it is not measured, the start-up's measure stays
        if not others_run(self.ignored):  # else a thread may still be inside yappi's callback: see clear
            try:
                end = _calibrate(yappi, ignored=self.ignored)
            except Exception:
                pass
        # with the tag callback on, each call cost more than the start-up (without it) saw:
        # the end's measure (with it) alone, then; most of such a run's calls come after its
        # first task (asyncio.run starts one at once)
        calibrated = end if self.tagging and end.wall_s > 0.0 else self.cost.combined(end)
        self.cost, scale = self.run_cost(calibrated)
        return DeepProfile(functions, by_tag, by_context, self.cost, threads,
                           self.paused_s, "wall", "greenlet" if self.greenlets else "native_thread",
                           self.speed.count, scale)

    def clear(self) -> None:
        """Free yappi's tables; where other threads run (a server), at the next capture's
        start instead: a thread cut by a finalizer inside yappi's callback before the stop
        may come back to them well after it (a collection that runs many finalizers)."""
        if self._yappi is None:
            return
        if others_run(self.ignored):
            _STALE[0] = True
            return
        with collections_held():
            self._yappi.clear_stats()
        _STALE[0] = False
