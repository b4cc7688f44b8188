"""100,000 short greenlets under the greenlet probe: memory stays bounded by folding."""

from __future__ import annotations

import gevent

from advisor.probes.greenlet_probe import GreenletProbe
from advisor.probes.sampler import Sampler
from advisor.probes.threads import ThreadRegistry

COUNT = 100_000
BATCH = 10_000


def job(number: int) -> int:
    gevent.sleep(0)
    return number


def test_100k_greenlets_fold_into_one_entry_and_leave_nothing_live() -> None:
    threads = ThreadRegistry()
    sampler = Sampler(threads)
    probe = GreenletProbe(sampler, threads)
    probe.start()
    try:
        done = 0
        for start in range(0, COUNT, BATCH):
            batch = [gevent.spawn(job, number) for number in range(start, start + BATCH)]
            gevent.joinall(batch)
            done += sum(greenlet.value for greenlet in batch)
            # finished greenlets are folded as they end: nothing is kept per finished unit
            assert len(probe.ledger.live) <= 1
            assert len(probe.ledger.refs) <= 1
    finally:
        probe.stop()
    assert done == sum(range(COUNT))
    records = probe.drain()
    jobs = [record for record in records if record.target.endswith("job")]
    assert len(jobs) == 1
    assert jobs[0].count == COUNT
    # every greenlet ran two steps (start, and after its sleep(0)) and waited once
    assert jobs[0].steps == 2 * COUNT
    assert len(probe.ledger.finished) <= 4
