"""Ground truth for spans in threads: 3 threads sleep 50 ms in a span and burn CPU in another;
nested spans and a span that raises. Writes the CPU seconds the burns took (each thread's own
CPU clock around them) to truth.json."""

import json
import threading
import time

import advisor


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def work(index: int) -> None:
    advisor.tag(worker=str(index))
    with advisor.span("outer", phase="load"):
        with advisor.span("nap"):
            time.sleep(0.05)
        with advisor.span("crunch"):
            cpu0 = time.thread_time()
            burn(300_000)
            spent = time.thread_time() - cpu0
        with lock:
            truth["crunch_cpu_s"] += spent
    try:
        with advisor.span("fails"):
            raise ValueError("bad order")
    except ValueError:
        pass


lock = threading.Lock()
truth = {"crunch_cpu_s": 0.0}
threads = [threading.Thread(target=work, args=(i,), name=f"worker-{i}") for i in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with open("truth.json", "w") as out:
    json.dump(truth, out)
