"""The greenlet probe's C switch hook (``probes/_switch_hook.c``, when it was built) keeps
exactly the books the Python hook keeps, the ledger's bookkeeping (TaskLedger.step_started
and step_ended, split_gap, note_wait) included, which the C hook does itself on plain
records. Two probes trace the same gevent program in lockstep, one through the C hook and
one through the Python hook, with one made-up clock that ticks once per switch: every
switch is seen alike by both (however the hub schedules this run), and both must end with
the same records, field by field."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from typing import Any

import gevent
import greenlet
import pytest
from gevent import socket as gsocket
from gevent.event import AsyncResult, Event
from gevent.lock import BoundedSemaphore, RLock, Semaphore
from gevent.monkey import get_original
from gevent.pool import Group, Pool
from gevent.queue import JoinableQueue, Queue
from gevent.server import StreamServer

from advisor.probes import greenlet_probe
from advisor.probes.greenlet_probe import GreenletProbe
from advisor.probes.records import UnitRecord
from advisor.probes.sampler import Sampler
from advisor.probes.task_ledger import IO, LOCK, READY, TIMER, WAITING, TaskLedger
from advisor.probes.threads import ThreadRegistry

needs_c_hook = pytest.mark.skipif(greenlet_probe.SwitchHook is None, reason="the C switch hook was not built")

TIMEOUT_S = 5.0


# -- the programs ----------------------------------------------------------------------


def sleeps_and_socketpair() -> None:
    """Timers, socket I/O on a socketpair, events, queues, a raw greenlet, greenlets that end
    and one killed."""
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
        gevent.joinall(glets, timeout=TIMEOUT_S, raise_error=True)
        forever.kill()
        for _ in range(5):
            left.recv(1)
    finally:
        left.close()
        right.close()


def loopback_server() -> None:
    """A real TCP server on 127.0.0.1 and clients over keep-alive connections: connects,
    accepts, sends and receives are I/O waits at the program's own call sites."""

    def echo(connection: Any, _address: Any) -> None:
        connection.settimeout(TIMEOUT_S)
        while True:
            data = connection.recv(64)
            if not data:
                break
            gevent.sleep(0)
            connection.sendall(data.upper())

    server = StreamServer(("127.0.0.1", 0), echo)
    server.start()
    try:
        def client(index: int) -> bytes:
            replies = b""
            with gsocket.create_connection(("127.0.0.1", server.server_port), timeout=TIMEOUT_S) as connection:
                for round_ in range(4):
                    connection.sendall(b"ping-%d-%d;" % (index, round_))
                    replies += connection.recv(64)
                    gevent.sleep(0.0002 * index)
            return replies

        clients = [gevent.spawn(client, index) for index in range(4)]
        gevent.joinall(clients, timeout=TIMEOUT_S, raise_error=True)
        assert all(glet.value.startswith(b"PING-") for glet in clients)
    finally:
        server.stop(timeout=TIMEOUT_S)


def locks_queues_and_joins() -> None:
    """Locks and semaphores held across a wait, a joinable queue of workers, a pool, async
    results and joins of one greenlet, of many and of a group."""
    lock = Semaphore()
    rlock = RLock()
    bounded = BoundedSemaphore(2)
    jobs: JoinableQueue = JoinableQueue()
    result: AsyncResult = AsyncResult()
    done: list[int] = []

    def holder(seconds: float) -> None:
        with lock:
            gevent.sleep(seconds)
        with rlock, rlock:  # re-entered
            gevent.sleep(0)

    def limited(index: int) -> None:
        with bounded:
            gevent.sleep(0.0003 * (index % 3))

    def worker() -> None:
        while True:
            job = jobs.get()
            try:
                if job is None:
                    return
                gevent.sleep(0 if job % 2 else 0.0002)
                done.append(job)
            finally:
                jobs.task_done()

    def producer() -> None:
        for job in range(12):
            jobs.put(job)
            if job % 4 == 0:
                gevent.sleep(0)
        for _ in range(3):
            jobs.put(None)

    def consumer() -> Any:
        return result.get(timeout=TIMEOUT_S)

    holders = [gevent.spawn(holder, 0.0005 * index) for index in range(4)]
    group = Group()
    for index in range(6):
        group.spawn(limited, index)
    workers = [gevent.spawn(worker) for _ in range(3)]
    gevent.spawn(producer)
    waiting = gevent.spawn(consumer)
    pool = Pool(2)
    squares = pool.map(lambda n: (gevent.sleep(0), n * n)[1], range(5))
    result.set("ready")
    jobs.join()
    holders[0].join(timeout=TIMEOUT_S)
    gevent.joinall(holders + workers, timeout=TIMEOUT_S, raise_error=True)
    group.join(timeout=TIMEOUT_S, raise_error=True)
    assert waiting.get(timeout=TIMEOUT_S) == "ready"
    assert squares == [0, 1, 4, 9, 16]
    assert sorted(done) == list(range(12))


PROGRAMS = [sleeps_and_socketpair, loopback_server, locks_queues_and_joins]


# -- two probes in lockstep --------------------------------------------------------------

FIELDS = [name for name in UnitRecord.__slots__ if name not in ("samples", "tag_samples")]


def fields(record: UnitRecord) -> dict[str, Any]:
    """Every field of a record; an await site's numbers in full (the callee token too: both
    probes saw the same frames)."""
    values = {name: getattr(record, name) for name in FIELDS}
    values["waits"] = sorted((record.waits or {}).items(), key=repr)
    return values


def in_lockstep(program: Callable[[], None]) -> tuple[GreenletProbe, GreenletProbe, dict[str, int]]:
    """Run `program` traced by a C-hook probe and a Python-hook probe, both called on every
    switch with the same clock reading. Returns them and how often TaskLedger's step
    functions were called from within each probe's hook."""
    tick = itertools.count(1)
    now = [0.0]

    def clock() -> float:
        return now[0]

    calls = {"c": 0, "python": 0}
    inside = [""]
    started, ended = TaskLedger.step_started, TaskLedger.step_ended

    def counting_started(record: UnitRecord, t0: float) -> None:
        if inside[0]:
            calls[inside[0]] += 1
        started(record, t0)

    def counting_ended(*args: Any) -> None:
        if inside[0]:
            calls[inside[0]] += 1
        ended(*args)

    patch = pytest.MonkeyPatch()
    patch.setattr(TaskLedger, "step_started", staticmethod(counting_started))
    patch.setattr(TaskLedger, "step_ended", staticmethod(counting_ended))
    try:
        threads = ThreadRegistry()
        c_probe = GreenletProbe(Sampler(threads), threads, clock=clock)
        c_probe.start()  # nothing traced yet: the C hook
        hook = c_probe._hook
        assert hook is not None and greenlet.gettrace() is hook and hook.ledger_in_c
        patch.setattr(greenlet_probe, "SwitchHook", None)
        python_probe = GreenletProbe(Sampler(threads), threads, clock=clock)
        python_probe.start()  # chains the C hook: the Python hook
        assert python_probe._hook is None
        python_probe._chaining = False  # called by `both` below, after the C hook
        python_trace = python_probe._trace

        def both(event: str, args: Any) -> None:
            if event in ("switch", "throw"):
                now[0] = next(tick) * 1e-5
            inside[0] = "c"
            hook(event, args)
            inside[0] = "python"
            python_trace(event, args)
            inside[0] = ""

        greenlet.settrace(both)
        try:
            program()
        finally:
            greenlet.settrace(None)
            c_probe.stop()
            python_probe.stop()
    finally:
        patch.undo()
    assert c_probe.failed is None and python_probe.failed is None
    return c_probe, python_probe, calls


@needs_c_hook
@pytest.mark.parametrize("program", PROGRAMS, ids=[program.__name__ for program in PROGRAMS])
def test_the_c_hook_keeps_the_books_of_the_python_hook(program: Callable[[], None]) -> None:
    c_probe, python_probe, calls = in_lockstep(program)
    c_hook = c_probe._hook
    assert c_hook.switches == python_probe.switches > 20
    c_records = sorted(c_probe.drain(), key=lambda record: (record.uid, record.target))
    python_records = sorted(python_probe.drain(), key=lambda record: (record.uid, record.target))
    assert len(c_records) == len(python_records) > 2
    for c_record, python_record in zip(c_records, python_records, strict=True):
        assert fields(c_record) == fields(python_record), c_record.target
    # what the books add up to: the program waited, at its own sites
    units = [record for record in c_records if record.name != "Hub"]
    assert sum(record.steps for record in units) > 10
    assert sum(record.waiting_s + record.io_s for record in units) > 0.0
    assert any(record.waits for record in units)
    if program is loopback_server:
        assert sum(record.io_s for record in units) > 0.0
    # the ledger's steps were kept in C: TaskLedger's functions ran only on the rare paths
    # (a greenlet's first step and its end), never on a common switch
    assert calls["c"] <= 2 * sum(record.count for record in units)
    assert calls["c"] < calls["python"] / 2


# every Python function the C hook may call: the probe's methods for the rare paths, looked
# up on the probe at each call, and TaskLedger's step functions, taken when the hook is made
HOOK_CALLS_PROBE = ("_switch", "_close_slot", "_finished", "_first_step_ended", "classify_switch", "_sleep_due",
                    "_site_frames", "_start_new", "_disable")


@needs_c_hook
def test_a_common_switch_calls_no_python_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steady switching between known greenlets (sleep(0), an event, a queue, a lock) runs
    no Python function from the hook: as many calls for 20 rounds as for 200."""
    seen: list[str] = []

    def counting(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def count(*args: Any) -> Any:
            seen.append(name)
            return function(*args)
        return count

    for name in ("step_started", "step_ended"):
        monkeypatch.setattr(TaskLedger, name, staticmethod(counting(name, getattr(TaskLedger, name))))
    # a unit with a step longer than SUSPECT_STEP_S has the CPU clock read at each step and
    # ends them through _close_slot, by design: one step preempted past it on a loaded
    # machine (CI, once) made these greenlets suspect and put 484 calls in the count
    monkeypatch.setattr(greenlet_probe, "SUSPECT_STEP_S", 1e9)
    threads = ThreadRegistry()
    probe = GreenletProbe(Sampler(threads), threads)
    probe.start()
    assert probe._hook is not None and greenlet.gettrace() is probe._hook
    assert probe._hook.suspect_step_s == 1e9
    for name in HOOK_CALLS_PROBE:
        setattr(probe, name, counting(name, getattr(probe, name)))

    def calls_for(rounds: int) -> tuple[list[str], int]:
        gate = Event()
        queue: Queue = Queue()
        lock = Semaphore()

        def spin() -> None:
            gate.wait()
            for _ in range(rounds):
                gevent.sleep(0)
                with lock:
                    gevent.sleep(0)

        def ping() -> None:
            gate.wait()
            for index in range(rounds):
                queue.put(index)
                gevent.sleep(0)

        def pong() -> None:
            gate.wait()
            for _ in range(rounds):
                queue.get()

        glets = [gevent.spawn(spin), gevent.spawn(spin), gevent.spawn(ping), gevent.spawn(pong)]
        gevent.sleep(0)  # every greenlet's first step and first wait: the probe's Python methods
        seen.clear()
        before = probe.switches
        gate.set()
        gevent.joinall(glets, timeout=TIMEOUT_S, raise_error=True)
        return sorted(seen), probe.switches - before

    try:
        calls_for(3)  # the code objects and await sites met for the first time
        few, few_switches = calls_for(20)
        many, many_switches = calls_for(200)
    finally:
        probe.stop()
    assert probe.failed is None
    assert many_switches > few_switches + 1000
    assert many == few  # the greenlets' ends, the same for both


# -- the ledger's functions, one by one ---------------------------------------------------------


def c_hook_for_tests() -> Any:
    threads = ThreadRegistry()
    hook = GreenletProbe(Sampler(threads), threads)._c_hook()
    assert hook is not None and hook.ledger_in_c
    return hook


def random_record(rng: random.Random) -> UnitRecord:
    return UnitRecord(rng.randrange(100), "greenlet", "target", "file.py", 3, rng.choice([0.0, 1.5, -0.25, 2.0]))


def random_site(rng: random.Random) -> Any:
    site = ((random_site.__code__, rng.randrange(3)),)
    callee = rng.choice([None, 1, 2, 2, 3])
    return rng.choice([None, (site, callee), (site, callee)])


@needs_c_hook
@pytest.mark.parametrize("seed", range(8))
def test_the_c_ledger_functions_do_what_task_ledgers_do(seed: int) -> None:
    """Random steps on pairs of twin records, one through the hook's C bookkeeping and one
    through TaskLedger's: timers due before, at and after the wake-up, I/O, waiting, locks,
    ready units, negative and zero gaps, -0.0, repeated and changing callees."""
    hook = c_hook_for_tests()
    rng = random.Random(seed)
    times = [0.0, -0.0, 0.5, 1.0, 1.0, 1.25, 2.0, 3.5, 1e-9, 7.0]
    for _ in range(40):
        c_record = random_record(rng)
        python_record = c_record.copy()
        for _ in range(rng.randrange(1, 12)):
            t0 = rng.choice(times)
            t1 = t0 + rng.choice([0.0, -0.0, 0.25, 0.003, 1.5, -0.5])
            kind = rng.choice([READY, TIMER, IO, WAITING, LOCK, 9])
            due = rng.choice([0.0, t1 - 1.0, t1 + 0.001, t1 + 0.5, t1 + 10.0])
            site = random_site(rng)
            assert hook.step_started(c_record, t0) is True
            TaskLedger.step_started(python_record, t0)
            hook.step_ended(c_record, t0, t1, kind, due, site)
            TaskLedger.step_ended(python_record, t0, t1, kind, due, site)
            assert fields(c_record) == fields(python_record)
            for name in ("running_s", "io_s", "waiting_s", "scheduling_s", "lock_s", "longest_step_s"):
                c_value, python_value = getattr(c_record, name), getattr(python_record, name)
                assert type(c_value) is type(python_value)
                assert math.copysign(1.0, c_value) == math.copysign(1.0, python_value), name
        t_end = rng.choice(times)
        assert hook.step_started(c_record, t_end) is True
        TaskLedger.step_started(python_record, t_end)
        assert fields(c_record) == fields(python_record)


@needs_c_hook
def test_a_record_that_is_not_plain_goes_to_task_ledgers_functions() -> None:
    """A subclass of UnitRecord, an unset field, an int where a float is kept: TaskLedger's
    own functions do the step, with the same result."""

    class Special(UnitRecord):
        __slots__ = ()

    hook = c_hook_for_tests()
    special = Special(1, "greenlet", "target", "", 0, 0.0)
    reference = Special(1, "greenlet", "target", "", 0, 0.0)
    assert hook.step_started(special, 1.0) is False
    TaskLedger.step_started(reference, 1.0)
    hook.step_ended(special, 1.0, 2.0, IO, 0.0, None)
    TaskLedger.step_ended(reference, 1.0, 2.0, IO, 0.0, None)
    assert hook.step_started(special, 3.0) is False
    TaskLedger.step_started(reference, 3.0)
    assert fields(special) == fields(reference) and special.io_s == 1.0

    unset = UnitRecord(1, "greenlet", "target", "", 0, 0.0)
    del unset.lock_s
    assert hook.step_started(unset, 1.0) is False
    assert unset.first_run == 1.0

    # a record found plain in one call of the hook is asked again in the next (the hook
    # remembers the last plain record only while one call lasts)
    emptied = UnitRecord(1, "greenlet", "target", "", 0, 0.0)
    assert hook.step_started(emptied, 1.0) is True
    hook.step_ended(emptied, 1.0, 2.0, WAITING, 0.0, None)
    del emptied.lock_s
    assert hook.step_started(emptied, 3.0) is False
    assert emptied.waiting_s == 1.0 and not hasattr(emptied, "lock_s")

    integers = UnitRecord(1, "greenlet", "target", "", 0, 0)
    twin = UnitRecord(1, "greenlet", "target", "", 0, 0)
    assert hook.step_started(integers, 2) is False
    TaskLedger.step_started(twin, 2)
    hook.step_ended(integers, 2, 3, WAITING, 0, None)
    TaskLedger.step_ended(twin, 2, 3, WAITING, 0, None)
    assert hook.step_started(integers, 5) is False
    TaskLedger.step_started(twin, 5)
    assert fields(integers) == fields(twin)
    assert type(integers.waiting_s) is type(twin.waiting_s)


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


def _napper() -> None:
    for _ in range(3):
        gevent.sleep(0.001)


def _nap_under(counts_as_program: bool) -> tuple[GreenletProbe, UnitRecord]:
    """Run `_napper` under a C-hook probe for which every code object is (or none is) the
    program's: its record, and the probe."""
    threads = ThreadRegistry()
    probe = GreenletProbe(Sampler(threads), threads)
    probe._program = lambda code: counts_as_program  # type: ignore[method-assign]
    probe.start()
    assert probe._hook is not None
    try:
        gevent.spawn(_napper).join(timeout=TIMEOUT_S)
    finally:
        probe.stop()
    assert probe.failed is None
    (record,) = [record for record in probe.drain() if record.target.endswith("_napper")]
    return probe, record


def _site_codes(record: UnitRecord) -> set[Any]:
    # a record's waits are keyed by the site's frames: ((code, line), ...)
    return {code for frames in record.waits or {} if frames is not None for code, _line in frames}


@needs_c_hook
def test_each_probe_classifies_code_by_its_own_rules() -> None:
    """The C hook keeps a code object's role in the code object itself, marked as its own:
    a later probe with other rules for what is the program's classifies the code again,
    twice in a row, and the await sites follow each probe's rules."""
    napper_code = _napper.__code__
    for _ in range(2):
        program_probe, as_program = _nap_under(True)
        library_probe, as_library = _nap_under(False)
        assert napper_code in _site_codes(as_program)
        assert napper_code not in _site_codes(as_library)
        assert library_probe._code_roles[id(napper_code)][0] == greenlet_probe._OTHER
        assert program_probe._code_roles[id(napper_code)][0] == greenlet_probe._PROGRAM
        assert as_program.steps == as_library.steps == 4


@needs_c_hook
def test_the_c_hook_follows_the_probes_active_flag() -> None:
    """The hook reads its own copy of the probe's flag (no attribute look-up a switch): with
    the flag off it lets switches through untouched, with it on again it handles them."""
    threads = ThreadRegistry()
    probe = GreenletProbe(Sampler(threads), threads)
    probe.start()
    hook = probe._hook
    assert hook is not None and hook.active is True
    try:
        gevent.spawn(_napper).join(timeout=TIMEOUT_S)
        handled = hook.switches
        assert handled >= 6  # three naps: to the hub and back, each
        probe._set_active(False)
        assert hook.active is False
        gevent.spawn(_napper).join(timeout=TIMEOUT_S)
        assert hook.switches == handled
        probe._set_active(True)
        gevent.spawn(_napper).join(timeout=TIMEOUT_S)
        assert hook.switches >= handled + 6
    finally:
        probe.stop()
    assert hook.active is False and probe.failed is None


# -- numbers and slots written over in place, only where no one else holds them -------------

FLOAT_FIELDS = ("running_s", "io_s", "waiting_s", "scheduling_s", "lock_s", "longest_step_s")


@needs_c_hook
@pytest.mark.parametrize("seed", range(4))
def test_a_number_someone_holds_is_never_written_over(seed: int) -> None:
    """The C ledger writes a sum over the float it replaces when the record holds the only
    reference to it. Floats read from the books before a step keep their values after it,
    while the books themselves move on (and agree with TaskLedger's)."""
    hook = c_hook_for_tests()
    rng = random.Random(seed)
    c_record = random_record(rng)
    python_record = c_record.copy()
    t0, moved = 0.0, 0
    for _ in range(60):
        held = [(name, getattr(c_record, name)) for name in FLOAT_FIELDS if rng.random() < 0.5]
        values = [(name, value.hex()) for name, value in held]
        t1 = t0 + rng.choice([0.25, 0.003, 1.5])
        kind, due = rng.choice([IO, WAITING, LOCK, READY, TIMER]), t1 + rng.choice([-1.0, 0.001, 0.5])
        hook.step_started(c_record, t0)
        TaskLedger.step_started(python_record, t0)
        hook.step_ended(c_record, t0, t1, kind, due, None)
        TaskLedger.step_ended(python_record, t0, t1, kind, due, None)
        assert [(name, value.hex()) for name, value in held] == values
        moved += sum(getattr(c_record, name) != value for name, value in held)
        t0 = t1 + rng.choice([0.0, 0.5, 2.0])
    assert fields(c_record) == fields(python_record)
    assert moved > 10  # the held floats were replaced in the books, not changed


@needs_c_hook
def test_a_running_slot_someone_holds_is_never_reused() -> None:
    """The hook fills the next step's slot in the list of the step that ended, or of the hub's
    segment, when the table of running steps holds it alone. A greenlet that keeps its own
    step's slot (as the sampler keeps one it looks at) finds it as it was, switch after switch;
    the steps that follow get slots of their own."""
    threads = ThreadRegistry()
    probe = GreenletProbe(Sampler(threads), threads)
    probe.start()
    running = probe.sampler.running
    thread = get_original("_thread", "get_ident")()  # the table's key: the thread, not a greenlet
    kept: list[tuple[list[Any], list[Any]]] = []

    def keeper() -> None:
        for _ in range(20):
            slot = running[thread]
            kept.append((slot, list(slot)))
            gevent.sleep(0)

    try:
        assert probe._hook is not None
        gevent.joinall([gevent.spawn(keeper), gevent.spawn(_napper)], timeout=TIMEOUT_S)
    finally:
        probe.stop()
    assert probe.failed is None and len(kept) == 20
    assert all(slot == copy for slot, copy in kept)
    assert len({id(slot) for slot, _copy in kept}) == 20  # each step its own
    assert len({id(slot[0]) for slot, _copy in kept}) == 1 and kept[0][0][0].kind == "greenlet"  # the keeper's
