"""ADV102 cpu-in-event-loop: long CPU-bound steps of a task or greenlet that starve the others."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from advisor.frames import is_user_file
from advisor.profile import Task
from advisor.source import calls_on_line, enclosing_function

from ..base import Advice, Rule, RuleContext, unit_label

LOOP_KINDS = ("asyncio-task", "greenlet")
SAVINGS_FORMULA = ("min(others' scheduling_s x this unit's share of the loop-holding time, its time on the loop, "
                   "run wall - max(all loop compute / cores, longest compute+io of a unit))")


@dataclass
class CpuPlace:
    """Where a unit's on-CPU samples say the work is: the line to offload and what it runs."""

    function: str
    file: str
    line: int
    callee: str  # the function called from that line that did the work ("" when inline)
    hot: str  # the leaf program function the CPU was spent in
    cpu_s: float


def is_hub(task: Task) -> bool:
    return task.kind == "greenlet" and task.target.startswith("gevent.hub")


def held_on_cpu(context: RuleContext, task: Task) -> float:
    """The time the unit held its loop running its own code: its CPU time, plus the time it
    was off the CPU inside its steps without being in a blocking call (preempted by the OS
    or waiting for the GIL on a busy machine: the loop was held all the same). The sampler
    charges a task only while one of its steps runs, so its samples measure that time; the
    longest step, timed by the probe, is a lower bound of it."""
    blocked_in_calls = sum(site.seconds for site in task.blocking)
    in_steps = sum(stack.on_cpu_s + stack.off_cpu_s for stack in context.report.samples.stacks
                   if stack.unit == task.id)
    held = max(task.breakdown.compute_s + max(0.0, task.blocking_s - blocked_in_calls), in_steps - blocked_in_calls,
               task.longest_step_s - blocked_in_calls)
    return min(held, task.wall_s)


def _is_coroutine_line(file: str, line: int, cache: dict[tuple[str, int], bool]) -> bool:
    key = (file, line)
    if key not in cache:
        cache[key] = isinstance(enclosing_function(file, line), ast.AsyncFunctionDef)
    return cache[key]


def cpu_place(context: RuleContext, task: Task) -> CpuPlace | None:
    """The program line the unit's CPU went through most: for a task, the line of its
    coroutine that called the CPU-bound code (or ran it inline); for a greenlet, the line
    of its run function (else the innermost program line). From the unit's on-CPU samples,
    else its hot spots."""
    samples = context.report.samples
    coroutine_lines: dict[tuple[str, int], bool] = {}
    weights: dict[tuple[str, str, int], float] = defaultdict(float)
    callees: dict[tuple[str, str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    hots: dict[tuple[str, str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for stack in samples.stacks:
        if stack.unit != task.id or stack.on_cpu_s <= 0.0:
            continue
        frames = [samples.frames[index] for index in stack.frames]
        user = [(position, frame) for position, frame in enumerate(frames) if is_user_file(frame.file)]
        if not user:
            continue
        chosen = None
        for position, frame in user:
            if task.kind == "asyncio-task":
                if _is_coroutine_line(frame.file, frame.line, coroutine_lines):
                    chosen = position
                    break
            elif frame.function == task.target or frame.function.endswith("." + task.target):
                chosen = position
                break
        if chosen is None:
            chosen = user[0][0]
        frame = frames[chosen]
        key = (frame.function, frame.file, frame.line)
        weights[key] += stack.on_cpu_s
        if chosen > 0:
            callees[key][frames[chosen - 1].function] += stack.on_cpu_s
        hots[key][user[0][1].function] += stack.on_cpu_s
    if weights:
        key, cpu = max(weights.items(), key=lambda item: item[1])
        callee = max(callees[key].items(), key=lambda item: item[1])[0] if callees.get(key) else ""
        hot = max(hots[key].items(), key=lambda item: item[1])[0]
        return CpuPlace(key[0], key[1], key[2], callee, hot, cpu)
    for spot in task.hot:
        if is_user_file(spot.file):
            return CpuPlace(spot.function, spot.file, spot.line, "", spot.function, spot.self_s)
    return None


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def offload_fix(task: Task, place: CpuPlace) -> str:
    """The call rewritten to run in a process pool, when the line shows it."""
    callee = _short(place.callee) if place.callee else ""
    call = None
    if callee and not callee.startswith("<"):
        for candidate in reversed(calls_on_line(place.file, place.line)):
            if _short(ast.unparse(candidate.func)) == callee:
                call = candidate
                break
    if task.kind == "greenlet":
        target = ast.unparse(call) if call is not None else f"{callee or 'the work'}(...)"
        return (f"run it in another process: `process_pool.submit({_submit_args(call, callee)}).result()` "
                f"(with gevent.monkey.patch_all() the wait yields to the other greenlets) instead of `{target}`; "
                f"or cut it into chunks with `gevent.sleep(0)` between them")
    if call is None:
        return ("move the CPU-bound code into a plain function and run it off the loop: "
                "`await asyncio.get_running_loop().run_in_executor(process_pool, fn, *args)` "
                "(a concurrent.futures.ProcessPoolExecutor; `await asyncio.to_thread(fn, *args)` "
                "when the work releases the GIL)")
    return (f"await asyncio.get_running_loop().run_in_executor(process_pool, {_submit_args(call, callee)})"
            f"  # process_pool = concurrent.futures.ProcessPoolExecutor(); "
            f"`await asyncio.to_thread(...)` if {callee}() releases the GIL")


def _submit_args(call: ast.Call | None, callee: str) -> str:
    if call is None:
        return f"{callee or 'fn'}, ..."
    func = ast.unparse(call.func)
    args = [ast.unparse(arg) for arg in call.args]
    if call.keywords:
        keywords = ", ".join(ast.unparse(keyword) for keyword in call.keywords)
        return f"functools.partial({', '.join([func, *args])}, {keywords})"
    return ", ".join([func, *args])


class CpuInEventLoopRule(Rule):
    """
    ## What it does
    Finds an asyncio task or a greenlet that keeps its event loop (or gevent hub) busy
    with CPU-bound work in long steps — a step of 50 ms or more without an `await` or a
    switch, and a large compute time — while other tasks or greenlets of the run were ready
    to run and had to wait (their `scheduling_s`). It points at the line of the coroutine
    that runs the work (the call to offload), found in the unit's on-CPU samples.
    It stays silent when nothing else was waiting to run: a lone task crunching numbers
    delays no one.

    The estimated saving is the others' scheduling delay (the largest of them) in the
    share this unit held the loop, bounded by the time it held the loop running its own
    code (its CPU time, or its longest step when the machine was busy) and by what the run
    needs anyway with all the loops' CPU spread over the machine's cores:
    `min(lost x share, held, wall - max(loop compute / cores, longest unit))`.

    ## Why is this bad?
    An event loop runs one step at a time. While one coroutine computes for half a
    second, every other task waits: requests are not read, timers fire late, timeouts
    expire, health checks fail. The whole program becomes as slow as its slowest step.

    ## Example
    ```python
    async def build_report(readings):
        await receive(readings)
        return summarize(readings)  # 0.5 s of pure Python on the loop
    ```

    ## Use instead
    ```python
    async def build_report(pool, readings):
        await receive(readings)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, summarize, readings)  # a ProcessPoolExecutor
    ```
    (`await asyncio.to_thread(summarize, readings)` is enough when the work releases the
    GIL — hashing, compression, numpy; under gevent, a process pool or `gevent.sleep(0)`
    between chunks.)
    """

    slug = "cpu-in-event-loop"
    code = "ADV102"
    summary = "a CPU-heavy coroutine step or greenlet run that starves the others"
    family = "concurrency"
    default_severity = "high"
    defaults = {"min_step_s": 0.05, "min_compute_s": 0.05, "min_lost_s": 0.02}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        units = [task for task in context.tasks(*LOOP_KINDS) if not is_hub(task)]
        min_step = context.option(self, "min_step_s")
        heavy = [task for task in units
                 if task.longest_step_s >= min_step
                 and task.breakdown.compute_s >= context.option(self, "min_compute_s")
                 # its long steps are CPU, not a blocking call (blocking-sleep / blocking-io)
                 and held_on_cpu(context, task) >= sum(site.seconds for site in task.blocking)]
        if not heavy:
            return
        # everything that held a loop in long steps, CPU or blocking: the others' delay is shared out
        holding = sum(task.breakdown.compute_s + task.blocking_s for task in units if task.longest_step_s >= min_step)
        compute_all = sum(task.breakdown.compute_s for task in units)
        floor = max([compute_all / context.cpu_count,
                     *((task.breakdown.compute_s + task.breakdown.io_s) / max(1, task.count) for task in units)])
        room = max(0.0, context.wall_s - floor)
        for task in heavy:
            lost = max([other.breakdown.scheduling_s for other in units if other.id != task.id or other.count > 1],
                       default=0.0)
            if lost < context.option(self, "min_lost_s"):
                continue
            compute = task.breakdown.compute_s
            held = held_on_cpu(context, task)
            share = (compute + task.blocking_s) / holding if holding > 0.0 else 1.0
            place = cpu_place(context, task)
            if place is None:
                continue
            savings = min(lost * share, held, room * compute / compute_all if compute_all > 0.0 else room)
            loop = "gevent hub" if task.kind == "greenlet" else "event loop"
            work = f"{_short(place.callee)}()" if place.callee else "the code here"
            hot = ""
            if place.hot and place.hot not in (place.callee, place.function):
                hot = f" (mostly in {_short(place.hot)}())"
            yield Advice(
                file=place.file, line=place.line, function=place.function,
                message=(f"{work}{hot} runs on the {loop} in {unit_label(task)}: {compute:.2f} s of CPU in steps "
                         f"up to {1000 * task.longest_step_s:.0f} ms without yielding, while other units "
                         f"waited up to {lost:.2f} s to run"),
                fix=offload_fix(task, place),
                savings_s=savings,
                evidence={"units": [unit_label(task)], "compute_s": round(compute, 6), "held_s": round(held, 6),
                          "longest_step_s": round(task.longest_step_s, 6), "others_scheduling_s": round(lost, 6),
                          "sampled_cpu_s": round(place.cpu_s, 6), "savings_formula": SAVINGS_FORMULA},
            )
