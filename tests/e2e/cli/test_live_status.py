"""The live status line: on a terminal's stderr while the target runs, never on stdout, erased
before the report, and absent when stderr is no terminal (or CI, TERM=dumb, --no-status).

The terminal is a real pseudo-terminal: advisor's stderr is its slave side, stdout a pipe.
The target holds two worker threads until the test has seen a status line counting them
(a file handshake, no timing), so the line's content is checked against what is known to
be alive.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ADVISOR, cli_env

PROGRAM = """
    import os
    import threading
    import time


    def worker():
        # wait (bounded) until the test has seen this thread counted in the status line
        deadline = time.monotonic() + 30
        while not os.path.exists("go") and time.monotonic() < deadline:
            time.sleep(0.02)


    print("starting", flush=True)
    threads = [threading.Thread(target=worker, name=f"worker-{n}") for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("done", flush=True)
"""

STATUS = re.compile(rb"\radvisor: (\d+\.\d) s elapsed, (\d+) units? alive, (\d+) samples\x1b\[K")
ERASE = b"\r\x1b[K"
DEADLINE_S = 60.0


@dataclass
class TerminalRun:
    returncode: int
    stdout: bytes
    terminal: bytes  # everything advisor wrote to its stderr, the pseudo-terminal


def run_on_terminal(args: list[str], cwd: Path, env: dict[str, str],
                    watch: Callable[[bytes, subprocess.Popen[bytes]], None] | None = None) -> TerminalRun:
    """advisor ARGS with stderr on a 100-column pseudo-terminal and stdout on a pipe;
    `watch(terminal output so far, process)` is called after each read."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    try:
        process = subprocess.Popen([*ADVISOR, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    assert process.stdout is not None
    terminal, stdout = b"", b""
    streams = {master: "terminal", process.stdout.fileno(): "stdout"}
    deadline = time.monotonic() + DEADLINE_S
    try:
        while streams:
            left = deadline - time.monotonic()
            assert left > 0, f"advisor did not end in {DEADLINE_S} s: {terminal[-2000:]!r}"
            readable, _, _ = select.select(list(streams), [], [], left)
            for fd in readable:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the pty's master reads EIO once the slave side is closed everywhere
                    chunk = b""
                if not chunk:
                    del streams[fd]
                elif streams[fd] == "terminal":
                    terminal += chunk
                else:
                    stdout += chunk
            if watch is not None:
                watch(terminal, process)
        returncode = process.wait(timeout=DEADLINE_S)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return TerminalRun(returncode, stdout, terminal)


def terminal_env(**changes: str | None) -> dict[str, str]:
    env = cli_env()
    env.pop("CI", None)  # CI itself may set it; the status line is off under CI (tested below)
    env["TERM"] = "xterm-256color"
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def release_when_counted(cwd: Path, units: int) -> Callable[[bytes, subprocess.Popen[bytes]], None]:
    """Create ``go`` (the workers may end) once a status line has counted `units` alive."""
    def watch(terminal: bytes, process: subprocess.Popen[bytes]) -> None:
        if not (cwd / "go").exists() and any(int(m.group(2)) >= units for m in STATUS.finditer(terminal)):
            (cwd / "go").touch()

    return watch


def signal_after_status(signum: int) -> Callable[[bytes, subprocess.Popen[bytes]], None]:
    sent = []

    def watch(terminal: bytes, process: subprocess.Popen[bytes]) -> None:
        if not sent and STATUS.search(terminal):
            process.send_signal(signum)
            sent.append(signum)

    return watch


@pytest.fixture
def workdir(tmp_path: Path, program: Callable[[Path, str], Path]) -> Path:
    program(tmp_path / "prog.py", PROGRAM)
    return tmp_path


def test_status_line_on_a_terminal_counts_units_and_samples_and_leaves_stdout_alone(
        workdir: Path, bare_python: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    done = run_on_terminal(["run", "--json", "report.json", "prog.py"], workdir, terminal_env(),
                           watch=release_when_counted(workdir, 3))
    assert done.returncode == 0, done.terminal[-3000:]
    bare = bare_python(["prog.py"], workdir)  # "go" exists: the bare run's workers end at once
    assert done.stdout == bare.stdout.encode() == b"starting\ndone\n"

    lines = list(STATUS.finditer(done.terminal))
    assert lines, done.terminal[:2000]
    # MainThread and the two workers were alive when the test let them end
    assert max(int(line.group(2)) for line in lines) == 3
    elapsed = [float(line.group(1)) for line in lines]
    assert elapsed == sorted(elapsed)
    samples = [int(line.group(3)) for line in lines]
    assert samples == sorted(samples) and samples[-1] > 0
    # the line is erased before the report starts, and nothing is drawn after it
    report_starts = done.terminal.index(b"prog.py")
    last_status = lines[-1].end()
    assert done.terminal[last_status:report_starts].startswith(ERASE)
    assert not STATUS.search(done.terminal, report_starts)
    # advisor's own status thread is no unit of the program
    report = json.loads((workdir / "report.json").read_text(encoding="utf-8"))
    assert sorted(task["name"] for task in report["tasks"]) == ["MainThread", "worker-1", "worker-2"]


@pytest.mark.parametrize(("case", "options", "env"), [
    ("no-status option", ["--no-status"], {}),
    ("CI", [], {"CI": "true"}),
    ("dumb terminal", [], {"TERM": "dumb"}),
])
def test_no_status_line_when_turned_off_or_unwanted(case: str, options: list[str], env: dict[str, str],
                                                    workdir: Path) -> None:
    (workdir / "go").touch()  # nothing to wait for: the workers end at once
    done = run_on_terminal(["run", *options, "prog.py"], workdir, terminal_env(**env))
    assert done.returncode == 0, done.terminal[-3000:]
    assert done.stdout == b"starting\ndone\n"
    assert b"elapsed," not in done.terminal, case
    assert ERASE not in done.terminal, case
    assert b"prog.py" in done.terminal  # the report itself is there


def test_no_status_line_when_stderr_is_not_a_terminal(
        workdir: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    (workdir / "go").touch()
    done = run_advisor(["run", "prog.py"], cwd=workdir, env={"TERM": "xterm-256color"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "starting\ndone\n"
    assert "\r" not in done.stderr
    assert "elapsed," not in done.stderr
    assert "MainThread" in done.stderr


def test_status_is_not_started_for_advisors_own_usage_errors(workdir: Path) -> None:
    done = run_on_terminal(["run", "--mode", "fast", "prog.py"], workdir, terminal_env())
    assert done.returncode == 2
    assert done.terminal.startswith(b"advisor: error: ")
    assert ERASE not in done.terminal


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_line_is_erased_when_the_run_is_stopped_by_a_signal(signum: int, workdir: Path) -> None:
    done = run_on_terminal(["run", "--json", "report.json", "prog.py"], workdir, terminal_env(),
                           watch=signal_after_status(signum))
    assert done.returncode == -signum, done.terminal[-3000:]
    last_status = list(STATUS.finditer(done.terminal))[-1].end()
    assert done.terminal[last_status:].startswith(ERASE), done.terminal[last_status:last_status + 200]
    assert not STATUS.search(done.terminal, last_status)
    report = json.loads((workdir / "report.json").read_text(encoding="utf-8"))
    assert report["run"]["partial"] is True


@pytest.mark.parametrize(("ending", "first_output"), [
    ('raise ValueError("broken on purpose")', b"Traceback (most recent call last):"),
    ('raise SystemExit("stopped: bad config")', b"stopped: bad config\r\n"),
])
def test_what_the_target_ends_with_starts_on_a_clean_line(ending: str, first_output: bytes, workdir: Path,
                                                          program: Callable[[Path, str], Path]) -> None:
    program(workdir / "ends.py", f"""
        import os
        import time

        deadline = time.monotonic() + 30
        while not os.path.exists("go") and time.monotonic() < deadline:
            time.sleep(0.02)
        {ending}
    """)
    done = run_on_terminal(["run", "ends.py"], workdir, terminal_env(), watch=release_when_counted(workdir, 1))
    assert done.returncode == 1, done.terminal[-3000:]
    last_status = list(STATUS.finditer(done.terminal))[-1].end()
    assert done.terminal[last_status:].startswith(ERASE + first_output), done.terminal[last_status:last_status + 300]


LOGS_TO_STDERR_FILE = """
    import os
    import time

    log = os.open("program.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 2)  # the program's stderr is its log file from now on
    for line in range(6):
        os.write(2, f"log line {line}\\n".encode())
        time.sleep(0.25)
    print("done", flush=True)
"""


def test_no_status_line_goes_into_a_file_the_program_put_on_stderr(workdir: Path, program: Callable[..., Path]) -> None:
    # the line was drawn on descriptor 2 by number: into the program's log once it was there
    program(workdir / "logs.py", LOGS_TO_STDERR_FILE)
    done = run_on_terminal(["run", "--format", "json", "--json", "report.json", "logs.py"], workdir, terminal_env())
    assert done.returncode == 0, done.terminal[-3000:]
    log = (workdir / "program.log").read_bytes()
    assert b"log line 5\n" in log
    assert not STATUS.search(log) and ERASE not in log, log[:2000]
