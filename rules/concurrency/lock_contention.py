"""ADV104 lock-contention: units that spend a large share of their time waiting for a lock."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from advisor.frames import is_user_file
from advisor.profile import Task
from advisor.source import call_name, calls_on_line, parse_file, statement_at

from ..base import Advice, Rule, RuleContext, unit_label

SAVINGS_FORMULA = ("longest wait of one unit at this lock x (1 - CPU share of the waiting units' busy time): "
                   "the part of the critical sections that is I/O or waiting, which could run outside the lock")
# A thread blocked in a Python-level acquire (threading.Semaphore, Condition) shows this call.
PYTHON_LEVEL_ACQUIRE = ("Condition.wait",)
# What makes a lock (threading, asyncio, multiprocessing, gevent) and what a lock is called.
LOCK_TYPES = {"Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition"}
LOCK_WORDS = ("lock", "mutex", "sem", "cond")


@dataclass
class LockPlace:
    file: str
    line: int
    function: str
    lock: str
    awaited: bool  # an `async with` / `await ...acquire()` (else a thread's `with` / acquire)


@dataclass
class Contention:
    place: LockPlace
    waits: dict[str, float] = field(default_factory=dict)  # unit id -> seconds waited here
    units: dict[str, Task] = field(default_factory=dict)


def acquired_lock(file: str, line: int) -> tuple[str, bool] | None:
    """(the lock's text, awaited) when the line takes a lock: the header of a `with` /
    `async with` on an existing object (`with cache_lock:`, `async with self._sem:`), or
    a call of `.acquire()` (`await sem.acquire()`, `lock.acquire(timeout=1)`,
    `async with pool.acquire() as conn`). A `with` on a newly made object (`with open(...)`,
    `with ThreadPoolExecutor() as pool`) is not a lock."""
    statement = statement_at(file, line)
    if isinstance(statement, (ast.With, ast.AsyncWith)) and statement.lineno <= line < statement.body[0].lineno:
        for item in statement.items:
            expr = item.context_expr
            if not expr.lineno <= line <= (expr.end_lineno or expr.lineno) and len(statement.items) > 1:
                continue
            if isinstance(expr, (ast.Name, ast.Attribute, ast.Subscript)):
                return ast.unparse(expr), isinstance(statement, ast.AsyncWith)
            if isinstance(expr, ast.Call) and call_name(expr).rsplit(".", 1)[-1] == "acquire":
                return ast.unparse(expr.func.value) if isinstance(expr.func, ast.Attribute) else ast.unparse(expr), \
                    isinstance(statement, ast.AsyncWith)
        return None
    for call in reversed(calls_on_line(file, line)):
        if call_name(call).rsplit(".", 1)[-1] == "acquire":
            owner = ast.unparse(call.func.value) if isinstance(call.func, ast.Attribute) else call_name(call)
            return owner, False
    return None


def looks_like_lock(file: str, lock: str) -> bool:
    """Whether the object of a `with` is a lock: its name says so (`cache_lock`, `self._sem`),
    or the file binds it to a lock (`cache_lock = threading.Lock()`, `self._locks =
    defaultdict(asyncio.Lock)` for `self._locks[key]`). A C-level `with` on anything else
    (`with conn:` of sqlite3 commits in its exit) looks the same in a sampled stack."""
    base = lock.split("[", 1)[0]
    if any(word in base.rsplit(".", 1)[-1].lower() for word in LOCK_WORDS):
        return True
    parsed = parse_file(file)
    if parsed is None:
        return False
    for node in ast.walk(parsed.tree):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if not any(ast.unparse(target) in (lock, base) for target in targets):
            continue
        for part in ast.walk(value):
            if isinstance(part, (ast.Name, ast.Attribute)) and ast.unparse(part).rsplit(".", 1)[-1] in LOCK_TYPES:
                return True
    return False


def _place(file: str, line: int, function: str, cache: dict[tuple[str, int], LockPlace | None]) -> LockPlace | None:
    key = (file, line)
    if key not in cache:
        found = acquired_lock(file, line) if file and is_user_file(file) else None
        cache[key] = LockPlace(file, line, function, found[0], found[1]) if found else None
    return cache[key]


def task_lock_waits(task: Task, cache: dict[tuple[str, int], LockPlace | None]) -> list[tuple[LockPlace, float]]:
    """An asyncio task's lock wait (``lock_wait_s``, measured) placed on the await sites
    that acquire: the innermost program frame of a site's chain is an `async with <lock>`
    or an `await <x>.acquire()`, and the site waited without I/O. The sites do not say
    which of their waiting was for a lock when ``lock_s`` is 0 (older reports), so the task's
    total is then given to them in order of their waiting time; measured ``lock_s`` wins."""
    placed: list[tuple[LockPlace, float]] = []
    candidates = []
    for site in task.awaits:
        if not site.chain:
            continue
        inner = site.chain[-1]
        place = _place(inner.file, inner.line, inner.function, cache)
        measured = site.lock_s
        if measured > 0.0 and place is not None:
            placed.append((place, measured))
            continue
        if place is not None and site.io_s <= 0.0 and site.waiting_s > 0.0:
            candidates.append((site.waiting_s, place))
    if placed:
        return placed
    remaining = task.lock_wait_s
    # the objects that are locks by name or binding first (an `async with server:` waits in its exit too)
    for waiting, place in sorted(candidates, key=lambda item: (not looks_like_lock(item[1].file, item[1].lock),
                                                               -item[0])):
        if remaining <= 0.0:
            break
        given = min(waiting, remaining)
        placed.append((place, given))
        remaining -= given
    return placed


def thread_lock_waits(context: RuleContext, task: Task,
                      cache: dict[tuple[str, int], LockPlace | None]) -> list[tuple[LockPlace, float]]:
    """A thread's waits for locks, per acquiring line: its blocking sites in an `acquire`
    (or a `with` on a threading.Semaphore / Condition), and its sampled stacks stopped right
    on a program line that takes a lock (a C-level `with lock:` shows no call of its own;
    the object must be a lock by its name or its binding in the file, since the exit of a
    C-level context manager is sampled on the same line). Sampled off-CPU seconds are
    scaled to the thread's measured time off the CPU."""
    samples = context.report.samples
    off_total = sum(stack.off_cpu_s for stack in samples.stacks if stack.unit == task.id)
    rest = max(0.0, task.wall_s - task.cpu_s)
    scale = rest / off_total if off_total > 0.0 else 1.0
    from_sites: dict[tuple[str, int], float] = defaultdict(float)
    from_stacks: dict[tuple[str, int], float] = defaultdict(float)
    places: dict[tuple[str, int], LockPlace] = {}
    for site in task.blocking:
        if site.kind != "waiting" or not site.file:
            continue
        place = _place(site.file, site.line, site.function, cache)
        if place is None:
            continue
        last = site.call.rsplit(".", 1)[-1]
        if last == "acquire" or site.call.endswith(PYTHON_LEVEL_ACQUIRE):
            from_sites[(site.file, site.line)] += site.seconds * scale
            places[(site.file, site.line)] = place
    for stack in samples.stacks:
        if stack.unit != task.id or stack.off_cpu_s <= 0.0 or stack.state not in ("waiting", "scheduling"):
            continue
        if not stack.frames:
            continue
        leaf = samples.frames[stack.frames[0]]
        if not is_user_file(leaf.file):
            continue  # blocked inside a library: its own frames say what (the blocking sites)
        place = _place(leaf.file, leaf.line, leaf.function, cache)
        if place is None or not looks_like_lock(place.file, place.lock):
            continue
        from_stacks[(leaf.file, leaf.line)] += stack.off_cpu_s * scale
        places[(leaf.file, leaf.line)] = place
    return [(places[key], max(from_sites.get(key, 0.0), from_stacks.get(key, 0.0))) for key in places]


class LockContentionRule(Rule):
    """
    ## What it does
    Finds locks and semaphores that the program's tasks or threads spend a large share of
    their time waiting for, and points at the line that acquires (`with cache_lock:`,
    `async with self._lock:`, `sem.acquire()`). For asyncio tasks the wait is measured
    (time awaiting `asyncio.Lock` / `Semaphore` / `Condition` acquire) and placed on the
    task's await sites that acquire; for threads it comes from the blocking sites in an
    `acquire` and from the sampled stacks stopped on a `with <lock>:` line.

    The estimated saving is the longest wait of one unit at that lock (the wall time the
    queue added to the slowest of them) times the share of the waiting units' busy time
    that is not CPU: a critical section that awaits I/O or sleeps can give the lock back
    during that time, while CPU work under a lock is serialized anyway (by the GIL or the
    event loop). So a lock held across a 40 ms request by four threads saves about what
    three of them waited; a lock around pure computation saves little.

    ## Why is this bad?
    A lock held across I/O or an `await` turns concurrent code back into sequential code:
    every other worker queues behind the one request in flight, and adding workers adds
    nothing but waiting. Lock waits that dominate mean the critical section is too long or
    the lock too coarse.

    ## Example
    ```python
    def lookup(pair):
        with cache_lock:
            if pair not in cache:
                cache[pair] = fetch_rate(pair)  # a network round trip under the lock
            return cache[pair]
    ```

    ## Use instead
    ```python
    def lookup(pair):
        with cache_lock:
            if pair in cache:
                return cache[pair]
        rate = fetch_rate(pair)  # outside the lock
        with cache_lock:
            return cache.setdefault(pair, rate)
    ```
    (or one lock per key; in asyncio, never `await` I/O inside `async with lock:`. For a
    Semaphore that limits concurrency on purpose, raise its limit if the resource allows.)
    """

    slug = "lock-contention"
    code = "ADV104"
    summary = "time waiting on locks or semaphores dominates"
    family = "concurrency"
    default_severity = "medium"
    defaults = {"min_wait_s": 0.02, "min_share": 0.2}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        cache: dict[tuple[str, int], LockPlace | None] = {}
        contended: dict[tuple[str, int], Contention] = {}
        unit_waits: dict[str, float] = defaultdict(float)
        for task in context.tasks():
            if task.kind == "thread":
                waits = thread_lock_waits(context, task, cache)
            elif task.lock_wait_s > 0.0:
                waits = task_lock_waits(task, cache)
            else:
                continue
            for place, seconds in waits:
                if seconds <= 0.0:
                    continue
                entry = contended.setdefault((place.file, place.line), Contention(place))
                entry.waits[task.id] = entry.waits.get(task.id, 0.0) + seconds
                entry.units[task.id] = task
                unit_waits[task.id] += seconds
        for entry in contended.values():
            advice = self._advise(context, entry, unit_waits)
            if advice is not None:
                yield advice

    def _advise(self, context: RuleContext, entry: Contention, unit_waits: dict[str, float]) -> Advice | None:
        units = list(entry.units.values())
        total = sum(entry.waits.values())
        walls = sum(task.wall_s for task in units)
        if walls <= 0.0 or total / walls < context.option(self, "min_share"):
            return None
        # a folded entry holds several units: each waited its share of the sum (a lower
        # bound of the longest one's wait when they queued in turn)
        longest = min(context.wall_s, max(entry.waits[task.id] / max(1, task.count) for task in units))
        if longest < context.option(self, "min_wait_s"):
            return None
        compute = sum(task.breakdown.compute_s for task in units)
        busy = sum(max(0.0, task.wall_s - max(task.lock_wait_s, unit_waits[task.id]) - task.breakdown.scheduling_s)
                   for task in units)
        cpu_share = min(1.0, compute / busy) if busy > 0.0 else 1.0
        savings = longest * (1.0 - cpu_share)
        place = entry.place
        count = sum(task.count for task in units)
        labels = []
        for task in units:
            if unit_label(task) not in labels:
                labels.append(unit_label(task))
        held = "await I/O or sleep" if place.awaited else "do I/O or sleep"
        if place.awaited:
            fix = (f"don't await I/O while holding `{place.lock}`: take it only around the shared-state "
                   f"update (read, release, await the call, then take it again to store), or use one lock per key")
        else:
            fix = (f"hold `{place.lock}` only around the shared-state update: do the slow call outside the `with` "
                   f"(check under the lock, release, call, take it again to store), or use one lock per key")
        if "sem" in place.lock.lower() or "limit" in place.lock.lower():
            fix += "; if it is a Semaphore limiting concurrency on purpose, raise its limit if the resource allows"
        return Advice(
            file=place.file, line=place.line, function=place.function,
            message=(f"{count} {'units' if count != 1 else 'unit'} waited {total:.2f} s for `{place.lock}` here "
                     f"({100 * total / walls:.0f}% of their time, up to {longest:.2f} s each); "
                     f"the holders {held} inside the critical section {100 * (1 - cpu_share):.0f}% of their busy time"),
            fix=fix,
            savings_s=savings,
            evidence={"units": labels, "lock": place.lock, "lock_wait_s": round(total, 6),
                      "longest_wait_s": round(longest, 6), "cpu_share": round(cpu_share, 4),
                      "savings_formula": SAVINGS_FORMULA},
        )
