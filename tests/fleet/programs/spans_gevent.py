"""Ground truth for spans in gevent: 3 greenlets sleep 50 ms in a span and burn CPU in another."""

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402

import advisor  # noqa: E402


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def work(index: int) -> None:
    advisor.tag(worker=str(index))
    with advisor.span("nap"):
        gevent.sleep(0.05)
    with advisor.span("crunch"):
        burn(300_000)


gevent.joinall([gevent.spawn(work, i) for i in range(3)])
