"""(d) Two CPU-bound threads at once: each uses 0.3 s of CPU, sharing one GIL."""

import threading
import time

import groundtruth as truth


def spin(name):
    truth.begin(name)
    with truth.phase(name, "compute"):
        truth.burn(0.3)
    truth.end(name)


threads = [threading.Thread(target=spin, args=(f"spin-{n}",), name=f"spin-{n}") for n in range(2)]
cpu0 = time.process_time()
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
truth.note("process_cpu_s", time.process_time() - cpu0)
truth.save()
print("done")
