"""A small status service: it answers health checks while it builds a nightly report.

The same program as bad.py, with the number crunching handed to a process pool:
`build_report()` awaits `loop.run_in_executor(pool, summarize, readings)`, so the event
loop stays free for the health checks and the two overlap. advisor reports nothing.
"""

import asyncio
import time
from concurrent.futures import ProcessPoolExecutor

CHECKS = 32
PERIOD = 0.02


def summarize(readings: list[int]) -> dict[str, float]:
    """Mean, spread and a smoothed trend of the readings (plain Python, CPU-bound)."""
    mean = sum(readings) / len(readings)
    spread = sum((value - mean) ** 2 for value in readings) / len(readings)
    trend = 0.0
    for _ in range(30):
        for value in readings:
            trend = 0.999 * trend + 0.001 * (value % 97)
    return {"mean": mean, "spread": spread, "trend": trend}


async def build_report(pool: ProcessPoolExecutor, readings: list[int]) -> dict[str, float]:
    await asyncio.sleep(0.01)  # the readings arrive
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, summarize, readings)


async def health_checks(latencies: list[float]) -> None:
    for _ in range(CHECKS):
        due = time.perf_counter() + PERIOD
        await asyncio.sleep(PERIOD)
        latencies.append(time.perf_counter() - due)


async def main() -> None:
    readings = [(n * 7919) % 10007 for n in range(200_000)]
    latencies: list[float] = []
    with ProcessPoolExecutor(max_workers=1) as pool:
        report, _ = await asyncio.gather(build_report(pool, readings), health_checks(latencies))
    print(f"trend {report['trend']:.3f}; worst health-check delay {1000 * max(latencies):.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
