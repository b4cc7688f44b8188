"""Ground truth measured inside a test program, next to the work it describes.

    with groundtruth.phase("fetcher", "io"):
        reply = await reader.readline()

``compute`` is the thread's CPU time (``thread_time``) over the phase; ``io`` and
``waiting`` are its wall time (``perf_counter``), a timer wait capped at its nominal
length with ``cap=`` (the rest of it was the unit being ready but not running).
``blocking=True`` adds the phase's whole wall time to the unit's blocking time too (a
blocking call made while holding the event loop). A unit's wall time runs from
``begin(unit)`` (or its first phase) to ``end(unit)`` (or its last phase); what is in none
of the three sums is scheduling. ``save()`` writes everything to truth.json in the
working directory.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

CATEGORIES = ("compute", "io", "waiting")

_units: dict[str, dict[str, float]] = {}
_extra: dict[str, float] = {}
_lock = threading.Lock()


def _unit(name: str) -> dict[str, float]:
    unit = _units.get(name)
    if unit is None:
        unit = _units[name] = {"compute_s": 0.0, "io_s": 0.0, "waiting_s": 0.0, "blocking_s": 0.0,
                               "start": -1.0, "end": -1.0}
    return unit


def begin(name: str) -> None:
    """The unit is created now (an asyncio task just before create_task, a thread as it starts)."""
    now = time.perf_counter()
    with _lock:
        unit = _unit(name)
        if unit["start"] < 0.0 or now < unit["start"]:
            unit["start"] = now


def end(name: str) -> None:
    now = time.perf_counter()
    with _lock:
        unit = _unit(name)
        unit["end"] = max(unit["end"], now)


def note(key: str, value: float) -> None:
    """Any other measured number the test needs (e.g. the process CPU over a window)."""
    with _lock:
        _extra[key] = _extra.get(key, 0.0) + value


@contextmanager
def phase(name: str, category: str, cap: float | None = None, blocking: bool = False) -> Iterator[None]:
    if category not in CATEGORIES:
        raise ValueError(category)
    cpu0 = time.thread_time()
    wall0 = time.perf_counter()
    try:
        yield
    finally:
        wall1 = time.perf_counter()
        cpu1 = time.thread_time()
        if category == "compute":
            amount = cpu1 - cpu0
        else:
            amount = wall1 - wall0
            if cap is not None:
                amount = min(amount, cap)
        with _lock:
            unit = _unit(name)
            unit[f"{category}_s"] += amount
            if blocking:
                unit["blocking_s"] += wall1 - wall0
            if unit["start"] < 0.0:
                unit["start"] = wall0
            unit["end"] = max(unit["end"], wall1)


def burn(seconds: float) -> int:
    """Pure-Python work until this thread has used `seconds` of CPU."""
    start = time.thread_time()
    total = 0
    while time.thread_time() - start < seconds:
        for value in range(200):
            total += value * value
    return total


def results() -> dict[str, dict[str, float]]:
    with _lock:
        out: dict[str, dict[str, float]] = {}
        for name, unit in _units.items():
            wall = unit["end"] - unit["start"]
            busy = unit["compute_s"] + unit["io_s"] + unit["waiting_s"]
            out[name] = {"compute_s": unit["compute_s"], "io_s": unit["io_s"], "waiting_s": unit["waiting_s"],
                         "blocking_s": unit["blocking_s"], "wall_s": wall, "scheduling_s": max(0.0, wall - busy)}
        return out


def save(path: str = "truth.json") -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"units": results(), "extra": dict(_extra)}, out, indent=2, sort_keys=True)
