"""blocking-sleep fixes: time.sleep in an async def becomes await asyncio.sleep, nowhere else."""

from __future__ import annotations

from collections.abc import Callable


def test_sleep_in_async_def_is_awaited_and_the_unused_import_goes(fixed: Callable[..., str],
                                                                   code: Callable[[str], str]) -> None:
    before = """
        import asyncio
        import time


        async def poll(job):
            while not job.done():
                # wait a little between checks
                time.sleep(0.2)  # <-
    """
    assert fixed(before, "blocking-sleep") == code("""
        import asyncio


        async def poll(job):
            while not job.done():
                # wait a little between checks
                await asyncio.sleep(0.2)  # <-
    """)


def test_asyncio_import_is_added_and_time_kept_when_still_used(fixed: Callable[..., str],
                                                               code: Callable[[str], str]) -> None:
    before = """
        import time


        async def step(pause: float) -> float:
            started = time.monotonic()
            time.sleep( pause )  # <-
            return time.monotonic() - started
    """
    assert fixed(before, "blocking-sleep") == code("""
        import asyncio
        import time


        async def step(pause: float) -> float:
            started = time.monotonic()
            await asyncio.sleep( pause )  # <-
            return time.monotonic() - started
    """)


def test_from_time_import_sleep_is_recognised(fixed: Callable[..., str], code: Callable[[str], str]) -> None:
    before = """
        import asyncio
        from time import sleep


        async def wait():
            sleep(1)  # <-
    """
    assert fixed(before, "blocking-sleep") == code("""
        import asyncio


        async def wait():
            await asyncio.sleep(1)  # <-
    """)


def test_sleep_in_a_sync_function_is_refused(refused: Callable[..., str]) -> None:
    reason = refused("""
        import time

        def pause():
            time.sleep(0.1)  # <-
    """, "blocking-sleep")
    assert "plain function pause()" in reason


def test_sleep_in_a_sync_function_run_with_to_thread_is_refused(refused: Callable[..., str]) -> None:
    # the sleep blocks only the worker thread: awaiting it would need pause() to be a coroutine,
    # and to_thread(pause) would then return an un-awaited coroutine
    reason = refused("""
        import asyncio
        import time

        def pause():
            time.sleep(0.1)  # <-

        async def main():
            await asyncio.to_thread(pause)
    """, "blocking-sleep")
    assert "plain function pause()" in reason


def test_sleep_in_a_sync_function_nested_in_a_coroutine_is_refused(refused: Callable[..., str]) -> None:
    reason = refused("""
        import time

        async def outer():
            def inner():
                time.sleep(0.1)  # <-
            inner()
    """, "blocking-sleep")
    assert "plain function inner()" in reason


def test_a_sleep_whose_value_is_used_or_that_is_not_time_sleep_is_refused(refused: Callable[..., str]) -> None:
    assert "value is used" in refused("""
        import time

        async def f():
            x = time.sleep(1)  # <-
    """, "blocking-sleep")
    assert "no single time.sleep" in refused("""
        import gevent

        async def f():
            gevent.sleep(1)  # <-
    """, "blocking-sleep")


def test_a_local_name_asyncio_is_not_shadowed(refused: Callable[..., str]) -> None:
    reason = refused("""
        import time

        async def f(asyncio):
            time.sleep(1)  # <-
    """, "blocking-sleep")
    assert "asyncio means something else" in reason
