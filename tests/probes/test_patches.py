"""Hooks on library attributes taken off in any order (probes/patches.py): whatever order
three captures stop in, every call reaches the original once, only the hooks still on count
it, and the original is back when all have stopped."""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable
from typing import Any

import pytest

from advisor.probes.patches import Switch, mark, take_off


def original_run(calls: list[str]) -> None:
    calls.append("original")


Library = types.SimpleNamespace(run=original_run)  # stands for asyncio.events.Handle and the like


class Probe:
    def __init__(self, name: str) -> None:
        self.name = name
        self.switch = Switch()
        self.original: Any = None
        self.hook: Any = None

    def start(self) -> None:
        original = Library.run
        switch, name = self.switch, self.name

        def hook(calls: list[str]) -> None:
            if switch.on:
                calls.append(name)
            original(calls)

        self.original, self.hook = original, mark(hook, original, switch)
        Library.run = self.hook

    def stop(self) -> None:
        take_off(Library, "run", self.hook, self.original, self.switch)


@pytest.fixture(autouse=True)
def library() -> Any:
    yield
    Library.run = original_run


def call() -> list[str]:
    calls: list[str] = []
    Library.run(calls)
    return calls


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_any_stop_order_gives_the_original_back(order: tuple[int, ...]) -> None:
    probes = [Probe(name) for name in "abc"]
    for probe in probes:
        probe.start()
    assert call() == ["c", "b", "a", "original"]
    running = {"a", "b", "c"}
    for index in order:
        probes[index].stop()
        running.discard(probes[index].name)
        calls = call()
        assert calls[-1] == "original" and calls.count("original") == 1
        assert sorted(calls[:-1]) == sorted(running)
    assert Library.run is original_run


def test_a_hook_not_on_top_is_turned_off_and_skipped_later() -> None:
    first, second = Probe("first"), Probe("second")
    first.start()
    second.start()
    first.stop()
    assert Library.run is second.hook  # left in place, the first one's under it passing through
    assert call() == ["second", "original"]
    second.stop()
    assert Library.run is original_run  # not the first one's stopped hook


def test_a_hook_a_program_put_over_ours_stays() -> None:
    probe = Probe("ours")
    probe.start()
    calls_seen: list[str] = []
    below: Callable[..., None] = Library.run

    def programs(calls: list[str]) -> None:
        calls_seen.append("program")
        below(calls)

    Library.run = programs
    probe.stop()
    assert Library.run is programs
    assert call() == ["original"] and calls_seen == ["program"]
