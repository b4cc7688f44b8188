"""The live status line's pieces: when it is wanted, what it says, how it draws and erases,
and the capture's read of units alive and samples."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from advisor.capture import Capture, CaptureStatus
from advisor.live_status import ERASE_LINE, LiveStatus, elapsed_text, live_status, status_text, status_wanted

WAIT_S = 20.0  # bound on waiting for a background thread; never a timing assertion


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("environ", "wanted"), [
    ({"TERM": "xterm"}, True),
    ({}, True),
    ({"TERM": "xterm", "CI": "true"}, False),
    ({"TERM": "xterm", "CI": "1"}, False),
    ({"TERM": "xterm", "CI": ""}, True),
    ({"TERM": "dumb"}, False),
])
def test_wanted_on_a_terminal_unless_ci_or_dumb(environ: dict[str, str], wanted: bool) -> None:
    assert status_wanted(FakeTerminal(), environ) is wanted


def test_never_wanted_on_a_file_a_pipe_or_a_closed_stream() -> None:
    assert status_wanted(io.StringIO(), {"TERM": "xterm"}) is False
    read, write = os.pipe()
    with os.fdopen(read), os.fdopen(write, "w") as pipe_out:
        assert status_wanted(pipe_out, {"TERM": "xterm"}) is False
    closed_pipe = os.fdopen(os.pipe()[1], "w")
    closed_pipe.close()
    assert status_wanted(closed_pipe, {"TERM": "xterm"}) is False
    assert live_status(lambda: CaptureStatus(0.0, 1, 0), io.StringIO(), {"TERM": "xterm"}) is None


@pytest.mark.parametrize(("seconds", "text"), [(0.0, "0.0 s"), (12.34, "12.3 s"), (59.94, "59.9 s"),
                                               (61.0, "1:01"), (3725.0, "1:02:05")])
def test_elapsed_reads_as_seconds_then_minutes(seconds: float, text: str) -> None:
    assert elapsed_text(seconds) == text


def test_the_line_says_elapsed_units_and_samples_in_ascii() -> None:
    assert status_text(CaptureStatus(3.25, 12, 340)) == "advisor: 3.2 s elapsed, 12 units alive, 340 samples"
    assert status_text(CaptureStatus(0.5, 1, 0)) == "advisor: 0.5 s elapsed, 1 unit alive, 0 samples"
    assert status_text(CaptureStatus(1e6, 10**6, 10**9)).isascii()


def _read_until(fd: int, wanted: bytes) -> bytes:
    seen = b""
    deadline = time.monotonic() + WAIT_S
    while wanted not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(fd, 4096)
    return seen


def test_draws_on_the_descriptor_from_its_own_thread_and_erases_on_stop() -> None:
    read, write = os.pipe()
    reads: list[int] = []
    threads: list[int] = []

    def status() -> CaptureStatus:
        reads.append(threading.get_ident())
        return CaptureStatus(1.0, 2, len(reads))

    live = LiveStatus(status, write, interval=0.01, on_thread=threads.append)
    try:
        live.start()
        assert threads and threads[0] != threading.get_ident()  # known before start() returns
        seen = _read_until(read, b"2 samples")
        live.stop()
        live.stop()  # idempotent: the report path and the signal path may both stop it
        os.close(write)
        seen += os.read(read, 1 << 16)
    finally:
        os.close(read)
    assert seen.startswith(b"\radvisor: 1.0 s elapsed, 2 units alive, 1 samples\x1b[K")
    assert seen.endswith(ERASE_LINE.encode())
    assert set(reads) == {threads[0]}
    # a pipe has no size: the line is cut to the usual 80 columns at most
    assert all(len(part) <= 80 + 3 for part in seen.split(b"\r"))


def test_a_display_that_cannot_write_stops_quietly() -> None:
    read, write = os.pipe()
    os.close(read)
    os.close(write)
    live = LiveStatus(lambda: CaptureStatus(0.0, 1, 0), write, interval=0.01)
    live.start()
    live.stop()  # the thread ended on its own (EBADF); stop neither raises nor hangs


def test_capture_status_counts_live_threads_and_samples() -> None:
    capture = Capture(mode="light", sample_rate=200.0)
    assert capture.status() == CaptureStatus(0.0, 0, 0)
    release = threading.Event()
    capture.start()
    try:
        workers = [threading.Thread(target=release.wait, args=(WAIT_S,)) for _ in range(2)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + WAIT_S
        while capture.status().samples < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        now = capture.status()
        assert now.units_alive == 3  # this thread (adopted as the main unit) and the two workers
        assert now.elapsed_s > 0.0
        release.set()
        for worker in workers:
            worker.join()
        assert capture.status().units_alive == 1
    finally:
        release.set()
        capture.stop()


def test_an_ignored_thread_is_never_a_unit() -> None:
    capture = Capture(mode="light", sample_rate=200.0)
    started, release = threading.Event(), threading.Event()
    idents: list[int] = []

    def own() -> None:
        idents.append(threading.get_ident())
        capture.ignore_thread(threading.get_ident())
        started.set()
        release.wait(WAIT_S)

    helper = threading.Thread(target=own)
    helper.start()  # started before the capture, as the CLI starts its status thread
    started.wait(WAIT_S)
    capture.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while capture.sampler.ticks < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert idents[0] not in capture.threads.alive
    finally:
        release.set()
        helper.join()
        raw = capture.stop()
    assert all(record.kind != "thread" or record.name != helper.name for record in raw.units)
