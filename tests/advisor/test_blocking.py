"""classify_stack on real stacks: helper threads really blocked, read with sys._current_frames().

Each helper thread blocks in one way (a sleep, a socket read, an event, a queue) or spins
in plain Python; the stack the sampler would take of it must say io / waiting / unknown,
name the blocking call, and point at the helper's own line that made the call.
"""

from __future__ import annotations

import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType

import pytest

from advisor.blocking import Blocked, calls_on_line, classify_call_line, classify_stack, stdlib_module
from advisor.probes.sampler import capture_stack

Stack = tuple[tuple[CodeType, int], ...]


def line_of(function: Callable[..., object], text: str) -> int:
    """The line number of the (single) line of `function` holding `text`."""
    import inspect

    lines, first = inspect.getsourcelines(function)
    found = [first + index for index, line in enumerate(lines) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


@contextmanager
def blocked_thread(target: Callable[[threading.Event], object], release: Callable[[], object],
                   where: Callable[[Stack], bool]) -> Iterator[Stack]:
    """Run `target` in a thread and yield its stack once `where(stack)` says it is there."""
    started = threading.Event()
    thread = threading.Thread(target=target, args=(started,), name="blocked-helper", daemon=True)
    thread.start()
    try:
        assert started.wait(5.0)
        deadline = time.monotonic() + 5.0
        while True:
            frame = sys._current_frames().get(thread.ident or 0)
            stack = capture_stack(frame) if frame is not None else ()
            if stack and where(stack):
                break
            assert time.monotonic() < deadline, f"helper never got there: {stack}"
            time.sleep(0.002)
        yield stack
    finally:
        release()
        thread.join(5.0)
        assert not thread.is_alive()


def leaf_is(function: Callable[..., object], text: str) -> Callable[[Stack], bool]:
    line = line_of(function, text)
    return lambda stack: stack[0] == (function.__code__, line)


def inside(module: str) -> Callable[[Stack], bool]:
    return lambda stack: stdlib_module(stack[0][0].co_filename) == module


# -- the helpers: each blocks (or spins) on one line of its own ----------------------------------

stop_sleeping = threading.Event()


def sleeper(started: threading.Event) -> None:
    started.set()
    while not stop_sleeping.is_set():
        time.sleep(0.05)


def reader(sock: socket.socket) -> Callable[[threading.Event], None]:
    def read(started: threading.Event) -> None:
        started.set()
        sock.recv(16)

    return read


def event_waiter(event: threading.Event) -> Callable[[threading.Event], None]:
    def wait(started: threading.Event) -> None:
        started.set()
        event.wait(10.0)

    return wait


def queue_getter(jobs: queue.Queue[int]) -> Callable[[threading.Event], None]:
    def get(started: threading.Event) -> None:
        started.set()
        jobs.get(timeout=10.0)

    return get


def spinner(stop: threading.Event) -> Callable[[threading.Event], None]:
    def spin(started: threading.Event) -> None:
        started.set()
        total = 0
        while not stop.is_set():
            total = (total + 3) * 7 % 1_000_003

    return spin


# -- the tests -------------------------------------------------------------------------------

def test_time_sleep_on_the_users_line_is_waiting() -> None:
    stop_sleeping.clear()
    with blocked_thread(sleeper, stop_sleeping.set, leaf_is(sleeper, "time.sleep(0.05)")) as stack:
        blocked = classify_stack(stack)
    assert blocked == Blocked("waiting", "time.sleep", (sleeper.__code__, line_of(sleeper, "time.sleep(0.05)")))


def test_socket_recv_on_a_socketpair_is_io() -> None:
    left, right = socket.socketpair()
    read = reader(left)
    try:
        with blocked_thread(read, lambda: right.send(b"x"), leaf_is(read, "sock.recv(16)")) as stack:
            blocked = classify_stack(stack)
    finally:
        left.close()
        right.close()
    assert blocked.state == "io"
    assert blocked.call == "sock.recv"
    assert blocked.site == (read.__code__, line_of(read, "sock.recv(16)"))


def test_event_wait_is_waiting_at_the_users_line() -> None:
    event = threading.Event()
    wait = event_waiter(event)
    with blocked_thread(wait, event.set, inside("threading")) as stack:
        blocked = classify_stack(stack)
    assert blocked.state == "waiting"
    # the innermost standard-library frame names the call: Condition.wait under Event.wait
    assert blocked.call in ("threading.Event.wait", "threading.Condition.wait")
    assert blocked.site == (wait.__code__, line_of(wait, "event.wait(10.0)"))


def test_queue_get_is_waiting_at_the_users_line() -> None:
    jobs: queue.Queue[int] = queue.Queue()
    get = queue_getter(jobs)
    with blocked_thread(get, lambda: jobs.put(1), inside("threading")) as stack:
        blocked = classify_stack(stack)
    assert blocked.state == "waiting"
    assert blocked.call in ("queue.Queue.get", "threading.Condition.wait")
    assert blocked.site == (get.__code__, line_of(get, "jobs.get(timeout=10.0)"))
    assert any(stdlib_module(code.co_filename) == "queue" for code, _ in stack)


def test_a_busy_loop_is_unknown_at_its_line() -> None:
    stop = threading.Event()
    spin = spinner(stop)
    loop_lines = {line_of(spin, "while not stop.is_set()"), line_of(spin, "total = (total + 3)")}
    with blocked_thread(spin, stop.set, lambda stack: stack[0][0] is spin.__code__) as stack:
        blocked = classify_stack(stack)
    assert blocked.state == "unknown"
    assert blocked.call == ""
    assert blocked.site is not None
    assert blocked.site[0] is spin.__code__
    assert blocked.site[1] in loop_lines


def test_the_site_is_the_first_user_frame_from_the_leaf() -> None:
    """Below the user's line there are only standard-library frames; above it, the thread's
    bootstrap (threading) and the test's callers must not be taken as the site."""
    event = threading.Event()
    wait = event_waiter(event)
    with blocked_thread(wait, event.set, inside("threading")) as stack:
        codes = [code for code, _ in stack]
        blocked = classify_stack(stack)
    assert codes.index(wait.__code__) > 0
    assert codes[-1].co_name == "_bootstrap"
    assert blocked.site is not None and blocked.site[0] is wait.__code__


@pytest.mark.parametrize(("source_line", "expected"), [
    ("time.sleep(0.2)", ("waiting", "time.sleep")),
    ("data = conn.recv(1024)", ("io", "conn.recv")),
    ("lock.acquire()", ("waiting", "lock.acquire")),
    ("fut.result(timeout=3)", ("waiting", "fut.result")),
    ("total = sum(values) * 2", None),
])
def test_classify_call_line_by_callee_name(tmp_path, source_line: str, expected: tuple[str, str] | None) -> None:
    path = tmp_path / "mod.py"
    path.write_text(f"def f():\n    {source_line}\n", encoding="utf-8")
    assert classify_call_line(str(path), 2) == expected
    assert calls_on_line(str(path), 1) == ()


def test_stdlib_module_names() -> None:
    assert stdlib_module(threading.__file__) == "threading"
    assert stdlib_module(queue.__file__) == "queue"
    assert stdlib_module(__file__) is None
