"""Fixtures of the probe tests."""

from __future__ import annotations

from collections.abc import Iterator

import greenlet
import pytest


@pytest.fixture(autouse=True)
def greenlet_trace_restored() -> Iterator[None]:
    """Whatever a test (or a bug) leaves installed, the next test starts with the same trace."""
    before = greenlet.gettrace()
    try:
        yield
    finally:
        greenlet.settrace(before)
