"""Scale workload: many asyncio tasks, all alive at once or short-lived in batches.

    python many_tasks.py concurrent N        N tasks created, all suspended at once, then released
    python many_tasks.py batches N BATCH     N short-lived tasks, at most BATCH alive at a time

The program reports on stdout, one ``key=value`` a line, ``elapsed=<seconds>`` last:
``peak_rss_kb`` (its own ``ru_maxrss`` at the end of the program, before any profiler
writes its report), ``rss_kb_alive`` (resident memory with every task alive; concurrent)
or ``rss_kb_first_batch`` / ``rss_kb_last_batch`` (resident memory after the first and the
last batch finished; batches), ``tasks`` (how many finished) and ``cpu`` (process CPU
seconds over the same span as ``elapsed``, all threads).
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time


def rss_kb() -> int:
    """Resident memory now, in KiB (Linux), or -1."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return -1
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


async def holder(gate: asyncio.Event, started: list[int]) -> int:
    started[0] += 1
    await gate.wait()
    return 1


async def concurrent(count: int) -> dict[str, int]:
    gate = asyncio.Event()
    started = [0]
    tasks = [asyncio.create_task(holder(gate, started)) for _ in range(count)]
    while started[0] < count:
        await asyncio.sleep(0)
    alive = rss_kb()
    gate.set()
    done = sum(await asyncio.gather(*tasks))
    return {"tasks": done, "rss_kb_alive": alive}


async def short_lived() -> int:
    await asyncio.sleep(0)
    return 1


async def batches(count: int, batch: int) -> dict[str, int]:
    done = 0
    first = last = -1
    while done < count:
        size = min(batch, count - done)
        tasks = [asyncio.create_task(short_lived()) for _ in range(size)]
        done += sum(await asyncio.gather(*tasks))
        del tasks
        last = rss_kb()
        if first < 0:
            first = last
    return {"tasks": done, "rss_kb_first_batch": first, "rss_kb_last_batch": last}


if __name__ == "__main__":
    how = sys.argv[1]
    count = int(sys.argv[2])
    started_at = time.perf_counter()
    cpu_started = time.process_time()
    if how == "concurrent":
        facts = asyncio.run(concurrent(count))
    elif how == "batches":
        facts = asyncio.run(batches(count, int(sys.argv[3])))
    else:
        raise SystemExit(f"unknown mode {how!r}: concurrent or batches")
    elapsed = time.perf_counter() - started_at
    cpu = time.process_time() - cpu_started
    facts["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for key, value in facts.items():
        print(f"{key}={value}")
    print(f"cpu={cpu:.6f}")
    print(f"elapsed={elapsed:.6f}")
