"""What a user span costs: ``with advisor.span(...)`` per call, with no profiler, under the
light profiler in a thread and in an asyncio task, and with the OpenTelemetry export on.

Each variant times N empty spans and N iterations of the same loop without the span, in
interleaved rounds (best of each kept: the machine is shared), and prints the difference
per call in microseconds. Nothing here is a test: the figures go to the README.

    python benchmarks/spans_overhead.py [--calls 50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable

import advisor


def loop_bare(calls: int) -> float:
    begin = time.perf_counter()
    for _ in range(calls):
        pass
    return time.perf_counter() - begin


def loop_spans(calls: int) -> float:
    span = advisor.span
    begin = time.perf_counter()
    for _ in range(calls):
        with span("unit-of-work"):
            pass
    return time.perf_counter() - begin


def in_task(function: Callable[[int], float], calls: int) -> float:
    async def run() -> float:
        return function(calls)

    return asyncio.run(run())


async def steps_bare(calls: int) -> float:
    begin = time.perf_counter()
    for _ in range(calls):
        await asyncio.sleep(0)
    return time.perf_counter() - begin


async def steps_spans(calls: int) -> float:
    span = advisor.span
    begin = time.perf_counter()
    for _ in range(calls):
        with span("unit-of-work"):
            await asyncio.sleep(0)
    return time.perf_counter() - begin


def awaiting(calls: int, rounds: int) -> float:
    """A span around one await per call: the task's steps are short, as in real programs."""
    bare = spans = float("inf")
    for _ in range(rounds):
        bare = min(bare, asyncio.run(steps_bare(calls)))
        spans = min(spans, asyncio.run(steps_spans(calls)))
    return max(0.0, spans - bare) / calls * 1e6


def per_call_us(calls: int, rounds: int, timed: Callable[[Callable[[int], float], int], float]) -> float:
    bare = spans = float("inf")
    for _ in range(rounds):
        bare = min(bare, timed(loop_bare, calls))
        spans = min(spans, timed(loop_spans, calls))
    return max(0.0, spans - bare) / calls * 1e6


def direct(function: Callable[[int], float], calls: int) -> float:
    return function(calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    figures: dict[str, float] = {}
    figures["no profiler"] = per_call_us(options.calls, options.rounds, direct)
    with advisor.Profiler("light", calibrate=False, gevent=False):
        figures["light, thread"] = per_call_us(options.calls, options.rounds, direct)
        figures["light, asyncio task, one long step"] = per_call_us(options.calls, options.rounds, in_task)
        figures["light, asyncio task, around an await"] = awaiting(options.calls // 5, options.rounds)
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from advisor.export.otel import install
    except ImportError:
        pass
    else:
        provider = TracerProvider()
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        remove = install(provider)
        try:
            with advisor.Profiler("light", calibrate=False, gevent=False):
                figures["light + OpenTelemetry, around an await"] = awaiting(options.calls // 5, options.rounds)
        finally:
            remove()
            provider.shutdown()
    print(json.dumps({name: round(value, 3) for name, value in figures.items()}, indent=2))
    for name, value in figures.items():
        print(f"{name:<40} {value:8.3f} µs per span")


if __name__ == "__main__":
    main()
