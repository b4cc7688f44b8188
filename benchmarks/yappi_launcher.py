"""Run a script under raw yappi with a chosen clock and context backend, like ``python -m yappi``.

yappi's own command line sets no context backend, so a gevent program profiled with it
gets one context for the whole hub thread, while advisor's deep mode gives each greenlet
its own (yappi's ``greenlet`` backend, which costs more per switch). The overhead benchmark
compares advisor-deep with raw yappi set up the same way, through this launcher.

    python benchmarks/yappi_launcher.py --backend greenlet --clock wall -o OUT.pstat SCRIPT [ARGS...]
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys

import yappi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("native_thread", "greenlet"), default="native_thread")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("-o", "--output", required=True, help="pstat file to write")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    yappi.set_context_backend(options.backend)
    yappi.set_clock_type(options.clock)
    sys.argv = [options.script, *options.args]
    sys.path[0] = os.path.dirname(os.path.abspath(options.script))
    yappi.start(builtins=False, profile_threads=True)
    try:
        runpy.run_path(options.script, run_name="__main__")
    finally:
        yappi.stop()
        yappi.get_func_stats().save(options.output, type="pstat")


if __name__ == "__main__":
    main()
