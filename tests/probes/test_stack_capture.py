"""The sampler reads every thread's stack as it was when the frames were taken.

A generator's (or coroutine's) frame loses its ``f_back`` as soon as it yields, so a stack
read after the sampling thread let the GIL go (a file read, a switch interval) came out as
that one frame: a generator expression under ``sum()`` lost all its callers in about half
of its samples, and the time spent in it was charged to no function of the program. The
C capture (``_stacks.c``) holds the GIL from taking the frames to the last ``f_back``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import CodeType, FrameType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.probes import sampler
from advisor.probes.records import UnitRecord, add_weights_in_python
from advisor.probes.sampler import MAX_DEPTH, capture_stack, capture_stacks_in_python
from advisor.probes.threads import ThreadInfo, read_clock, read_run_delay, thread_cpu_clock

try:
    from advisor.probes._stacks import capture_stacks as capture_in_c
    from advisor.probes._stacks import line_of
except ImportError:  # pragma: no cover - depends on the build
    capture_in_c = line_of = None

needs_c = pytest.mark.skipif(capture_in_c is None, reason="advisor.probes._stacks was not built (no compiler)")


@pytest.fixture
def fast_switches() -> Iterator[None]:
    """The switch interval the sampler sets while it samples one thread: 10 us."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(sampler.SAMPLING_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def parked_thread() -> tuple[threading.Thread, threading.Event, threading.Event, dict[str, CodeType]]:
    """A thread waiting inside outer() -> middle() -> inner(); and the three codes."""
    parked, release = threading.Event(), threading.Event()

    def inner() -> None:
        parked.set()
        release.wait(30)

    def middle() -> None:
        inner()

    def outer() -> None:
        middle()

    thread = threading.Thread(target=outer, name="parked", daemon=True)
    thread.start()
    assert parked.wait(10)
    time.sleep(0.01)  # into release.wait's lock
    return thread, parked, release, {"inner": inner.__code__, "middle": middle.__code__, "outer": outer.__code__}


def codes_of(stack: tuple[tuple[CodeType, int], ...]) -> list[CodeType]:
    return [code for code, _line in stack]


@pytest.mark.parametrize("capture", [pytest.param(capture_in_c, marks=needs_c, id="c"),
                                     pytest.param(capture_stacks_in_python, id="python")])
def test_a_parked_threads_stack_and_hook_frame(capture: Callable[..., dict[int, tuple]]) -> None:
    thread, _parked, release, codes = parked_thread()
    try:
        captured = capture({threading.get_ident()}, {codes["middle"]}, MAX_DEPTH)
        assert threading.get_ident() not in captured
        stack, hook, cpu, delay = captured[thread.ident]
        assert cpu is None and delay is None  # not a known thread: no counters
        found = codes_of(stack)
        # leaf first: threading's wait frames, then inner, middle, outer, then Thread.run's
        position = found.index(codes["inner"])
        assert found[position:position + 3] == [codes["inner"], codes["middle"], codes["outer"]]
        assert stack[position + 1][1] == codes["middle"].co_firstlineno + 1  # the line of the call
        assert isinstance(hook, FrameType) and hook.f_code is codes["middle"]
        # no hooks: no search
        assert capture(set(), None, MAX_DEPTH)[thread.ident][1] is None
    finally:
        release.set()
        thread.join(10)


@needs_c
def test_c_and_python_captures_agree(fast_switches: None) -> None:
    thread, _parked, release, codes = parked_thread()
    try:
        hooks = {codes["outer"]}
        in_c = capture_in_c(set(), hooks, MAX_DEPTH)[thread.ident]
        in_python = capture_stacks_in_python(set(), hooks, MAX_DEPTH)[thread.ident]
        assert in_c[0] == in_python[0]
        assert in_c[1] is in_python[1]
        assert in_c[2:] == in_python[2:] == (None, None)
        assert len(capture_in_c(set(), None, 2)[thread.ident][0]) == 2  # the depth bound
    finally:
        release.set()
        thread.join(10)


def all_codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from all_codes(constant)


@needs_c
def test_the_line_arrays_agree_with_the_python_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every instruction of every function of a few large modules: the C capture's line (from
    the code's line array, made once) is sampler.line_at's, including the instructions that
    have no line of their own (a loop's backward jump: the line before it)."""
    import ast
    import inspect
    import pydoc

    monkeypatch.setattr(sampler, "_LINE_AT", {})  # the reference decodes afresh
    checked = without_line = 0
    for module in (ast, inspect, pydoc, threading):
        source = Path(module.__file__ or "").read_text()
        for code in all_codes(compile(source, module.__file__ or "", "exec")):
            numbered = {start // 2 for start, _end, line in code.co_lines() if line is not None}
            for offset in range(0, len(code.co_code), 2):
                assert line_of(code, offset) == sampler.line_at(code, offset), (code, offset)
                checked += 1
                without_line += offset // 2 not in numbered
            assert line_of(code, -1) == code.co_firstlineno  # not started yet
            assert line_of(code, 0) == line_of(code, 0)  # the second read is the array's
    assert checked > 50_000 and without_line > 0, (checked, without_line)


@needs_c
def test_a_thread_parked_deep_in_a_long_function_has_its_lines(fast_switches: None) -> None:
    """A function of ~600 lines, blank lines and comments among them, with its thread parked at
    one wait after another: the capture's line is the wait's, in C as in Python."""
    body = []
    expected = {}
    for index in range(6):
        body += [f"    x{index} = n + {index}  # filler", "", "    # a comment"] * 30
        body.append(f"    waits[{index}].wait(30)")
        expected[index] = len(body) + 1  # the def is line 1
    source = "def long_function(n, waits):\n" + "\n".join(body) + "\n"
    namespace: dict[str, object] = {}
    exec(compile(source, "long_function.py", "exec"), namespace)
    function = namespace["long_function"]
    waits = [threading.Event() for _ in expected]
    thread = threading.Thread(target=function, args=(1, waits), daemon=True)  # type: ignore[arg-type]
    thread.start()
    try:
        for index, line in expected.items():
            time.sleep(0.05)  # into the wait
            for capture in (capture_in_c, capture_in_c, capture_stacks_in_python):
                stack = capture({threading.get_ident()}, None, MAX_DEPTH)[thread.ident][0]
                lines = [number for code, number in stack if code.co_name == "long_function"]
                assert lines == [line], (index, capture, lines)
            waits[index].set()
    finally:
        for wait in waits:
            wait.set()
        thread.join(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread CPU clocks and schedstat: Linux")
@pytest.mark.parametrize("capture", [pytest.param(capture_in_c, marks=needs_c, id="c"),
                                     pytest.param(capture_stacks_in_python, id="python")])
def test_a_known_threads_cpu_clock_and_run_queue_time_come_with_its_stack(
        capture: Callable[..., dict[int, tuple]]) -> None:
    """A thread that burns 0.2 s of CPU, known to the registry: the capture's CPU reading
    is its own clock's (between two readings taken around the capture), and its run-queue
    time is the kernel's (the second field of its schedstat, never below the reading before)."""
    done, release = threading.Event(), threading.Event()
    native: list[int] = []

    def burn() -> None:
        native.append(threading.get_native_id())
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            pass
        done.set()
        release.wait(30)

    thread = threading.Thread(target=burn, daemon=True)
    thread.start()
    assert done.wait(30)
    record = UnitRecord(1, "thread", "burn", __file__, 1, 0.0)
    clock = thread_cpu_clock(native[0])
    info = ThreadInfo(thread.ident, record, clock, 0.0, thread, native_id=native[0])
    try:
        before = (read_clock(clock), read_run_delay(info.schedstat))
        entry = capture(set(), None, MAX_DEPTH, {thread.ident: info})[thread.ident]
        after = (read_clock(clock), read_run_delay(info.schedstat))
        _stack, _hook, cpu, delay = entry
        assert before[0] is not None and after[0] is not None and 0.2 <= before[0] <= cpu <= after[0]
        assert before[1] is not None and after[1] is not None and before[1] <= delay <= after[1]
    finally:
        info.close()
        release.set()
        thread.join(10)
    # a thread that is gone: its clock reads fail, and so do the counters (None), not the capture.
    # join() returns when Python is done with the thread; the OS thread ends a moment later.
    gone_clock = thread_cpu_clock(native[0])
    deadline = time.monotonic() + 10.0
    while read_clock(gone_clock) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    gone = capture(set(), None, MAX_DEPTH, {threading.get_ident(): ThreadInfo(
        threading.get_ident(), record, gone_clock, 0.0, None)})[threading.get_ident()]
    assert gone[2] is None and gone[3] is None


@needs_c
def test_a_generator_expression_keeps_its_callers(fast_switches: None) -> None:
    """A thread summing generator expressions is read 300 times: every stack whose leaf is
    the generator expression goes down to the function that called sum()."""
    stop = threading.Event()

    def crunch() -> int:
        return sum(value * value for value in range(20_000))

    def worker() -> None:
        while not stop.is_set():
            crunch()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    leaves, cut = 0, 0
    try:
        for _ in range(300):
            stack = capture_in_c({threading.get_ident()}, None, MAX_DEPTH)[thread.ident][0]
            if stack and stack[0][0].co_name == "<genexpr>":
                leaves += 1
                cut += crunch.__code__ not in codes_of(stack)
            time.sleep(0.001)  # the worker runs meanwhile: its generator yields and resumes
    finally:
        stop.set()
        thread.join(10)
    assert leaves >= 30, leaves  # most of the worker's time is in the generator expression
    assert cut == 0, f"{cut} of {leaves} stacks lost their callers"


@needs_c
def test_a_profiled_generator_expression_is_charged_to_its_callers(
        tmp_path: Path, program: Callable[[Path, str], Path],
        run_advisor: Callable[..., object]) -> None:
    """End to end: the time in a generator expression is under the function that made it,
    and under the module, in every sample (before: ~40% of it was in a one-frame stack)."""
    program(tmp_path / "genexpr.py", """
        import time


        def crunch(rows):
            return sum(row * row for row in rows)


        def main():
            rows = list(range(50_000))
            started = time.perf_counter()
            while time.perf_counter() - started < 0.8:
                crunch(rows)


        main()
    """)
    done = run_advisor(["run", "--no-status", "--json", "report.json", "genexpr.py"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    samples = report["samples"]
    frames = samples["frames"]
    on_cpu = {"all": 0.0, "lone": 0.0}
    for stack in samples["stacks"]:
        names = [frames[index]["function"] for index in stack["frames"]]
        if any(name.endswith("<genexpr>") for name in names):
            on_cpu["all"] += stack["on_cpu_s"]
            if not any(name.endswith(".crunch") for name in names):
                on_cpu["lone"] += stack["on_cpu_s"]
    assert on_cpu["all"] > 0.3, on_cpu
    assert on_cpu["lone"] == 0.0, on_cpu
    functions = {function["function"]: function for function in report["functions"]}
    assert functions["genexpr.crunch"]["total_s"] >= 0.9 * functions["genexpr.main"]["total_s"] > 0.5


# -- stack tables: each code object hashed once ---------------------------------------------

try:
    from advisor.probes._stacks import add_hot as add_hot_in_c
    from advisor.probes._stacks import add_weights as add_weights_in_c
    from advisor.probes._stacks import stack_hash
except ImportError:  # pragma: no cover - depends on the build
    add_hot_in_c = add_weights_in_c = stack_hash = None

CODES = [code for module in (threading, json.decoder) for code in
         all_codes(compile(Path(module.__file__ or "").read_text(), module.__file__ or "", "exec"))]
LINES = st.one_of(st.integers(min_value=-5, max_value=5_000), st.integers(min_value=-(2 ** 70), max_value=2 ** 70))
PAIRS = st.tuples(st.sampled_from(CODES), LINES)
ODD_ITEMS = st.one_of(st.tuples(st.text(max_size=3), LINES), st.integers(), st.tuples(st.sampled_from(CODES)),
                      st.tuples(st.sampled_from(CODES), LINES, LINES))
STACKS = st.lists(st.one_of(PAIRS, PAIRS, PAIRS, ODD_ITEMS), max_size=20).map(tuple)


@needs_c
@settings(max_examples=300, deadline=None)
@given(STACKS)
def test_a_stacks_hash_from_remembered_code_hashes_is_pythons(stack: tuple) -> None:
    """A module's code object (whose hash takes in every function of the module) among
    others, lines of any size, items that are not (code, line) pairs: the same value as
    hash(), at the first hash of each code and from its remembered one after."""
    assert stack_hash(stack) == hash(stack)
    assert stack_hash(stack) == hash(stack)


@needs_c
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(PAIRS, min_size=1, max_size=6).map(tuple),
                          st.lists(st.sampled_from([0.0, -0.0, 0.25, 1e-6, 3.5, -0.125]), min_size=3, max_size=4)),
                max_size=40))
def test_c_add_weights_keeps_the_table_python_keeps(adds: list[tuple[tuple, list[float]]]) -> None:
    """The same adds through the C function and records' Python one give the same table to the
    bit (-0.0 kept where Python keeps it); a float someone holds keeps its value."""
    in_c: dict = {}
    in_python: dict = {}
    held: list[tuple[float, str]] = []
    for stack, weights in adds:
        if stack in in_c:
            first = in_c[stack][0]
            held.append((first, first.hex()))
        add_weights_in_c(in_c, stack, *weights)
        add_weights_in_python(in_python, stack, *weights)
    assert list(in_c) == list(in_python)
    for stack, weights in in_python.items():
        assert [value.hex() for value in in_c[stack]] == [value.hex() for value in weights], stack
    assert all(value.hex() == text for value, text in held)


@needs_c
def test_c_add_weights_finds_the_stacks_python_put_in_the_table() -> None:
    stack = capture_stack(sys._getframe())
    table = {stack: [1.0, 2.0, 0.0, 0.0]}
    add_weights_in_c(table, tuple(stack), 0.5, 0.25, 0.0)
    assert table == {stack: [1.5, 2.25, 0.0, 0.0]}
    add_weights_in_c(table, (), 1.0, 0.0, 0.0, 0.5)
    assert table[()] == [1.0, 0.0, 0.0, 0.5]
    with pytest.raises(TypeError):
        add_weights_in_c([], stack, 1.0, 0.0, 0.0)


@needs_c
def test_a_hook_is_found_by_equality_as_python_finds_it() -> None:
    """The C capture looks for the hooks in a set by each code's remembered hash: a code object
    equal to the running one but not the same object is found as `in` finds it; a set of
    other codes finds nothing."""
    thread, _parked, release, codes = parked_thread()
    try:
        twin = codes["middle"].replace()
        assert twin is not codes["middle"] and twin == codes["middle"]
        for hooks in ({twin}, frozenset({twin, codes["inner"].replace(co_name="other")})):
            in_c = capture_in_c(set(), hooks, MAX_DEPTH)[thread.ident][1]
            in_python = capture_stacks_in_python(set(), hooks, MAX_DEPTH)[thread.ident][1]
            assert in_c is in_python and in_c is not None and in_c.f_code is codes["middle"]
        assert capture_in_c(set(), {codes["inner"].replace(co_name="other")}, MAX_DEPTH)[thread.ident][1] is None
    finally:
        release.set()
        thread.join(10)


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.sampled_from(CODES[:4]), LINES), max_size=8).map(tuple),
                          st.sampled_from([0.001, 0.5, 2.0])), max_size=30))
def test_c_add_hot_charges_each_code_of_a_stack_once(samples: list[tuple[tuple, float]]) -> None:
    """Stacks with a code object more than once (recursion): each code is charged once a
    sample, with the same totals, in the same order, as the Python version."""
    in_c: dict = {}
    in_python: dict = {}
    for stack, seconds in samples:
        add_hot_in_c(in_c, stack, seconds)
        sampler.add_hot_in_python(in_python, stack, seconds)
    assert list(in_c.items()) == list(in_python.items())
    for code, total in in_python.items():
        assert total == pytest.approx(sum(seconds for stack, seconds in samples
                                          if any(pair[0] is code for pair in stack)), rel=1e-12)
