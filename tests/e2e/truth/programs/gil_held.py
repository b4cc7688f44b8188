"""A thread that holds the GIL through a C call that sleeps (a ctypes.PyDLL function keeps
the GIL, as some C extensions do), and a CPU-bound thread that cannot run meanwhile: the
time the spinner loses is scheduling (ready, the GIL busy), not waiting."""

import ctypes
import threading

import groundtruth as truth

libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held during the call


def hold():
    truth.begin("holder")
    # many short holds rather than a few long ones: each is split by where the sampler
    # finds the holder when it lets go of the GIL, and 25 of them average that out
    for _ in range(25):
        with truth.phase("holder", "waiting"):
            libc.usleep(42_000)
        with truth.phase("holder", "compute"):
            truth.burn(0.005)
    truth.end("holder")


def spin():
    truth.begin("spinner")
    with truth.phase("spinner", "compute"):
        truth.burn(0.2)
    truth.end("spinner")


threads = [threading.Thread(target=hold, name="holder"), threading.Thread(target=spin, name="spinner")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
truth.save()
print("done")
