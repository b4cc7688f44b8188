"""The step-by-step replay on hand-made timelines, each worked out by hand in its docstring.

A timeline here is what the asyncio probe would record for a small program on one loop:
steps with their start and end, what the task waited for before each, who created it, and
the tasks it waited on.
"""

from __future__ import annotations

from typing import Any

import pytest

from advisor.profile import Report, Timeline, TimelineTrack
from advisor.whatif import build_model, predict
from advisor.whatif.fixes import POOL_START_S
from advisor.whatif.replay import Edit
from advisor.whatif.simulate import StepEdits, plan_loop, replay_timeline, simulate, step_edits, usable

from .conftest import finding, report, unit

LOOP = "thread:1"


def track(unit_id: str, created: float, steps: list[tuple[float, float, str]], creator: int | None = None,
          after: dict[int, list[int]] | None = None, dues: dict[int, float] | None = None,
          cpu: dict[int, float] | None = None) -> TimelineTrack:
    return TimelineTrack(unit=unit_id, loop=LOOP, created_s=created, creator=creator,
                         start_s=[start for start, _end, _wait in steps], end_s=[end for _start, end, _wait in steps],
                         waits=[wait for _start, _end, wait in steps],  # type: ignore[misc]
                         due_s=[(dues or {}).get(index) for index in range(len(steps))],
                         cpu_s=[(cpu or {}).get(index) for index in range(len(steps))], after=after or {})


def blocking_sleep_timeline() -> list[TimelineTrack]:
    """main() creates poll and tick and gathers them. poll blocks the loop 0.3 s in each of its
    first two steps; tick sleeps 0.1 s twice, its first timer (due 0.4011) runs 0.2 s late at
    0.6011. The loop ends with main at 0.7014."""
    return [
        track("asyncio:main", 0.0, [(0.0, 0.001, "new"), (0.7013, 0.7014, "waiting")], after={1: [1, 2]}),
        track("asyncio:poll", 0.0005, [(0.001, 0.301, "new"), (0.3011, 0.6011, "ready"), (0.6012, 0.6013, "ready")],
              creator=0),
        track("asyncio:tick", 0.0006, [(0.301, 0.3011, "new"), (0.6011, 0.6012, "timer"), (0.7012, 0.7013, "timer")],
              creator=0, dues={1: 0.4011, 2: 0.7012}),
    ]


def starts(result: Any) -> dict[tuple[int, int], float]:
    return {key: round(value, 9) for key, value in result.start.items()}


def test_the_unmodified_replay_runs_every_step_when_it_ran() -> None:
    tracks = blocking_sleep_timeline()
    plan = plan_loop(tracks, [0, 1, 2])
    result = simulate(tracks, plan, StepEdits(), workers=2)
    recorded = {(index, step): round(track.start_s[step], 9) for index, track in enumerate(tracks)
                for step in range(len(track.start_s))}
    assert starts(result) == recorded
    assert result.loop_end == pytest.approx(0.7014)
    assert plan.root == 0


def late_wake_up_timeline() -> list[TimelineTrack]:
    """main() creates stall and tick and gathers them. stall's timer is due at 0.0500, but the
    idle loop wakes 3 ms late, at 0.0530; tick's timer came due meanwhile (0.0520): both are
    ready then, and the loop runs them in due order, stall first, which blocks 0.08 s; tick
    runs at 0.1331. The loop ends with main at 0.1333."""
    return [
        track("asyncio:main", 0.0, [(0.0, 0.001, "new"), (0.1332, 0.1333, "waiting")], after={1: [1, 2]}),
        track("asyncio:stall", 0.0005, [(0.0011, 0.0012, "new"), (0.0530, 0.1330, "timer")], creator=0,
              dues={1: 0.0500}),
        track("asyncio:tick", 0.0006, [(0.0012, 0.0020, "new"), (0.1331, 0.1332, "timer")], creator=0,
              dues={1: 0.0520}),
    ]


def test_a_late_wake_up_of_the_idle_loop_runs_everything_due_by_then_in_order() -> None:
    """The 3 ms are the idle loop's lateness, not the stall's own: in the replay tick's timer,
    due within them, waits for the stall's step as it did (a lateness that delayed the stall's
    step alone let tick run first, at 0.0520, and the unmodified replay lost the run's order)."""
    tracks = late_wake_up_timeline()
    plan = plan_loop(tracks, [0, 1, 2])
    assert plan.latency[(1, 1)] == pytest.approx(0.003)
    result = simulate(tracks, plan, StepEdits(), workers=2)
    recorded = {(index, step): round(track.start_s[step], 9) for index, track in enumerate(tracks)
                for step in range(len(track.start_s))}
    assert starts(result) == recorded
    assert result.loop_end == pytest.approx(0.1333)


def test_an_awaited_sleep_frees_the_loop_for_the_ticker() -> None:
    """poll's two 0.3 s blocks become awaited sleeps: its steps take no time and it goes on
    0.3 s after each. tick then runs on time: its steps at 0.001, 0.1011, 0.2012; poll's at
    0.001, 0.301, 0.601; main gathers them at 0.6011 and ends at 0.6012: 0.1002 s saved."""
    tracks = blocking_sleep_timeline()
    edit = Edit(held_s={"asyncio:poll": -0.6}, targets={"asyncio:poll"})
    edits = step_edits(Timeline(tracks=tracks), edit)
    assert edits.length == {(1, 0): pytest.approx(0.0), (1, 1): pytest.approx(0.0)}
    assert edits.delay == {(1, 0): pytest.approx(0.3), (1, 1): pytest.approx(0.3)}
    result = simulate(tracks, plan_loop(tracks, [0, 1, 2]), edits, workers=2)
    assert result.start[(2, 1)] == pytest.approx(0.1011)
    assert result.start[(2, 2)] == pytest.approx(0.2012)
    assert result.start[(1, 1)] == pytest.approx(0.301)
    assert result.start[(1, 2)] == pytest.approx(0.601)
    assert result.loop_end == pytest.approx(0.6012)


def simulated_report(tracks: list[TimelineTrack], wall: float, **units: float) -> Report:
    """A report of these tracks; poll blocked its loop for the 0.6 s of its two long steps."""
    tasks = [unit(name, id=f"asyncio:{name}", wall=seconds, blocked=0.6 if name == "poll" else 0.0)
             for name, seconds in units.items()]
    tasks.append(unit("MainThread", "thread", wall=wall, compute=0.01, id=LOOP))
    run = report(tasks, wall=wall)
    run.timeline = Timeline(steps=sum(len(t.start_s) for t in tracks), tracks=tracks)
    return run


def test_the_findings_replay_comes_from_the_timeline_when_it_covers_the_units() -> None:
    run = simulated_report(blocking_sleep_timeline(), 0.72, main=0.7014, poll=0.6008, tick=0.7007)
    outcome = predict(run, [finding("blocking-sleep", 18, units=["poll"], blocked_s=0.6)])
    assert outcome is not None and outcome.replayed_from == "timeline"
    assert outcome.savings_s == pytest.approx(0.1002, abs=1e-6)
    gains = {item.unit.label: item.after_s - item.before_s for item in outcome.units}
    assert gains["main"] == pytest.approx(-0.1002, abs=1e-6)
    assert gains["tick"] == pytest.approx(-0.5, abs=1e-6)  # its last step 0.7013 -> 0.2013
    assert gains["MainThread"] == pytest.approx(-0.1002, abs=1e-6)
    # a truncated timeline is not a run's whole story: the per-unit model answers instead
    assert run.timeline is not None
    run.timeline.truncated = True
    fallback = predict(run, [finding("blocking-sleep", 18, units=["poll"], blocked_s=0.6)])
    assert fallback is not None and fallback.replayed_from == "aggregates"


def test_units_without_steps_are_not_replayed_from_the_timeline() -> None:
    run = simulated_report(blocking_sleep_timeline(), 0.72, main=0.7014, poll=0.6008, tick=0.7007)
    assert usable(run, Edit(held_s={"asyncio:poll": -0.1}))
    assert not usable(run, Edit(own_s={LOOP: -0.1}))  # a thread has no steps
    assert not usable(run, Edit())


def test_a_reply_noticed_late_behind_a_blocked_loop_comes_back_with_the_fix() -> None:
    """A sends a request at 0.001 and waits for the reply; B holds the loop from 0.001 to
    0.201, and A runs 0.2 ms after it. The loop was busy up to A's step, so B's step is taken
    to have woken it (the reply came in meanwhile): freed from B's block (now an awaited
    0.2 s), A's second step runs 0.2 ms after B's shortened step, at 0.0012, not 0.2012."""
    tracks = [track("asyncio:a", 0.0, [(0.0, 0.001, "new"), (0.2012, 0.2013, "io")]),
              track("asyncio:b", 0.0, [(0.001, 0.201, "new")])]
    plan = plan_loop(tracks, [0, 1])
    assert plan.rules[(0, 1)].woken_by == (1, 0) and plan.rules[(0, 1)].delay == 0.0
    assert plan.lead_in[(0, 1)] == pytest.approx(0.0002)  # the loop's own time, kept
    edits = step_edits(Timeline(tracks=tracks), Edit(held_s={"asyncio:b": -0.2}))
    result = simulate(tracks, plan, edits, workers=2)
    assert result.start[(0, 1)] == pytest.approx(0.0012)
    assert result.out[(1, 0)] == pytest.approx(0.201)  # b's sleep still lasts


def test_overlapped_awaits_shrink_the_waits_for_replies() -> None:
    """One task, three requests of 0.05 s one after another on an idle loop (external
    latency). Overlapping them removes 0.1 s of the 0.15 s of waits: each shrinks to a third,
    and the task ends at 0.004 + 0.05 = 0.054 instead of 0.154."""
    tracks = [track("asyncio:q", 0.0, [(0.0, 0.001, "new"), (0.051, 0.052, "io"), (0.102, 0.103, "io"),
                                       (0.153, 0.154, "io")])]
    edit = Edit(own_s={"asyncio:q": -0.1}, io_s={"asyncio:q": -0.1})
    result = simulate(tracks, plan_loop(tracks, [0]), step_edits(Timeline(tracks=tracks), edit), workers=2)
    assert result.loop_end == pytest.approx(0.054)


@pytest.mark.parametrize("workers", [1, 2])
def test_cpu_moved_to_a_process_pool_runs_there_while_the_loop_ticks_on(workers: int) -> None:
    """Two tasks each compute 0.2 s on the loop, then a ticker fires every 0.05 s (late
    behind them). Moved to a pool of `workers` processes (started at the first job), the
    loop is free: the ticker runs on time, and the two jobs end at 0.01 + 0.2 (two
    workers, side by side) or 0.01 + 0.4 (one worker, one after the other)."""
    tracks = [track("asyncio:crunch", 0.0, [(0.0, 0.2, "new")], cpu={0: 0.2}),
              track("asyncio:crunch", 0.0, [(0.2, 0.4, "new")], cpu={0: 0.2}),
              track("asyncio:tick", 0.0, [(0.4, 0.4001, "new"), (0.4001, 0.4002, "timer"),
                                          (0.4002, 0.4003, "timer")], dues={1: 0.05, 2: 0.1})]
    # the ticker's first timers were due at 0.05 and 0.1 (recorded from a 0.0 start here)
    tracks[2].start_s[0], tracks[2].end_s[0] = 0.4, 0.4
    tracks[2].due_s = [None, 0.45, 0.5]
    edit = Edit(held_s={"asyncio:crunch": -0.4}, targets={"asyncio:crunch"}, pooled={"asyncio:crunch"})
    edits = step_edits(Timeline(tracks=tracks), edit)
    result = simulate(tracks, plan_loop(tracks, [0, 1, 2]), edits, workers=workers)
    ends = sorted(result.out[(index, 0)] for index in (0, 1))
    if workers == 2:
        assert ends == [pytest.approx(POOL_START_S + 0.2), pytest.approx(POOL_START_S + 0.2)]
    else:
        assert ends == [pytest.approx(POOL_START_S + 0.2), pytest.approx(POOL_START_S + 0.4)]
    assert result.start[(2, 0)] == pytest.approx(0.0)
    assert result.start[(2, 1)] == pytest.approx(0.05)


def test_a_task_created_by_a_callback_follows_what_ran_before_it() -> None:
    """A server's handler task is created by the loop's protocol callback 0.02 s after the
    client's step that connected, and runs 0.5 ms after that (the idle loop's wake-up): when
    the client connects earlier, the handler starts earlier, at 0.001 + 0.02 + 0.0005."""
    tracks = [track("asyncio:client", 0.0, [(0.0, 0.101, "new")]),
              track("asyncio:handler", 0.121, [(0.1215, 0.122, "new")])]
    plan = plan_loop(tracks, [0, 1])
    assert plan.rules[(1, 0)].after == [(0, 0)]
    edits = step_edits(Timeline(tracks=tracks), Edit(held_s={"asyncio:client": -0.1}, own_s={"asyncio:client": -0.1}))
    result = simulate(tracks, plan, edits, workers=2)
    assert result.start[(1, 0)] == pytest.approx(0.001 + 0.02 + 0.0005)


def test_a_report_made_by_the_probe_replays_from_its_timeline() -> None:
    run = simulated_report(blocking_sleep_timeline(), 0.72, main=0.7014, poll=0.6008, tick=0.7007)
    outcome = replay_timeline(build_model(run), run, Edit(held_s={"asyncio:poll": -0.6}, targets={"asyncio:poll"}))
    assert outcome.wall_before_s == 0.72
    assert outcome.wall_after_s == pytest.approx(0.72 - 0.1002, abs=1e-6)
