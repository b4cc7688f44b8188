"""A small status service: it answers health checks while it builds a nightly report.

`build_report()` is a coroutine, but the number crunching in `summarize()` runs right
on the event loop, ~0.5 s without a single await: the health checks that come due
meanwhile all wait, and the run takes the sum of both. advisor reports
cpu-in-event-loop at the call that does the work on the loop.
"""

import asyncio
import time

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


async def build_report(readings: list[int]) -> dict[str, float]:
    await asyncio.sleep(0.01)  # the readings arrive
    return summarize(readings)  # expect: cpu-in-event-loop


async def health_checks(latencies: list[float]) -> None:
    for _ in range(CHECKS):
        due = time.perf_counter() + PERIOD
        await asyncio.sleep(PERIOD)
        latencies.append(time.perf_counter() - due)


async def main() -> None:
    readings = [(n * 7919) % 10007 for n in range(200_000)]
    latencies: list[float] = []
    report, _ = await asyncio.gather(build_report(readings), health_checks(latencies))
    print(f"trend {report['trend']:.3f}; worst health-check delay {1000 * max(latencies):.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
