"""One function whose time is nearly all on one line (line 9), run for 0.4 s of CPU."""

import time


def work(n: int) -> str:
    total = 0
    for i in range(n):
        total += i * i
    return str(total)


def main() -> None:
    deadline = time.perf_counter() + 0.4
    while time.perf_counter() < deadline:
        work(20_000)


main()
