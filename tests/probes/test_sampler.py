"""The sampler's charging of a running step, on made-up times and CPU readings.

A task step that the sampler sees is charged in pieces: the lead-in from the step's
start to the first look, each interval between looks, and the tail from the last look
to the step's end (``close_step``). On- plus off-CPU of the pieces must be exactly the
step's span, the on-CPU part exact where a CPU reading at the step start exists, and
bounded by what the tick's interval allows where it does not.
"""

from __future__ import annotations

import pytest

from advisor.probes.records import OFF_CPU, OFF_CPU_CONTENDED, ON_CPU, UnitRecord
from advisor.probes.sampler import Sampler, add_step_time, capture_stack
from advisor.probes.threads import ThreadRegistry

EXACT = 1e-9


def stack_a() -> tuple:
    return ((stack_a.__code__, stack_a.__code__.co_firstlineno),)


def stack_b() -> tuple:
    return ((stack_b.__code__, stack_b.__code__.co_firstlineno),)


def new_record() -> UnitRecord:
    return UnitRecord(1, "asyncio-task", "app.work", "/app/app.py", 1, 0.0)


def weights(record: UnitRecord, stack: tuple) -> tuple[float, float, float]:
    assert record.samples is not None and stack in record.samples, record.samples
    found = record.samples[stack]
    return found[ON_CPU], found[OFF_CPU], found[OFF_CPU_CONTENDED]


def charged(record: UnitRecord) -> float:
    """Seconds charged to the record in all (on + off + any further column such as held)."""
    return sum(value for found in (record.samples or {}).values() for value in (found[0], found[1], *found[3:]))


def new_sampler() -> Sampler:
    return Sampler(ThreadRegistry(clock=lambda: 0.0), interval=0.01, clock=lambda: 0.0)


# -- first sight of a step: the lead-in ------------------------------------------------------

def test_lead_in_with_a_cpu_reading_at_the_step_start_is_exact() -> None:
    record = new_record()
    slot = [record, 100.0, None, 5.0]  # the probe read 5.0 s of thread CPU when the step began
    Sampler._charge_step(slot, 100.04, 5.03, stack_a(), False, 99.99, 0.0)
    assert weights(record, stack_a()) == pytest.approx((0.03, 0.01, 0.0), abs=EXACT)
    assert slot[2][:3] == [100.04, 5.03, stack_a()]


def test_lead_in_cpu_is_capped_by_its_span() -> None:
    record = new_record()
    slot = [record, 100.0, None, 5.0]
    Sampler._charge_step(slot, 100.01, 5.5, stack_a(), False, 99.99, 0.0)  # a CPU reading ahead of wall
    assert weights(record, stack_a()) == pytest.approx((0.01, 0.0, 0.0), abs=EXACT)


@pytest.mark.parametrize(("interval_cpu", "lead_on"), [
    (0.01, 0.004),  # the whole interval on the CPU: so was the lead-in
    (0.0, 0.0),  # the whole interval off the CPU: so was the lead-in
    (0.008, 0.003),  # 8 of 10 ms: at least 2 ms of the 4 ms lead-in, at most 4 ms: the midpoint
    (0.005, 0.002),  # 5 of 10 ms: between 0 and 4 ms of the lead-in: the midpoint
])
def test_lead_in_without_a_cpu_reading_is_the_midpoint_of_its_bounds(interval_cpu: float, lead_on: float) -> None:
    """The tick's interval (99.99 to 100.0) had `interval_cpu` of CPU; the step began at
    99.996, 6 ms into it. The lead-in's CPU is at least what the 6 ms before the step could
    not hold and at most the lead-in itself: where the bounds meet the split is exact."""
    record = new_record()
    slot = [record, 99.996, None, -1.0]
    Sampler._charge_step(slot, 100.0, 7.0, stack_a(), False, 99.99, interval_cpu)
    on, off, contended = weights(record, stack_a())
    assert on == pytest.approx(lead_on, abs=EXACT)
    assert on + off == pytest.approx(0.004, abs=EXACT)
    assert contended == 0.0
    assert slot[2][:3] == [100.0, 7.0, stack_a()]


def test_a_look_before_the_step_bounds_its_lead_in_from_there() -> None:
    """The watch looked at the hub thread 1 ms before a step that blocks at once: from its
    last tick (40 ms back, 30 ms of other steps' CPU in them) the lead-in would be half
    on-CPU; from the look, 0.5 ms of CPU since leaves at most that much to the step."""
    record = new_record()
    slot = [record, 100.001, None, -1.0]  # the step began at 100.001 and sleeps
    Sampler._charge_step(slot, 100.006, 7.0, stack_a(), False, 99.96, 0.03, look=(100.0, 6.9995))
    on, off, _ = weights(record, stack_a())
    assert on + off == pytest.approx(0.005, abs=EXACT)
    assert on == pytest.approx(0.00025, abs=EXACT)  # the middle of 0 and 0.5 ms, not of 0 and 5


def test_a_look_inside_the_step_makes_its_part_from_there_exact() -> None:
    """The look came 1 ms into the step: the 4 ms after it are exact (0.5 ms of CPU); only
    the first 1 ms is bounded from the tick before (which ran 1 ms on the CPU in 10 ms)."""
    record = new_record()
    slot = [record, 100.0, None, -1.0]
    Sampler._charge_step(slot, 100.005, 6.0, stack_a(), False, 99.99, 0.0015, look=(100.001, 5.9995))
    on, off, _ = weights(record, stack_a())
    assert on + off == pytest.approx(0.005, abs=EXACT)
    # before the look: 1 ms of CPU from 99.99 to 100.001, 10 ms of it before the step: 0 to 1 ms
    assert on == pytest.approx(0.0005 + 0.0005, abs=EXACT)


@pytest.mark.parametrize("look", [
    (99.98, 6.999),  # before the tick's own interval began: nothing it could add
    (100.01, 6.999),  # after the tick
    (100.0, 7.5),  # a CPU reading past the tick's
    (100.0, 6.0),  # a CPU reading before the interval's start
])
def test_a_look_that_does_not_fit_the_interval_is_not_used(look: tuple[float, float]) -> None:
    with_look, without = new_record(), new_record()
    Sampler._charge_step([with_look, 99.996, None, -1.0], 100.005, 7.0, stack_a(), False, 99.99, 0.008, look=look)
    Sampler._charge_step([without, 99.996, None, -1.0], 100.005, 7.0, stack_a(), False, 99.99, 0.008)
    assert weights(with_look, stack_a()) == weights(without, stack_a())


def test_lead_in_off_cpu_is_flagged_contended_when_others_ran() -> None:
    record = new_record()
    slot = [record, 100.0, None, 5.0]
    Sampler._charge_step(slot, 100.01, 5.002, stack_a(), True, 99.99, 0.0)
    assert weights(record, stack_a()) == pytest.approx((0.002, 0.008, 0.008), abs=EXACT)


def test_a_step_that_starts_at_the_tick_charges_no_lead_in() -> None:
    record = new_record()
    slot = [record, 100.0, None, -1.0]
    Sampler._charge_step(slot, 100.0, 5.0, stack_a(), False, 99.99, 0.01)
    assert record.samples is None
    assert slot[2][:3] == [100.0, 5.0, stack_a()]


# -- later looks at the same step -------------------------------------------------------------

def test_each_later_interval_is_charged_at_its_own_split_and_stack() -> None:
    record = new_record()
    slot = [record, 100.0, None, 5.0]
    Sampler._charge_step(slot, 100.01, 5.01, stack_a(), False, 99.995, 0.0)
    Sampler._charge_step(slot, 100.02, 5.012, stack_b(), False, 100.01, 0.002)  # blocked 8 ms at b
    Sampler._charge_step(slot, 100.03, 5.022, stack_a(), False, 100.02, 0.01)
    assert weights(record, stack_a()) == pytest.approx((0.02, 0.0, 0.0), abs=EXACT)
    assert weights(record, stack_b()) == pytest.approx((0.002, 0.008, 0.0), abs=EXACT)
    assert slot[2][:3] == [100.03, 5.022, stack_a()]


def test_a_look_at_the_same_time_charges_nothing() -> None:
    record = new_record()
    slot = [record, 100.0, None, 5.0]
    Sampler._charge_step(slot, 100.01, 5.01, stack_a(), False, 99.995, 0.0)
    Sampler._charge_step(slot, 100.01, 5.02, stack_b(), False, 100.01, 0.0)
    assert stack_b() not in (record.samples or {})
    assert slot[2][:3] == [100.01, 5.01, stack_a()]


def test_an_interval_cpu_delta_is_capped_by_its_span() -> None:
    record = new_record()
    slot = [record, 100.0, [100.0, 5.0, stack_a(), 0.0], 5.0]
    Sampler._charge_step(slot, 100.01, 5.5, stack_a(), False, 100.0, 0.01)
    assert weights(record, stack_a()) == pytest.approx((0.01, 0.0, 0.0), abs=EXACT)


def test_time_the_sampler_held_the_gil_is_not_off_cpu() -> None:
    """`held` (the sampler's own hold on the GIL, or the kernel's run queue) is charged apart
    from the off-CPU time the stack explains, and never more than the off-CPU time."""
    record = new_record()
    slot = [record, 100.0, [100.0, 5.0, stack_a(), 0.0], 5.0]
    Sampler._charge_step(slot, 100.01, 5.004, stack_a(), False, 100.0, 0.004, held=0.002)
    on, off, _ = weights(record, stack_a())
    assert (on, off) == pytest.approx((0.004, 0.004), abs=EXACT)
    assert record.samples is not None
    assert record.samples[stack_a()][3] == pytest.approx(0.002, abs=EXACT)
    Sampler._charge_step(slot, 100.02, 5.013, stack_a(), False, 100.01, 0.009, held=0.5)
    assert record.samples[stack_a()][3] == pytest.approx(0.003, abs=EXACT)
    assert charged(record) == pytest.approx(0.02, abs=EXACT)


# -- the end of the step -----------------------------------------------------------------------

def test_close_step_charges_the_tail_at_the_last_stack() -> None:
    sampler = new_sampler()
    record = new_record()
    slot = [record, 100.0, None, 5.0]
    Sampler._charge_step(slot, 100.01, 5.01, stack_a(), False, 99.995, 0.0)
    sampler.close_step(slot, 100.016, 5.013)
    assert weights(record, stack_a()) == pytest.approx((0.013, 0.003, 0.0), abs=EXACT)
    assert charged(record) == pytest.approx(0.016, abs=EXACT)


def test_close_step_of_an_unsampled_step_with_a_cpu_reading_is_exact_without_a_stack() -> None:
    sampler = new_sampler()
    record = new_record()
    slot = [record, 100.0, None, 5.0]
    sampler.close_step(slot, 100.005, 5.002)
    assert weights(record, ()) == pytest.approx((0.002, 0.003, 0.0), abs=EXACT)


@pytest.mark.parametrize("slot_tail", [(None, -1.0), (None, 5.0)])
def test_close_step_without_anything_to_charge_adds_nothing(slot_tail: tuple) -> None:
    sampler = new_sampler()
    record = new_record()
    state, cpu0 = slot_tail
    t1 = 100.005 if cpu0 < 0.0 else 100.0  # no CPU reading, or a step of no length
    sampler.close_step([record, 100.0, state, cpu0], t1, 5.1)
    assert record.samples is None


def test_a_whole_sampled_step_adds_up_to_its_span() -> None:
    """Lead-in, three looks and the tail: on + off is the step's span, on is its CPU."""
    sampler = new_sampler()
    record = new_record()
    slot = [record, 100.003, None, 5.0]
    cpu_at = {100.01: 5.007, 100.02: 5.009, 100.03: 5.019, 100.04: 5.02}
    previous = 100.0
    for now, cpu in cpu_at.items():
        Sampler._charge_step(slot, now, cpu, stack_a(), False, previous, 0.0)
        previous = now
    sampler.close_step(slot, 100.043, 5.0215)
    on, off, _ = weights(record, stack_a())
    assert on + off == pytest.approx(0.04, abs=EXACT)
    assert on == pytest.approx(0.0215, abs=EXACT)


def test_add_step_time_marks_off_cpu_contended_or_not() -> None:
    record = new_record()
    add_step_time(record, stack_a(), 0.001, 0.004, True)
    add_step_time(record, stack_a(), 0.002, 0.003, False)
    assert weights(record, stack_a()) == pytest.approx((0.003, 0.007, 0.004), abs=EXACT)


def test_capture_stack_is_leaf_first_with_lines() -> None:
    import sys

    def inner() -> tuple:
        return capture_stack(sys._getframe())

    stack = inner()
    assert stack[0][0] is inner.__code__
    assert stack[1][0] is test_capture_stack_is_leaf_first_with_lines.__code__
    assert stack[0][1] == inner.__code__.co_firstlineno + 1


def test_a_thread_outside_threading_is_asked_about_again_only_every_so_many_ticks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A native thread that threading does not know (as gevent's thread pool workers) cannot
    be adopted: its stack is taken at 10 ticks in a row (a starting threading.Thread is not in
    threading's table for a moment), then skipped until the next recheck, while a
    threading.Thread started meanwhile is adopted at once."""
    import _thread
    import threading

    from advisor.probes import sampler as sampler_module

    parked, release = _thread.allocate_lock(), _thread.allocate_lock()
    release.acquire()
    native: list[int] = []

    def park() -> None:
        native.append(_thread.get_ident())
        parked.acquire()
        release.acquire()  # until the test lets go
        parked.release()

    _thread.start_new_thread(park, ())
    taken: list[set[int]] = []
    capture = sampler_module.capture_stacks

    def recording(skip: set[int], *args: object) -> dict:
        found = capture(skip, *args)
        taken.append(set(found))
        return found

    monkeypatch.setattr(sampler_module, "capture_stacks", recording)
    sampler = Sampler(ThreadRegistry(), interval=0.01)
    own = threading.get_ident()
    sampler.threads.ignored.add(own)
    waiting = threading.Event()
    adopted = threading.Thread(target=waiting.wait, args=(30,), daemon=True)
    try:
        while not native or not parked.locked():
            pass
        for tick in range(2 * sampler_module.UNADOPTABLE_RECHECK_TICKS + 1):
            if tick == 10:
                adopted.start()
            sampler.tick(own)
    finally:
        release.release()
        waiting.set()
        adopted.join(10)
    rounds = sampler_module.UNADOPTABLE_RECHECK_TICKS
    looked_at = [tick for tick, idents in enumerate(taken) if native[0] in idents]
    after = sampler_module.UNADOPTABLE_AFTER_TICKS
    assert looked_at == [*range(after), *range(rounds, rounds + after), 2 * rounds]
    assert all(adopted.ident in idents for idents in taken[11:])
    assert adopted.ident in sampler.threads.alive and native[0] not in sampler.threads.alive


def test_an_early_tick_does_not_charge_a_steps_run_queue_time_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """An early tick looks at a step between two steady ticks without moving the thread's
    own schedule: the next steady tick must charge the step only the run-queue time since
    the early look (8 ms here, once), not again since the thread's last steady tick."""
    from advisor.probes import sampler as sampler_module
    from advisor.probes.threads import ThreadInfo

    now = [100.0]
    sampler = Sampler(ThreadRegistry(clock=lambda: 0.0), interval=0.01, clock=lambda: now[0])
    ident = 12345
    info = ThreadInfo(ident, UnitRecord(2, "thread", "worker", "", 0, 99.0), None, 1.0, None)
    info.last_t, info.last_delay = 99.99, 0.0
    sampler.threads.alive[ident] = info
    step = new_record()
    sampler.running[ident] = [step, 99.995, None, 1.0]
    readings = {100.0: (1.0, 0.0), 100.01: (1.0, 0.008), 100.02: (1.0, 0.008)}  # time: (CPU, run-queue total)
    monkeypatch.setattr(sampler_module, "capture_stacks",
                        lambda *args: {ident: (stack_a(), None, *readings[now[0]])})
    for at, early in ((100.0, False), (100.01, True), (100.02, False)):
        now[0] = at
        sampler.tick(-1, early)
    assert sampler.ticks == 2 and sampler.early_ticks == 1
    assert step.samples is not None
    assert step.samples[stack_a()][3] == pytest.approx(0.008, abs=EXACT)
    assert charged(step) == pytest.approx(0.025, abs=EXACT)  # from the step's start to the last look
