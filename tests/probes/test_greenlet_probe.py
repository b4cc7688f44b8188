"""GreenletProbe on real greenlets: why a parked greenlet switched out, and trace chaining.

``classify_switch`` is given the frame of a real gevent greenlet parked in ``gevent.sleep``,
a gevent socket ``recv`` or an ``Event.wait``. The chaining tests install a recording
greenlet trace function first and check that it sees exactly the events it sees without
the probe, and that ``stop()`` puts it back.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import gevent
import greenlet
import pytest
from gevent import socket as gsocket
from gevent.event import Event
from gevent.queue import Queue

from advisor.probes.greenlet_probe import GreenletProbe, greenlet_target
from advisor.probes.task_ledger import IO, TIMER, WAITING


def parked(function: Callable[..., Any], *args: Any) -> gevent.Greenlet:
    """A gevent greenlet that has run until it switched to the hub."""
    glet = gevent.spawn(function, *args)
    gevent.sleep(0)  # the hub runs it until it parks
    assert not glet.dead and glet.gr_frame is not None
    return glet


def site_functions(site: Any) -> list[str]:
    frames, _callee = site
    return [code.co_name for code, _line in frames]


# -- classify_switch ---------------------------------------------------------------------------

def nap(seconds: float) -> None:
    gevent.sleep(seconds)


def test_parked_in_gevent_sleep_is_a_timer_due_after_its_seconds() -> None:
    glet = parked(nap, 5.0)
    try:
        now = time.perf_counter()
        kind, due, site = GreenletProbe().classify_switch(glet.gr_frame, now)
        assert kind == TIMER
        assert due == pytest.approx(now + 5.0, abs=1e-6)
        assert site is not None and "nap" in site_functions(site)
    finally:
        glet.kill()


def read_one(conn: gsocket.socket) -> bytes:
    return conn.recv(1)


def test_parked_on_a_gevent_socket_recv_is_io() -> None:
    left, right = gsocket.socketpair()
    try:
        glet = parked(read_one, left)
        kind, due, site = GreenletProbe().classify_switch(glet.gr_frame, time.perf_counter())
        assert kind == IO
        assert due == 0.0
        assert site is not None and "read_one" in site_functions(site)
        right.sendall(b"x")
        assert glet.get(timeout=2) == b"x"
    finally:
        left.close()
        right.close()


def wait_for(event: Event) -> bool:
    return event.wait()


def test_parked_in_event_wait_is_waiting() -> None:
    event = Event()
    glet = parked(wait_for, event)
    try:
        kind, due, site = GreenletProbe().classify_switch(glet.gr_frame, time.perf_counter())
        assert kind == WAITING
        assert due == 0.0
        assert site is not None and "wait_for" in site_functions(site)
    finally:
        event.set()
        assert glet.get(timeout=2) is True


def take(queue: Queue) -> Any:
    return queue.get()


def test_parked_in_queue_get_is_waiting() -> None:
    queue: Queue = Queue()
    glet = parked(take, queue)
    try:
        kind, _due, _site = GreenletProbe().classify_switch(glet.gr_frame, time.perf_counter())
        assert kind == WAITING
    finally:
        queue.put(7)
        assert glet.get(timeout=2) == 7


def test_no_frame_is_waiting_with_no_site() -> None:
    assert GreenletProbe().classify_switch(None, 1.0) == (WAITING, 0.0, None)


def test_target_of_a_gevent_greenlet_is_its_function() -> None:
    glet = gevent.spawn(nap, 0)
    try:
        target, file, line = greenlet_target(glet)
        assert target == f"{nap.__module__}.nap"
        assert file == __file__
        assert line == nap.__code__.co_firstlineno
    finally:
        glet.join(timeout=1)


# -- trace chaining ------------------------------------------------------------------------------

def switch_dance() -> list[str]:
    """Two raw greenlets and the main one switching back and forth; returns what ran."""
    ran: list[str] = []
    main = greenlet.getcurrent()

    def ping() -> None:
        ran.append("ping-1")
        main.switch()
        ran.append("ping-2")

    def pong() -> None:
        ran.append("pong-1")
        first.switch()
        ran.append("pong-2")

    first = greenlet.greenlet(ping)
    second = greenlet.greenlet(pong)
    first.switch()
    second.switch()  # pong -> ping (ends, back to main, its parent)
    second.switch()
    return ran


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []
        self.names: dict[int, str] = {}

    def __call__(self, event: str, args: Any) -> None:
        origin, target = args
        self.events.append((event, self._name(origin), self._name(target)))

    def _name(self, glet: Any) -> int:
        # ids are reused between runs: number greenlets by first appearance instead
        return self.names.setdefault(id(glet), len(self.names))  # type: ignore[return-value]


def recorded_dance(with_probe: bool) -> tuple[list[tuple[str, int, int]], list[str]]:
    recorder = Recorder()
    greenlet.settrace(recorder)
    probe = GreenletProbe()
    if with_probe:
        probe.start()
    try:
        ran = switch_dance()
    finally:
        if with_probe:
            probe.stop()
        greenlet.settrace(None)
    return recorder.events, ran


def test_a_previous_trace_function_gets_every_event() -> None:
    bare_events, bare_ran = recorded_dance(with_probe=False)
    events, ran = recorded_dance(with_probe=True)
    assert ran == bare_ran == ["ping-1", "pong-1", "ping-2", "pong-2"]
    assert len(bare_events) >= 6
    assert events == bare_events


def test_the_probe_still_sees_the_switches_with_a_previous_trace() -> None:
    recorder = Recorder()
    greenlet.settrace(recorder)
    probe = GreenletProbe()
    probe.start()
    try:
        switch_dance()
    finally:
        probe.stop()
    assert probe.switches == len(recorder.events)
    assert probe.failed is None
    records = probe.drain()
    # ping and pong, each switched in twice (anonymous: they may share one folded entry)
    assert sum(record.count for record in records) == 2
    assert sum(record.steps for record in records) == 4


def test_stop_restores_the_previous_trace_function() -> None:
    def previous(event: str, args: Any) -> None:
        return None

    greenlet.settrace(previous)
    probe = GreenletProbe()
    probe.start()
    assert greenlet.gettrace() is not previous
    probe.stop()
    assert greenlet.gettrace() is previous


def test_after_stop_switches_are_no_longer_counted() -> None:
    probe = GreenletProbe()
    probe.start()
    switch_dance()
    probe.stop()
    seen = probe.switches
    switch_dance()
    assert probe.switches == seen
    assert probe.failed is None


def test_installing_twice_in_one_thread_does_not_chain_the_probe_to_itself() -> None:
    probe = GreenletProbe()
    probe.start()
    try:
        probe._install_here()  # what ThreadRegistry.on_thread_start does for a patched thread
        switch_dance()
        assert probe.failed is None
        assert probe.switches > 0
    finally:
        probe.stop()


def test_previous_trace_still_gets_events_after_get_ident_is_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    greenlet.settrace(recorder)
    probe = GreenletProbe()
    probe.start()
    try:
        # what gevent.monkey.patch_thread() does to the threading module
        monkeypatch.setattr(threading, "get_ident", lambda: id(greenlet.getcurrent()))
        switch_dance()
    finally:
        monkeypatch.undo()
        probe.stop()
    assert probe.switches >= 6
    assert len(recorder.events) == probe.switches


# -- the greenlet's target -------------------------------------------------------------------------

def raw_job() -> int:
    return 5


def test_a_raw_greenlet_is_tracked_under_its_run_function() -> None:
    probe = GreenletProbe()
    probe.start()
    try:
        assert greenlet.greenlet(raw_job).switch() == 5
    finally:
        probe.stop()
    records = probe.drain()
    assert [record.target for record in records] == [f"{raw_job.__module__}.raw_job"]


def test_a_program_profile_function_is_neither_displaced_nor_fed_by_the_target_catch() -> None:
    """The one-shot catch of a raw greenlet's run function stays out when the program profiles."""
    events: list[str] = []

    def program_profiler(frame: Any, event: str, arg: Any) -> None:
        events.append(event)

    probe = GreenletProbe()
    probe.start()
    sys.setprofile(program_profiler)
    try:
        assert greenlet.greenlet(raw_job).switch() == 5
        assert sys.getprofile() is program_profiler
    finally:
        sys.setprofile(None)
        probe.stop()
    assert "call" in events
    records = probe.drain()
    assert len(records) == 1 and records[0].target == "greenlet"  # unknown, but the program's profiler won


def test_the_catch_leaves_no_profile_function_behind() -> None:
    probe = GreenletProbe()
    probe.start()
    try:
        for _ in range(3):
            assert greenlet.greenlet(raw_job).switch() == 5
        assert sys.getprofile() is None
    finally:
        probe.stop()
    assert {record.target for record in probe.drain()} == {f"{raw_job.__module__}.raw_job"}
