"""gevent programs under ``advisor run``: per-greenlet compute, I/O, waiting, scheduling and blocking.

Each program's ground truth is what it was written to do: three greenlets sleeping 4 x
0.1 s, a server that answers after 0.1 s, an event set after 0.2 s. Unpatched
``time.sleep`` holds the hub (blocking, and the others' scheduling); patched, it is a
gevent timer (waiting, nothing blocked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Near = Callable[[float, float, float, str], None]
AddsUp = Callable[[dict[str, Any]], None]
Profiled = Any  # conftest.Profiled: report, source, returncode, stdout, stderr, unit(), ...
ProfileOnce = Callable[..., Profiled]

WORKERS = """
    {patch}import time

    import gevent


    def work(n):
        total = 0
        for _ in range(4):
            for i in range(20_000):
                total += i * n
            time.sleep(0.1)
        return total


    glets = [gevent.spawn(work, n) for n in range(3)]
    for n, glet in enumerate(glets):
        glet.name = f"worker-{{n}}"
    gevent.joinall(glets)
    print("done", sum(glet.value for glet in glets))
"""
UNPATCHED = WORKERS.format(patch="")
PATCHED = WORKERS.format(patch="from gevent import monkey\n\n    monkey.patch_all()\n\n    ")
SLEEP_LINE = "time.sleep(0.1)"


@pytest.fixture
def unpatched(profile_once: ProfileOnce) -> Profiled:
    return profile_once("unpatched", UNPATCHED)


@pytest.fixture
def patched(profile_once: ProfileOnce) -> Profiled:
    return profile_once("patched", PATCHED)


# -- (a) unpatched gevent: time.sleep holds the hub ----------------------------------------

def test_unpatched_sleep_is_waiting_and_blocking(unpatched: Profiled, near: Near, adds_up: AddsUp) -> None:
    assert unpatched.returncode == 0, unpatched.stderr[-3000:]
    assert unpatched.stdout.startswith("done ")
    for n in range(3):
        worker = unpatched.unit(f"worker-{n}")
        assert worker["kind"] == "greenlet"
        assert worker["count"] == 1
        assert worker["target"].endswith("work"), worker["target"]
        near(worker["breakdown"]["waiting_s"], 0.4, worker["wall_s"], f"worker-{n} waiting")
        near(worker["blocking_s"], 0.4, worker["wall_s"], f"worker-{n} blocking")
        near(worker["breakdown"]["io_s"], 0.0, worker["wall_s"], f"worker-{n} io")
        adds_up(worker)


def test_unpatched_later_greenlets_wait_for_the_hub(unpatched: Profiled, near: Near) -> None:
    """Each worker runs only once the previous ones finished: 0, 0.4 and 0.8 s of scheduling."""
    for n, expected in enumerate((0.0, 0.4, 0.8)):
        worker = unpatched.unit(f"worker-{n}")
        near(worker["breakdown"]["scheduling_s"], expected, worker["wall_s"], f"worker-{n} scheduling")
        near(worker["wall_s"], 0.4 * (n + 1), worker["wall_s"], f"worker-{n} wall")


def test_unpatched_sleep_is_a_blocking_sleep_finding_at_the_call(unpatched: Profiled) -> None:
    line = unpatched.line_of(SLEEP_LINE)
    found = unpatched.findings("blocking-sleep")
    assert found, [f["rule"] for f in unpatched.report["findings"]]
    at_line = [f for f in found if f["location"]["file"] == "prog.py" and f["location"]["line"] == line]
    assert at_line, f"blocking-sleep at {[f['location'] for f in found]}, expected prog.py:{line}"
    finding = at_line[0]
    assert finding["code"] == "ADV101"
    assert finding["severity"] == "high"
    assert "gevent.sleep(0.1)" in (finding["fix"] or "")
    assert finding["estimated_savings_s"] > 0.3


# -- (e) the hub is a unit of its own -------------------------------------------------------

def test_hub_is_a_greenlet_unit_that_never_blocks(unpatched: Profiled, patched: Profiled) -> None:
    for run in (unpatched, patched):
        hub = run.unit("Hub")
        assert hub["kind"] == "greenlet"
        assert hub["count"] == 1
        assert hub["blocking_s"] == 0.0
        assert hub["target"] == "gevent.hub.Hub.run"


def test_hub_breakdown_adds_up_to_its_wall(unpatched: Profiled, adds_up: AddsUp) -> None:
    adds_up(unpatched.unit("Hub"))


# -- (b) patched gevent: time.sleep is a gevent timer ----------------------------------------

def test_patched_sleep_is_no_blocking_sleep_finding(patched: Profiled) -> None:
    assert patched.returncode == 0, patched.stderr[-3000:]
    assert patched.stdout.startswith("done ")
    assert not patched.findings("blocking-sleep"), patched.findings("blocking-sleep")
    assert {f"worker-{n}" for n in range(3)} <= {unit["name"] for unit in patched.units("greenlet")}


def test_patched_sleep_is_waiting_without_blocking(patched: Profiled, near: Near, adds_up: AddsUp) -> None:
    for n in range(3):
        worker = patched.unit(f"worker-{n}")
        near(worker["breakdown"]["waiting_s"], 0.4, worker["wall_s"], f"worker-{n} waiting")
        near(worker["blocking_s"], 0.0, worker["wall_s"], f"worker-{n} blocking")
        near(worker["breakdown"]["scheduling_s"], 0.0, worker["wall_s"], f"worker-{n} scheduling")
        near(worker["wall_s"], 0.4, worker["wall_s"], f"worker-{n} wall")
        adds_up(worker)


# -- (c) gevent.sleep is waiting, gevent socket round trips are I/O -------------------------

SERVER = """
    import gevent
    from gevent import socket
    from gevent.server import StreamServer


    def handle(conn, address):
        while True:
            data = conn.recv(64)
            if not data:
                break
            gevent.sleep(0.1)
            conn.sendall(data)
        conn.close()


    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    port = server.server_port


    def client():
        conn = socket.create_connection(("127.0.0.1", port))
        for _ in range(3):
            conn.sendall(b"ping")
            assert conn.recv(64) == b"ping"
        conn.close()


    def sleeper():
        for _ in range(3):
            gevent.sleep(0.1)


    talker = gevent.spawn(client)
    talker.name = "client"
    napper = gevent.spawn(sleeper)
    napper.name = "sleeper"
    gevent.joinall([talker, napper], raise_error=True)
    server.stop()
    print("served")
"""


def test_socket_round_trips_are_io_and_sleeps_are_waiting(profile_once: ProfileOnce, near: Near,
                                                          adds_up: AddsUp) -> None:
    run = profile_once("server", SERVER)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "served"
    client = run.unit("client")
    near(client["breakdown"]["io_s"], 0.3, client["wall_s"], "client io")
    near(client["breakdown"]["waiting_s"], 0.0, client["wall_s"], "client waiting")
    near(client["blocking_s"], 0.0, client["wall_s"], "client blocking")
    sleeper = run.unit("sleeper")
    near(sleeper["breakdown"]["waiting_s"], 0.3, sleeper["wall_s"], "sleeper waiting")
    near(sleeper["breakdown"]["io_s"], 0.0, sleeper["wall_s"], "sleeper io")
    near(sleeper["blocking_s"], 0.0, sleeper["wall_s"], "sleeper blocking")
    for unit in (client, sleeper):
        adds_up(unit)
    assert not run.findings("blocking-io") and not run.findings("blocking-sleep"), run.report["findings"]


# -- (d) Event.wait and Queue.get are waiting ------------------------------------------------

EVENTS = """
    import gevent
    from gevent.event import Event
    from gevent.queue import Queue

    ready = Event()
    queue = Queue()


    def event_waiter():
        ready.wait()


    def queue_reader():
        return [queue.get() for _ in range(2)]


    def producer():
        gevent.sleep(0.2)
        ready.set()
        queue.put(1)
        gevent.sleep(0.1)
        queue.put(2)


    glets = [gevent.spawn(event_waiter), gevent.spawn(queue_reader), gevent.spawn(producer)]
    for glet, name in zip(glets, ("event-waiter", "queue-reader", "producer")):
        glet.name = name
    gevent.joinall(glets, raise_error=True)
    print(glets[1].value)
"""


def test_event_and_queue_waits_are_waiting(profile_once: ProfileOnce, near: Near, adds_up: AddsUp) -> None:
    run = profile_once("events", EVENTS)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "[1, 2]"
    for name, waited in (("event-waiter", 0.2), ("queue-reader", 0.3), ("producer", 0.3)):
        unit = run.unit(name)
        near(unit["breakdown"]["waiting_s"], waited, unit["wall_s"], f"{name} waiting")
        near(unit["breakdown"]["io_s"], 0.0, unit["wall_s"], f"{name} io")
        near(unit["blocking_s"], 0.0, unit["wall_s"], f"{name} blocking")
        near(unit["wall_s"], waited, unit["wall_s"], f"{name} wall")
        adds_up(unit)


# -- (g) many anonymous greenlets fold; raw greenlets are named by their run function -------

MANY = """
    import gevent
    import greenlet


    def tiny(i):
        return i * 2


    def raw_job():
        gevent.sleep(0.05)
        return 5


    glets = [gevent.spawn(tiny, i) for i in range(10_000)]
    gevent.joinall(glets)
    raw = greenlet.greenlet(raw_job)
    print(sum(glet.value for glet in glets), raw.switch(), raw.dead)
"""


def test_ten_thousand_anonymous_greenlets_fold_into_one_entry(profile_once: ProfileOnce) -> None:
    run = profile_once("many", MANY)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == [str(2 * sum(range(10_000))), "5", "True"]
    folded = [unit for unit in run.units("greenlet") if unit["target"] == "__main__.tiny"]
    assert len(folded) == 1, [(u["name"], u["target"], u["count"]) for u in run.units("greenlet")]
    entry = folded[0]
    assert entry["count"] == 10_000
    assert entry["file"] == "prog.py"
    assert entry["line"] == run.line_of("def tiny(i):")
    # the folded time fields are sums: the breakdown still adds up to the summed wall
    assert abs(sum(entry["breakdown"].values()) - entry["wall_s"]) <= 0.05 * entry["wall_s"]


def test_raw_greenlet_is_named_by_its_run_function(profile_once: ProfileOnce, near: Near) -> None:
    run = profile_once("many", MANY)
    raw = [unit for unit in run.units("greenlet") if unit["target"] == "__main__.raw_job"]
    assert len(raw) == 1, [(u["name"], u["target"], u["count"]) for u in run.units("greenlet")]
    assert raw[0]["count"] == 1
    near(raw[0]["breakdown"]["waiting_s"], 0.05, raw[0]["wall_s"], "raw_job waiting")


def test_raw_greenlet_is_a_unit_with_its_sleep_as_waiting(profile_once: ProfileOnce, near: Near) -> None:
    run = profile_once("many", MANY)
    others = [unit for unit in run.units("greenlet") if unit["target"] != "__main__.tiny" and unit["name"] != "Hub"]
    assert len(others) == 1, [(u["name"], u["target"], u["count"]) for u in run.units("greenlet")]
    near(others[0]["breakdown"]["waiting_s"], 0.05, others[0]["wall_s"], "raw greenlet waiting")
