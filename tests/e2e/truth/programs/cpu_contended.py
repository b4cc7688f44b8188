"""Pure-Python CPU work while another process competes for the same (single) CPU.

The program pins itself and a spinning child process to one CPU, so its CPU-bound tasks
are ready to run but descheduled about half of the time: that is neither waiting nor
blocking (nothing was waited for), it is scheduling. One task does its 0.3 s of CPU in
three long steps, the other in 100 short steps of 3 ms.
"""

import asyncio
import os
import subprocess
import sys
import time

import groundtruth as truth

CPU = min(os.sched_getaffinity(0))
SPIN = f"import os, time\nos.sched_setaffinity(0, {{{CPU}}})\nend = time.time() + 30\nwhile time.time() < end: pass"


async def cruncher(name, step_s):
    for _ in range(round(0.3 / step_s)):
        with truth.phase(name, "compute"):
            truth.burn(step_s)
        await asyncio.sleep(0)
    truth.end(name)


async def main():
    for name, step_s in (("long-steps", 0.1), ("short-steps", 0.003)):
        truth.begin(name)
        await asyncio.create_task(cruncher(name, step_s), name=name)


os.sched_setaffinity(0, {CPU})
spinner = subprocess.Popen([sys.executable, "-c", SPIN])
try:
    time.sleep(0.2)  # let the spinner start spinning
    asyncio.run(main())
finally:
    spinner.kill()
    spinner.wait()
truth.save()
print("done")
