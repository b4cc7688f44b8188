"""Scale workload: many gevent greenlets, all alive at once or short-lived in batches.

    python many_greenlets.py concurrent N        N greenlets spawned, all waiting at once, then released
    python many_greenlets.py batches N BATCH     N short-lived greenlets, at most BATCH alive at a time

It reports on stdout what ``many_tasks.py`` reports (``key=value`` lines, ``elapsed=`` last):
``peak_rss_kb``, ``rss_kb_alive`` or ``rss_kb_first_batch`` / ``rss_kb_last_batch``,
``greenlets`` (how many finished) and ``cpu``.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import gevent
from gevent.event import Event


def rss_kb() -> int:
    """Resident memory now, in KiB (Linux), or -1."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return -1
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def holder(gate: Event, started: list[int]) -> int:
    started[0] += 1
    gate.wait()
    return 1


def concurrent(count: int) -> dict[str, int]:
    gate = Event()
    started = [0]
    greenlets = [gevent.spawn(holder, gate, started) for _ in range(count)]
    while started[0] < count:
        gevent.sleep(0)
    alive = rss_kb()
    gate.set()
    gevent.joinall(greenlets)
    return {"greenlets": sum(glet.value for glet in greenlets), "rss_kb_alive": alive}


def short_lived() -> int:
    gevent.sleep(0)
    return 1


def batches(count: int, batch: int) -> dict[str, int]:
    done = 0
    first = last = -1
    while done < count:
        size = min(batch, count - done)
        greenlets = [gevent.spawn(short_lived) for _ in range(size)]
        gevent.joinall(greenlets)
        done += sum(glet.value for glet in greenlets)
        del greenlets
        last = rss_kb()
        if first < 0:
            first = last
    return {"greenlets": done, "rss_kb_first_batch": first, "rss_kb_last_batch": last}


if __name__ == "__main__":
    how = sys.argv[1]
    count = int(sys.argv[2])
    started_at = time.perf_counter()
    cpu_started = time.process_time()
    if how == "concurrent":
        facts = concurrent(count)
    elif how == "batches":
        facts = batches(count, int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {how!r}: concurrent or batches")
    elapsed = time.perf_counter() - started_at
    cpu = time.process_time() - cpu_started
    facts["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for key, value in facts.items():
        print(f"{key}={value}")
    print(f"cpu={cpu:.6f}")
    print(f"elapsed={elapsed:.6f}")
