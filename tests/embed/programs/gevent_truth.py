"""A gevent WSGI server whose routes spend known time: the ground truth of the tests.

/wait: gevent.sleep(0.02) (cooperative waiting); /cpu: ~20 ms of pure-Python work;
/block: an unpatched time.sleep(0.02) that holds the hub; /ok: nothing.
"""

from __future__ import annotations

from time import (
    perf_counter,
    sleep,  # before patching: this name stays blocking
    thread_time,
)

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

from advisor.embed import AdvisorWSGIMiddleware  # noqa: E402


def burn(seconds: float) -> float:
    """Pure-Python work for `seconds` of wall time; returns the CPU time it got (on a busy
    machine, less: the rest is the run queue)."""
    cpu = thread_time()
    end = perf_counter() + seconds
    total = 0
    while perf_counter() < end:
        total += sum(range(200))
    return thread_time() - cpu


def hold_the_hub() -> None:
    sleep(0.02)


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path = environ["PATH_INFO"]
    headers = [("Content-Type", "text/plain")]
    if path == "/wait":
        gevent.sleep(0.02)
    elif path == "/cpu":
        headers.append(("X-Burn-Cpu", f"{burn(0.02):.6f}"))
    elif path == "/block":
        hold_the_hub()
    elif path != "/ok":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such route\n"]
    start_response("200 OK", headers)
    return [b"done\n"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--dump-dir", required=True)
    parser.add_argument("--dump-every", type=float, default=60.0)
    parser.add_argument("--keep", type=int, default=10)
    parser.add_argument("--deep-seconds", type=float, default=1.0)
    options = parser.parse_args()
    served = AdvisorWSGIMiddleware(app, dump_dir=options.dump_dir, dump_interval_s=options.dump_every,
                                   dump_keep=options.keep, deep_seconds=options.deep_seconds,
                                   control_token=os.environ.get("ADVISOR_TOKEN"))
    server = WSGIServer(("127.0.0.1", 0), served, log=None)
    server.start()
    with open(options.port_file + ".tmp", "w") as out:
        out.write(str(server.server_port))
    os.replace(options.port_file + ".tmp", options.port_file)
    gevent.signal_handler(signal.SIGTERM, server.stop)
    server.serve_forever()
    served.agent.close()


if __name__ == "__main__":
    main()
