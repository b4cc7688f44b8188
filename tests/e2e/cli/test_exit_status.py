"""How a profiled program ends: its exit status, its stderr and the process' end are the ones
``python`` gives the same program, and the ``--json`` report is written in every case.

Every target is also run by the bare interpreter and the two are compared; targets are given
by absolute path, so that Python's tracebacks (which name the script's absolute path) can be
compared byte for byte.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from advisor.profile import Report

REPORT_START = '{\n  "schema_version"'


def target_stderr(stderr: str) -> tuple[str, dict[str, Any]]:
    """Split advisor's stderr (``--format json``) into the target's part and the report."""
    at = stderr.find(REPORT_START)
    assert at >= 0, stderr[-4000:]
    report: dict[str, Any] = json.loads(stderr[at:])
    return stderr[:at], report


ENDINGS = {
    "normal": ("print('done')\n", 0),
    "exit-3": ("import sys\nprint('done')\nsys.exit(3)\n", 3),
    "raise-systemexit-3": ("print('done')\nraise SystemExit(3)\n", 3),
    "exit-none": ("import sys\nprint('done')\nsys.exit()\n", 0),
    "exit-message": ("import sys\nprint('done')\nsys.exit('goodbye, cruel world')\n", 1),
    "exit-minus-1": ("import sys\nprint('done')\nsys.exit(-1)\n", 255),
    "exit-256": ("import sys\nprint('done')\nsys.exit(256)\n", 0),
    "exception": ("""
        def parse(text):
            return int(text)


        def load():
            try:
                parse("twelve")
            except ValueError as error:
                raise RuntimeError("could not load the settings") from error


        print("done")
        load()
    """, 1),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_exit_status_and_stderr_are_pythons_and_the_report_is_written(
        ending: str, run_advisor: Callable[..., subprocess.CompletedProcess[str]],
        bare_python: Callable[..., subprocess.CompletedProcess[str]], program: Callable[[Path, str], Path],
        read_report: Callable[[Path], dict[str, Any]], tmp_path: Path) -> None:
    source, status = ENDINGS[ending]
    script = program(tmp_path / "ends.py", source)
    python = bare_python([str(script)], tmp_path)
    assert python.returncode == status, python.stderr
    done = run_advisor(["run", "--format", "json", "--json", "report.json", str(script)])
    assert done.returncode == status, done.stderr[-4000:]
    assert done.stdout == "done\n" == python.stdout
    printed, report = target_stderr(done.stderr)
    assert printed == python.stderr
    if ending == "exit-message":
        assert printed == "goodbye, cruel world\n"
    elif ending == "exception":
        assert printed.startswith("Traceback (most recent call last):\n")
        assert "ValueError: invalid literal for int() with base 10: 'twelve'\n" in printed
        assert "The above exception was the direct cause of the following exception:" in printed
        assert printed.endswith("RuntimeError: could not load the settings\n")
        assert "/advisor/" not in printed
    else:
        assert printed == ""
    saved = read_report(tmp_path / "report.json")
    assert saved == report
    Report.model_validate(saved)
    assert saved["run"]["exit_code"] == status
    assert saved["run"]["partial"] is False
    assert saved["run"]["argv"] == [str(script)]


def test_uncaught_exception_prints_pythons_traceback_without_advisor_frames(
        run_advisor: Callable[..., subprocess.CompletedProcess[str]], program: Callable[[Path, str], Path],
        tmp_path: Path) -> None:
    program(tmp_path / "boom.py", """
        def inner():
            raise KeyError("missing")


        def outer():
            inner()


        outer()
    """)
    done = run_advisor(["run", "--format", "json", str(tmp_path / "boom.py")])
    assert done.returncode == 1
    printed, report = target_stderr(done.stderr)
    boom = str(tmp_path / "boom.py")
    assert printed == (
        "Traceback (most recent call last):\n"
        f'  File "{boom}", line 9, in <module>\n'
        "    outer()\n"
        f'  File "{boom}", line 6, in outer\n'
        "    inner()\n"
        f'  File "{boom}", line 2, in inner\n'
        '    raise KeyError("missing")\n'
        "KeyError: 'missing'\n"
    )
    assert report["run"]["exit_code"] == 1


def test_module_whose_package_raises_on_import_ends_as_python_m(
        run_advisor: Callable[..., subprocess.CompletedProcess[str]],
        bare_python: Callable[..., subprocess.CompletedProcess[str]], program: Callable[[Path, str], Path],
        tmp_path: Path) -> None:
    program(tmp_path / "broken" / "__init__.py", "raise RuntimeError('the package cannot start')\n")
    program(tmp_path / "broken" / "mod.py", "print('never')\n")
    python = bare_python(["-m", "broken.mod"], tmp_path)
    assert python.returncode == 1
    assert python.stderr.endswith("RuntimeError: the package cannot start\n")
    done = run_advisor(["run", "--json", "report.json", "-m", "broken.mod"])
    assert done.returncode == 1, done.stderr[-4000:]
    assert done.stdout == ""
    assert "Traceback (most recent call last):\n" in done.stderr
    assert "RuntimeError: the package cannot start\n" in done.stderr
    assert "/advisor/" not in done.stderr
    assert (tmp_path / "report.json").is_file()


# -- stopped by a signal --

SLEEPER = """
    import atexit
    import time

    atexit.register(print, "atexit ran")
    print("ready", flush=True)
    time.sleep(30)
    print("not reached")
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_ends_the_process_as_python_and_writes_a_partial_report(
        name: str, code: int, program: Callable[[Path, str], Path], stop_when_ready: Callable[..., Any],
        read_report: Callable[[Path], dict[str, Any]], tmp_path: Path) -> None:
    signum = getattr(signal, name)
    script = program(tmp_path / "sleeper.py", SLEEPER)
    # a moment after "ready", so that both are stopped inside the sleep (the traceback's line)
    python = stop_when_ready([sys.executable, str(script)], tmp_path, signum, after_s=0.1)
    assert python.returncode == -signum
    # Ctrl-C unwinds (atexit runs, the traceback is printed); SIGTERM kills outright
    assert python.stdout == ("ready\natexit ran\n" if name == "SIGINT" else "ready\n")
    advisor = stop_when_ready([sys.executable, "-m", "advisor", "run", "--format", "json", "--json", "report.json",
                               str(script)], tmp_path, signum, after_s=0.1)
    assert advisor.returncode == -signum, advisor.stderr[-4000:]
    assert advisor.stdout == python.stdout
    printed, report = target_stderr(advisor.stderr)
    assert printed == python.stderr
    saved = read_report(tmp_path / "report.json")
    assert saved == report
    Report.model_validate(saved)
    assert saved["run"]["partial"] is True
    assert saved["run"]["exit_code"] == code
    assert saved["run"]["wall_s"] > 0.0


ENDS_THEN_SLOW_REPORT = """
    import sys
    import time

    # the report phase, slowed from inside (the target shares advisor's process): a signal
    # sent after "ready" lands while advisor analyses, not while the program runs
    run_command = sys.modules["advisor.commands.run"]
    analyze = run_command.analyze


    def slow_analyze(*args, **kwargs):
        time.sleep(1.5)
        return analyze(*args, **kwargs)


    run_command.analyze = slow_analyze
    print("ready", flush=True)
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_report_is_made_waits_for_it(
        name: str, program: Callable[[Path, str], Path], stop_when_ready: Callable[..., Any],
        read_report: Callable[[Path], dict[str, Any]], tmp_path: Path) -> None:
    # it cut the report short: SIGTERM killed advisor with no file written, Ctrl-C printed a
    # traceback of advisor's own; now the report is out first, then the signal acts
    signum = getattr(signal, name)
    script = program(tmp_path / "ends.py", ENDS_THEN_SLOW_REPORT)
    advisor = stop_when_ready([sys.executable, "-m", "advisor", "run", "--format", "json", "--json", "report.json",
                               str(script)], tmp_path, signum, after_s=0.3)
    assert advisor.returncode == -signum, advisor.stderr[-4000:]
    assert "Traceback" not in advisor.stderr, advisor.stderr[-4000:]
    saved = read_report(tmp_path / "report.json")
    Report.model_validate(saved)
    assert saved["run"]["exit_code"] == 0 and saved["run"]["partial"] is False  # the program had ended well
    printed, report = target_stderr(advisor.stderr)
    assert printed == "" and report == saved


HANDLES_CTRL_C = """
    import sys
    import time

    try:
        print("ready", flush=True)
        time.sleep(30)
    except KeyboardInterrupt:
        print("interrupted, cleaning up")
        sys.exit(4)
"""

HANDLES_TERM = """
    import signal
    import sys
    import time


    def stop(signum, frame):
        print("stopping")
        sys.exit(5)


    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    time.sleep(30)
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("name", "source", "status", "said"), [
    ("SIGINT", HANDLES_CTRL_C, 4, "interrupted, cleaning up\n"),
    ("SIGTERM", HANDLES_TERM, 5, "stopping\n"),
])
def test_signal_the_program_handles_itself_ends_as_the_program_says(
        name: str, source: str, status: int, said: str, program: Callable[[Path, str], Path],
        stop_when_ready: Callable[..., Any], read_report: Callable[[Path], dict[str, Any]], tmp_path: Path) -> None:
    signum = getattr(signal, name)
    script = program(tmp_path / "handles.py", source)
    python = stop_when_ready([sys.executable, str(script)], tmp_path, signum)
    assert (python.returncode, python.stdout) == (status, "ready\n" + said)
    advisor = stop_when_ready([sys.executable, "-m", "advisor", "run", "--json", "report.json", str(script)],
                              tmp_path, signum)
    assert (advisor.returncode, advisor.stdout) == (status, "ready\n" + said), advisor.stderr[-4000:]
    assert read_report(tmp_path / "report.json")["run"]["exit_code"] == status


CLEANS_UP = """
    import time

    try:
        print("ready", flush=True)
        time.sleep(30)
    finally:
        print("finally ran", flush=True)
"""

SWALLOWS = """
    import time

    for attempt in range(2):
        try:
            print("ready", flush=True)
            time.sleep(1.0)
        except:  # noqa: E722
            print("swallowed", flush=True)
    print("finished normally")
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("source", [CLEANS_UP, SWALLOWS], ids=["finally", "bare-except"])
def test_sigterm_kills_without_unwinding_the_program(
        source: str, program: Callable[[Path, str], Path], stop_when_ready: Callable[..., Any],
        read_report: Callable[[Path], dict[str, Any]], tmp_path: Path) -> None:
    script = program(tmp_path / "term.py", source)
    python = stop_when_ready([sys.executable, str(script)], tmp_path, signal.SIGTERM)
    assert (python.returncode, python.stdout) == (-signal.SIGTERM, "ready\n")
    advisor = stop_when_ready([sys.executable, "-m", "advisor", "run", "--json", "report.json", str(script)],
                              tmp_path, signal.SIGTERM)
    assert (advisor.returncode, advisor.stdout) == (-signal.SIGTERM, "ready\n"), advisor.stderr[-3000:]
    assert read_report(tmp_path / "report.json")["run"]["partial"] is True


STARTS_THEN_SLEEPS = """
    import time

    print("started", flush=True)
    time.sleep(30)
"""


@pytest.mark.timeout(120)
def test_ctrl_c_in_advisors_own_start_up_is_one_line_and_an_interrupted_end(
        program: Callable[[Path, str], Path], tmp_path: Path) -> None:
    """Before the program starts (advisor's imports, deep mode's calibrations: a second or
    more on a slow machine), Ctrl-C printed a traceback of advisor's own. Sent at a few
    moments of the start-up, it now ends advisor as Python ends on Ctrl-C, with one line.
    (Not in the first tens of milliseconds: Python's own start-up and its search for the
    module, before any of advisor's code runs, end as Python does on Ctrl-C.)"""
    script = program(tmp_path / "starts.py", STARTS_THEN_SLEEPS)
    caught = 0
    for delay in (0.25, 0.5, 0.8):
        process = subprocess.Popen([sys.executable, "-m", "advisor", "run", "--mode", "deep", str(script)],
                                   cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        if "started" in out:
            continue  # the program's own Ctrl-C: its run's end, tested above
        assert process.returncode == -signal.SIGINT, (delay, process.returncode, err[-3000:])
        assert "Traceback" not in err and err in ("", "advisor: interrupted\n"), (delay, err[-3000:])
        caught += err == "advisor: interrupted\n"
    assert caught, "no Ctrl-C landed in advisor's start-up"
