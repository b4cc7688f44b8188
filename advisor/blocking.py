"""What a thread was doing when it was off the CPU, read from a sampled stack.

A sample taken while a thread was off-CPU is classified as ``io`` (sockets, files,
subprocesses, DNS, the logging handlers' writes), ``waiting`` (sleeps, locks, events,
queues, joins), ``idle`` (an event loop waiting for its next event) or ``unknown``. The
innermost standard-library frame decides when there is one; when the user's own line
calls into C directly (``time.sleep(0.2)``, ``sock.recv(...)``), the calls on that line,
read with ``ast``, decide. The result also names the blocking call and the user line
that made it, which is where a finding will point.
"""

from __future__ import annotations

import ast
import os
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType

from .frames import function_name, is_advisor_file, is_user_file
from .source import calls_on_line as source_calls_on_line
from .source import nodes_on_line, parse_file

_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep

# stdlib module (path under the stdlib dir, without .py) -> state when blocked inside it
_STDLIB_STATES = {
    "socket": "io", "ssl": "io", "selectors": "io", "http.client": "io", "urllib.request": "io",
    "ftplib": "io", "smtplib": "io", "poplib": "io", "imaplib": "io", "subprocess": "io",
    "shutil": "io", "logging": "io", "logging.handlers": "io", "socketserver": "io",
    "xmlrpc.client": "io", "http.server": "io", "wsgiref.simple_server": "io", "_pyio": "io",
    "multiprocessing.connection": "io", "tempfile": "io", "zipfile": "io", "tarfile": "io",
    "threading": "waiting", "queue": "waiting", "concurrent.futures._base": "waiting",
    "concurrent.futures.thread": "waiting", "concurrent.futures.process": "waiting",
    "multiprocessing.pool": "waiting", "multiprocessing.synchronize": "waiting",
    "multiprocessing.queues": "waiting", "sched": "waiting",
}

# A C function called straight from the user's line -> what it blocks on (sleep first, then
# I/O, then waiting). Calls into Python code need no entry: their own frames are sampled.
_SLEEP_CALLS = {"sleep"}
_IO_CALLS = {"recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "send", "sendall", "sendto",
             "sendmsg", "sendfile", "connect", "connect_ex", "accept", "read", "readinto", "readline",
             "readlines", "write", "writelines", "flush", "fsync", "fdatasync", "getaddrinfo",
             "gethostbyname", "gethostbyaddr", "select", "poll", "epoll", "urlopen", "create_connection",
             "waitpid", "wait3", "wait4", "open", "listdir", "scandir", "read_text", "read_bytes",
             "write_text", "write_bytes", "pread", "pwrite"}
# Calls that never release the GIL to wait: off the CPU on a line calling only these, the
# thread waits for the GIL (or a CPU).
_NEVER_BLOCKING = {"range", "len", "int", "str", "float", "bool", "min", "max", "sum", "abs", "round", "isinstance",
                   "hash", "id", "type", "thread_time", "perf_counter", "monotonic", "process_time", "append",
                   "extend", "get", "items", "keys", "values", "enumerate", "zip", "sorted", "reversed", "list",
                   "dict", "set", "tuple", "format", "join", "split", "strip", "replace", "startswith", "endswith",
                   "lower", "upper", "encode", "decode", "pop", "add", "update", "copy", "index", "count"}
_WAIT_CALLS = {"acquire", "wait", "join", "result", "wait_for", "barrier", "get_nowait", "sigwait"}


@dataclass(frozen=True)
class Blocked:
    """Why a stack was off-CPU, the call it was blocked in, and the user line that made it."""

    state: str  # "io", "waiting", "idle", "gil" (plain bytecode: waiting for the GIL) or "unknown"
    call: str  # e.g. "time.sleep", "socket.recv", "threading.Event.wait"
    site: tuple[CodeType, int] | None  # the first user frame (code, line), leaf side


def stdlib_module(filename: str) -> str | None:
    """The dotted stdlib module of a file, or None when it is not in the stdlib."""
    absolute = os.path.abspath(filename)
    if not absolute.startswith(_STDLIB) or "site-packages" in absolute:
        return None
    relative = absolute[len(_STDLIB):]
    if relative.endswith(".py"):
        relative = relative[:-3]
    if relative.endswith(os.sep + "__init__"):
        relative = relative[: -len("__init__") - 1]
    return relative.replace(os.sep, ".")


@lru_cache(maxsize=8192)
def calls_on_line(filename: str, line: int) -> tuple[tuple[str, str], ...]:
    """(callee's last name, dotted callee text) of the calls that span a line."""
    found: list[tuple[str, str]] = []
    for node in source_calls_on_line(filename, line):
        func = node.func
        if isinstance(func, ast.Attribute):
            found.append((func.attr, ast.unparse(func)))
        elif isinstance(func, ast.Name):
            found.append((func.id, func.id))
    return tuple(found)


@lru_cache(maxsize=4096)
def with_header(filename: str, line: int) -> str | None:
    """The context expression of a ``with`` statement whose header is on `line`, if any."""
    for node in nodes_on_line(filename, line):
        if isinstance(node, (ast.With, ast.AsyncWith)) and node.items:
            return ast.unparse(node.items[0].context_expr)
    return None


def classify_call_line(filename: str, line: int) -> tuple[str, str] | None:
    """(state, call text) when a line calls something that blocks, by the callee's name."""
    calls = calls_on_line(filename, line)
    for names, state in ((_SLEEP_CALLS, "waiting"), (_IO_CALLS, "io"), (_WAIT_CALLS, "waiting")):
        for name, text in calls:
            if name in names:
                return state, text
    return None


def _is_loop_idle(stack: tuple[tuple[CodeType, int], ...], index: int) -> bool:
    """A selector select() called by an event loop's iteration: the loop has nothing to do."""
    for code, _line in stack[index + 1: index + 4]:
        if code.co_name in ("_run_once", "run_once") or "gevent" in code.co_filename:
            return True
    return False


@lru_cache(maxsize=65536)
def classify_stack(stack: tuple[tuple[CodeType, int], ...]) -> Blocked:
    """Classify an off-CPU sample's stack (leaf first)."""
    state: str | None = None
    call = ""
    site: tuple[CodeType, int] | None = None
    for index, (code, line) in enumerate(stack):
        filename = code.co_filename
        if is_advisor_file(filename):
            continue
        if state is None:
            module = stdlib_module(filename)
            if module is not None:
                known = _STDLIB_STATES.get(module) or _STDLIB_STATES.get(module.rsplit(".", 1)[0])
                if known is not None:
                    if module == "selectors" and _is_loop_idle(stack, index):
                        return Blocked("idle", "selector.select", None)
                    state = known
                    call = function_name(code)
                    continue
                if module.startswith("asyncio"):
                    continue
            elif is_user_file(filename) or "site-packages" in filename:
                by_line = classify_call_line(filename, line)
                if by_line is not None:
                    state, call = by_line
                elif index == 0 and (held := with_header(filename, line)) is not None:
                    # `with lock:` waits in the lock's C-level acquire (or a C __exit__)
                    state, call = "waiting", f"with {held}"
                elif index == 0 and parse_file(filename) is not None and all(
                        name in _NEVER_BLOCKING for name, _text in calls_on_line(filename, line)):
                    # off the CPU on a line that calls nothing that can block: only the GIL
                    # (or a CPU) can hold plain bytecode back
                    return Blocked("gil", "", (code, line) if is_user_file(filename) else None)
        if is_user_file(filename):
            site = (code, line)
            break
    return Blocked(state or "unknown", call, site)
