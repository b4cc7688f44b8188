"""The greenlet probe's C switch hook (``probes/_switch_hook.c``, when it was built) keeps
exactly the books the Python hook keeps: the same gevent program, traced once by each with
the same made-up clock, gives the same records, field by field."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import gevent
import greenlet
import pytest
from gevent import socket as gsocket
from gevent.event import Event
from gevent.queue import Queue

from advisor.probes import greenlet_probe
from advisor.probes.greenlet_probe import GreenletProbe
from advisor.probes.sampler import Sampler
from advisor.probes.threads import ThreadRegistry

needs_c_hook = pytest.mark.skipif(greenlet_probe.SwitchHook is None, reason="the C switch hook was not built")


@pytest.fixture(autouse=True)
def greenlet_trace_restored() -> Iterator[None]:
    before = greenlet.gettrace()
    try:
        yield
    finally:
        greenlet.settrace(before)


def workload() -> None:
    """Timers, socket I/O, events, queues, a raw greenlet, greenlets that end and one killed."""
    left, right = gsocket.socketpair()
    event = Event()
    queue: Queue = Queue()

    def sleeper(seconds: float) -> None:
        for _ in range(3):
            gevent.sleep(seconds)

    def reader() -> None:
        for _ in range(5):
            right.sendall(right.recv(1))

    def writer() -> None:
        for _ in range(5):
            left.sendall(b"x")
            gevent.sleep(0)

    def waiter() -> None:
        event.wait()
        queue.get()

    def raw() -> int:
        gevent.sleep(0)
        return 1

    def nested(depth: int) -> None:
        if depth:
            return nested(depth - 1)
        gevent.sleep(0.0005)
        return None

    try:
        glets = [gevent.spawn(sleeper, 0.001), gevent.spawn(sleeper, 0), gevent.spawn(reader), gevent.spawn(writer),
                 gevent.spawn(waiter), gevent.spawn(nested, 6)]
        forever = gevent.spawn(gevent.sleep, 60)
        gevent.sleep(0.002)
        event.set()
        queue.put(1)
        greenlet.greenlet(raw).switch()
        gevent.joinall(glets, timeout=5)
        forever.kill()
        for _ in range(5):
            left.recv(1)
    finally:
        left.close()
        right.close()


def books(c_hook: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[Any, ...]], int, bool]:
    if not c_hook:
        monkeypatch.setattr(greenlet_probe, "SwitchHook", None)
    ticks = itertools.count()
    threads = ThreadRegistry()
    probe = GreenletProbe(Sampler(threads), threads, clock=lambda: next(ticks) * 1e-5)
    probe.start()
    used = probe._hook is not None and greenlet.gettrace() is probe._hook
    try:
        workload()
    finally:
        probe.stop()
        monkeypatch.undo()
    assert probe.failed is None
    records = []
    for record in probe.drain():
        waits = {site: [value for index, value in enumerate(numbers) if index != 6]  # 6: the callee's id
                 for site, numbers in (record.waits or {}).items()}
        records.append((record.target, record.name, record.count, record.steps, record.running_s, record.io_s,
                        record.waiting_s, record.scheduling_s, record.lock_s, record.longest_step_s, record.created,
                        record.first_run, record.ended, record.wall_s, sorted(waits.items(), key=repr)))
    return sorted(records, key=repr), probe.switches, used


@needs_c_hook
def test_the_c_hook_keeps_the_books_of_the_python_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    python, python_switches, python_used = books(False, monkeypatch)
    c, c_switches, c_used = books(True, monkeypatch)
    assert c_used and not python_used
    assert c_switches == python_switches > 20
    assert c == python


@needs_c_hook
def test_a_replaced_python_hook_is_not_bypassed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = GreenletProbe._switch

    def counting(self: GreenletProbe, origin: Any, target: Any, now: float) -> None:
        calls.append(now)
        original(self, origin, target, now)

    monkeypatch.setattr(GreenletProbe, "_switch", counting)
    threads = ThreadRegistry()
    probe = GreenletProbe(Sampler(threads), threads)
    probe.start()
    try:
        gevent.joinall([gevent.spawn(gevent.sleep, 0) for _ in range(3)])
    finally:
        probe.stop()
    assert probe._hook is None
    assert len(calls) == probe.switches > 0


@needs_c_hook
def test_an_error_in_the_c_hook_disables_the_probe_and_the_program_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    threads = ThreadRegistry()
    probe = GreenletProbe(Sampler(threads), threads)

    def broken(*args: Any) -> None:
        raise RuntimeError("injected")

    probe.start()
    monkeypatch.setattr(probe, "_start_new", broken)  # the C hook calls it for a new greenlet
    try:
        assert gevent.spawn(lambda: 7).get(timeout=2) == 7
    finally:
        probe.stop()
    assert probe.failed == "RuntimeError: injected"
