"""Running the target program as ``__main__``, exactly as ``python SCRIPT`` or ``python -m``.

The runner gives the target a fresh ``__main__`` module, ``sys.argv == [SCRIPT, *ARGS]``
and its directory as ``sys.path[0]``, then turns however the program ended into an
``Outcome``: its exit status (SystemExit codes as Python maps them, 1 with the usual
traceback for an uncaught exception) and whether it was interrupted (SIGINT, SIGTERM),
so that the report can still be written, marked partial, before the process ends the
way Python would have ended it.
"""

from __future__ import annotations

import atexit
import builtins
import importlib.util
import os
import runpy
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import FrameType, TracebackType
from typing import Any

from .errors import UsageError
from .frames import is_advisor_file
from .recursion import RecursionShift, depth


@dataclass(frozen=True)
class Target:
    """What to run: a script path or a module name, and its arguments."""

    script: str | None
    module: str | None
    args: tuple[str, ...] = ()

    @property
    def argv(self) -> list[str]:
        first = self.script if self.script is not None else f"-m {self.module}"
        return [first, *self.args]


@dataclass(frozen=True)
class ProgramState:
    """What the program left in ``sys.argv``, and where its directory stood on ``sys.path``
    (advisor's own entry stands there while advisor writes its report)."""

    argv: list[str]
    path_index: int | None
    directory: str
    advisors_entry: str
    recursion_limit: int


@dataclass(frozen=True)
class Outcome:
    """How the target ended."""

    exit_code: int
    partial: bool = False
    signal: int | None = None  # re-deliver this signal once the report is written
    left: ProgramState | None = None  # given back by hand_back for the program's atexit handlers


def check_target(target: Target) -> None:
    """Fail early, with one line, when the target cannot be found."""
    if target.script is not None:
        path = target.script
        if not os.path.exists(path):
            raise UsageError(f"can't open file {path!r}: no such file or directory")
        if os.path.isdir(path) and not os.path.exists(os.path.join(path, "__main__.py")):
            raise UsageError(f"can't find '__main__' module in {path!r}")
        if not os.path.isdir(path) and not os.access(path, os.R_OK):
            raise UsageError(f"can't open file {path!r}: permission denied")
        return
    name = target.module or ""
    if not name or name.startswith(".") or any(not part.isidentifier() for part in name.split(".")):
        raise UsageError(f"invalid module name {name!r}")
    saved = list(sys.path)
    sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    except Exception:
        return  # its package raised on import: running it will raise that, as python -m does
    finally:
        sys.path[:] = saved
    if spec is None:
        raise UsageError(f"no module named {name!r}")


def uses_gevent(target: Target) -> bool:
    """Whether the target's own file imports gevent (deep mode then profiles per greenlet)."""
    path: str | None = target.script
    if path is None and target.module:
        try:
            spec = importlib.util.find_spec(target.module)
        except Exception:  # the target's own import error: it is reported when it runs
            spec = None
        path = spec.origin if spec is not None else None
    if path is None or not os.path.isfile(path):
        return "gevent" in sys.modules
    try:
        with open(path, encoding="utf-8", errors="replace") as source:
            text = source.read(200_000)
    except OSError:
        return False
    return "import gevent" in text or "from gevent" in text or "gevent" in sys.modules


def _exit_code(error: SystemExit) -> int:
    """The status Python gives for a SystemExit (printing a non-integer code, as Python does)."""
    code = error.code
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code & 0xFF  # what the OS keeps of it, as for python itself
    try:
        sys.stderr.write(f"{code}\n")
        sys.stderr.flush()
    except Exception:
        pass
    return 1


def _user_traceback(tb: TracebackType | None) -> TracebackType | None:
    """The traceback without advisor's own frames at its top."""
    while tb is not None and is_advisor_file(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _report_uncaught(error: BaseException) -> None:
    """Print an uncaught exception the way Python does (through sys.excepthook)."""
    error.__traceback__ = _user_traceback(error.__traceback__)
    try:
        sys.excepthook(type(error), error, error.__traceback__)
    except Exception:
        pass


def _fresh_main(path: str | None) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__dict__.update({"__builtins__": builtins, "__file__": path, "__cached__": None,
                            "__package__": None, "__spec__": None, "__loader__": None})
    if path is None:
        del module.__dict__["__file__"]
    return module


def _run_script(path: str) -> None:
    if os.path.isdir(path) or path.endswith((".zip", ".pyz")):
        # as CPython does: sys.path[0] is the (absolute) directory, run its __main__ module
        runpy._run_module_as_main("__main__", alter_argv=False)  # type: ignore[attr-defined]
        return
    # Python 3.9+ makes a script's __file__ absolute (joined, not normalised)
    path = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    with open(path, "rb") as source:
        code = compile(source.read(), path, "exec", dont_inherit=True)
    module = _fresh_main(path)
    sys.modules["__main__"] = module
    exec(code, module.__dict__)


def _run_module(name: str) -> None:
    sys.modules["__main__"] = _fresh_main(None)
    runpy._run_module_as_main(name, alter_argv=True)  # type: ignore[attr-defined]


# Levels between execute's frame and the target's <module> that bare Python does not have:
# _run_script's frame and exec's entry for a script; _run_module's frame for -m (runpy's
# frames and its exec's entry, bare Python has too)
RUNNER_LEVELS_SCRIPT = 2
RUNNER_LEVELS_MODULE = 1


# Modules the probes use while the program runs: never set aside for a program's namesake
# (bare, a program with its own asyncio.py or threading.py breaks itself anyway)
PROBES_NEED = frozenset({
    "abc", "advisor", "asyncio", "atexit", "collections", "concurrent", "contextvars", "dis", "encodings",
    "enum", "fcntl", "functools", "gc", "gevent", "greenlet", "heapq", "importlib", "inspect", "io", "linecache",
    "logging", "math", "opcode", "os", "re", "resource", "runpy", "select", "selectors", "signal", "site",
    "socket", "ssl", "struct", "subprocess", "sys", "threading", "time", "traceback", "types", "typing",
    "warnings", "weakref", "yappi",
})


def _step_aside(directory: str) -> dict[str, types.ModuleType]:
    """Take out of ``sys.modules`` the modules advisor imported before the program whose
    names the program's directory has modules of its own for (an ``email.py`` or a
    ``statistics/`` package beside the script): bare, the script's directory comes first and
    the program imports its own; under advisor the standard library's was there already (an
    AttributeError on the program's own function). Given back by ``_step_back``."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return {}
    local = {entry[:-3] for entry in entries if entry.endswith(".py")}
    local |= {entry for entry in entries if os.path.isfile(os.path.join(directory, entry, "__init__.py"))}
    aside: dict[str, types.ModuleType] = {}
    for name in sorted(local - PROBES_NEED):
        if name.startswith("__"):  # __main__.py of a directory run as the target, __init__.py
            continue
        module = sys.modules.get(name)
        where = getattr(module, "__file__", None) if module is not None else None
        if module is None or (where and os.path.dirname(os.path.abspath(where)) in (
                directory, os.path.join(directory, name))):
            continue  # not imported, or the program's own already
        for key in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
            aside[key] = sys.modules.pop(key)
    return aside


def _step_back(aside: dict[str, types.ModuleType]) -> None:
    """advisor's modules back in ``sys.modules`` for its report (the program keeps its own
    through the names it bound them to)."""
    sys.modules.update(aside)


def _wait_for_threads() -> None:
    """Wait for the program's non-daemon threads as the interpreter does before it exits:
    with threading's own shutdown, which first runs the exit hooks threading keeps (how
    ``concurrent.futures`` tells an executor's idle workers to end: a program that left a
    ThreadPoolExecutor open waited for ever when advisor joined them), then waits for each
    thread's end without calling a Thread subclass's ``join``. The interpreter's own call at
    exit then returns at once (gevent's patched one too)."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None and threading.current_thread() is threading.main_thread():
        shutdown()
        return
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and thread.is_alive():
            thread.join()


def execute(target: Target, on_terminate: Callable[[Outcome], object] | None = None,
            before_output: Callable[[], object] | None = None, terminate_in_children: bool = False,
            unseen: int = 0) -> Outcome:
    """Run the target to its end and say how it ended; never raises for the target's sake.

    SIGTERM kills a Python program on the spot, without unwinding it. So does advisor: the
    handler calls `on_terminate` (which writes the partial report) and then dies by SIGTERM,
    without running the target's ``finally`` blocks or ``except`` clauses. A process the
    target forks gets the program's own SIGTERM disposition back, unless
    `terminate_in_children` (``--children``: a child writes its report when terminated).
    `before_output` is called before the runner itself prints to stderr (a traceback, an
    exit message). `unseen` is ``recursion.unseen_levels()`` as the caller measured it
    before the probes started."""
    def report_uncaught(error: BaseException) -> None:
        if before_output is not None:
            before_output()
        _report_uncaught(error)

    saved_argv, saved_path0 = list(sys.argv), sys.path[0] if sys.path else ""
    previous_term = installed_term = None
    aside: dict[str, types.ModuleType] = {}  # the program's namesakes' modules, while it runs
    if threading.current_thread() is threading.main_thread():
        current = signal.getsignal(signal.SIGTERM)
        if current in (signal.SIG_DFL, None):
            def on_term(signum: int, frame: FrameType | None) -> None:
                if signal.getsignal(signal.SIGTERM) is not on_term:
                    # called by a handler of the program's that chains the one it replaced:
                    # bare, that was SIG_DFL, which no one can call; its handler decides
                    return
                outcome = Outcome(128 + signal.SIGTERM, partial=True, signal=signal.SIGTERM)
                _step_back(aside)  # the report is made now, with advisor's modules
                for number in (signal.SIGTERM, signal.SIGINT):  # the report first: it dies by SIGTERM next
                    signal.signal(number, signal.SIG_IGN)
                if on_terminate is not None:
                    try:
                        on_terminate(outcome)
                    except BaseException:
                        pass
                end_like_python(outcome)
            previous_term, installed_term = signal.signal(signal.SIGTERM, on_term), on_term
            if not terminate_in_children and hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_give_back_in_child(on_term, previous_term))
    if target.script is not None:
        sys.argv = [target.script, *target.args]
        directory = target.script if os.path.isdir(target.script) else os.path.dirname(target.script)
        directory = os.path.abspath(directory)
    else:
        sys.argv = [target.module or "", *target.args]
        directory = os.getcwd()
    sys.path[0] = directory
    aside.update(_step_aside(directory))
    outcome: Outcome
    # the levels advisor runs the target from: the program's recursion limit is shifted by
    # as many (see recursion.py): the frames below this one, the levels no frame shows, and
    # those between here and the program
    shift = RecursionShift(depth(sys._getframe()) + unseen + (
        RUNNER_LEVELS_SCRIPT if target.script is not None else RUNNER_LEVELS_MODULE))
    shift.install()
    try:
        try:
            if target.script is not None:
                _run_script(target.script)
            else:
                _run_module(target.module or "")
            _wait_for_threads()
            outcome = Outcome(0)
        except SystemExit as error:
            _wait_for_threads()
            if before_output is not None:
                before_output()
            outcome = Outcome(_exit_code(error))
    except KeyboardInterrupt as error:
        report_uncaught(error)
        outcome = Outcome(130, partial=True, signal=signal.SIGINT)
    except BaseException as error:  # the target's uncaught exception: Python prints it, exits 1
        report_uncaught(error)
        try:
            _wait_for_threads()
        except BaseException:
            pass
        outcome = Outcome(1)
    finally:
        if installed_term is not None and signal.getsignal(signal.SIGTERM) is installed_term:
            try:  # (a handler the program set itself stays)
                signal.signal(signal.SIGTERM, previous_term)
            except (ValueError, TypeError):
                pass
        # advisor's own imports from here on must not find the program's modules first; the
        # program may have put entries before its directory (sys.path.insert(0, ...))
        path_index = sys.path.index(directory) if directory in sys.path else None
        left = ProgramState(sys.argv, path_index, directory, saved_path0, shift.remove())
        _step_back(aside)
        sys.argv = saved_argv
        if path_index is not None:
            sys.path[path_index] = saved_path0
        # the target's __main__ stays in sys.modules: its atexit handlers may need it
    return replace(outcome, left=left)


def hand_back(outcome: Outcome) -> None:
    """Once the report is out, give the program its ``sys.argv`` and directory back as it left
    them: its atexit handlers run after advisor's work (as after a bare run), and may read
    its arguments or import from its directory."""
    left = outcome.left
    if left is None:
        return
    sys.argv = left.argv
    try:
        sys.setrecursionlimit(left.recursion_limit)
    except (RecursionError, ValueError):  # lower than the depth here: the report is out anyway
        pass
    index = left.path_index
    if index is not None and index < len(sys.path) and sys.path[index] == left.advisors_entry:
        sys.path[index] = left.directory


def _give_back_in_child(handler: Callable[[int, FrameType | None], None],
                        previous: Any) -> Callable[[], None]:
    """An after-fork hook: the child's SIGTERM goes back to what the program had.

    A Python-level handler changes how a child dies. The default kills it at once, wherever
    it is; a handler runs only when the main thread next runs bytecode. A multiprocessing pool
    worker waiting for its queue's lock (a semaphore wait, which the signal interrupts only
    once it has begun) is killed by ``Pool.terminate``'s SIGTERM. Landing just before the
    wait, the signal is lost: the worker waits for ever, and so does the pool's parent (seen
    about once in 100 runs on a loaded machine)."""
    def give_back() -> None:
        try:
            if signal.getsignal(signal.SIGTERM) is handler:  # not once the program set its own
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        except (ValueError, TypeError, OSError):
            pass

    return give_back


@contextmanager
def signals_held() -> Iterator[None]:
    """While advisor writes its report after the run: a Ctrl-C or SIGTERM waits for it to be
    out (it used to cut the report short, or print a traceback of advisor's), then acts as
    it would have: the handler that was there gets it, Python's Ctrl-C ends the process the
    way Python ends one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(number: int, frame: FrameType | None) -> None:
        held.append(number)

    previous: dict[int, Any] = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, hold)
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        if held:
            first = held[0]
            if previous.get(first) is signal.default_int_handler:
                end_like_python(Outcome(128 + first, partial=True, signal=first))
            else:
                signal.raise_signal(first)


def end_like_python(outcome: Outcome) -> None:
    """For a run ended by a signal: finish the way Python would (killed by that signal)."""
    if outcome.signal is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    if outcome.signal == signal.SIGINT:
        # Python unwinds on KeyboardInterrupt, runs its exit handlers, then dies by SIGINT
        atexit._run_exitfuncs()
    signal.signal(outcome.signal, signal.SIG_DFL)
    os.kill(os.getpid(), outcome.signal)
