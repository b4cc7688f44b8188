"""Capturing a busy thread's stacks while the collector runs finalizers in the sampler.

The sampler wraps another thread's frames in frame objects; an allocation can start a
collection whose finalizers run Python code in the sampling thread, and Python code hands
the GIL over when asked: the other thread then ran on and freed the frame being wrapped (a
greenlet that ends frees its frames). A gevent server sampled while its collector ran such
finalizers crashed in capture_stacks; the program below crashed within 0.1 s every time
before the capture held collections off. It runs in a child process, so that a crash fails
the test instead of ending the run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from advisor.probes import sampler

PROGRAM = textwrap.dedent("""
    import gc, json, sys, threading, time
    import greenlet
    from advisor.probes import sampler

    capture = getattr(sampler, sys.argv[1])
    gc.set_threshold(10, 2, 2)   # a collection every few allocations
    sys.setswitchinterval(1e-5)  # as the sampler asks for: the GIL changes hands at once
    stop = time.monotonic() + float(sys.argv[2])


    class Finalized:
        def __init__(self):
            self.me = self  # a cycle: the collector frees it, running __del__

        def __del__(self):
            total = 0
            for number in range(300):  # bytecode enough to hand the GIL over
                total += number


    def churn(depth, parent):
        if depth:
            return churn(depth - 1, parent) + 1
        Finalized()
        parent.switch()
        return 0


    seen = {"captures": 0, "deepest": 0}


    def sample():
        skip = {threading.get_ident()}
        while time.monotonic() < stop:
            for stack, *_ in capture(skip, None, 128).values():
                seen["deepest"] = max(seen["deepest"], sum(code.co_name == "churn" for code, _ in stack))
            seen["captures"] += 1


    thread = threading.Thread(target=sample)
    thread.start()
    main = greenlet.getcurrent()
    while time.monotonic() < stop:  # greenlets that start, park in deep stacks and end
        alive = [greenlet.greenlet(churn) for _ in range(8)]
        for index, glet in enumerate(alive):
            glet.switch(5 + 7 * index, main)
        for glet in alive:
            glet.switch()
    thread.join()
    print(json.dumps(seen))
""")


@pytest.mark.parametrize("capture", ["capture_stacks", "capture_stacks_in_python"])
def test_stacks_are_captured_safely_while_finalizers_run(capture: str) -> None:
    if capture == "capture_stacks" and sampler.capture_stacks is sampler.capture_stacks_in_python:
        pytest.skip("_stacks.c was not built")
    run = subprocess.run([sys.executable, "-X", "faulthandler", "-c", PROGRAM, capture, "2.0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    # the stacks were read while the greenlets churned: parked 5 to 54 frames deep
    assert seen["captures"] >= 20, seen
    assert 5 <= seen["deepest"] <= 55, seen
