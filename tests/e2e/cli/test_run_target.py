"""``advisor run`` runs its target exactly as ``python SCRIPT`` / ``python -m MODULE`` would.

Each target prints, as JSON on its stdout, what it sees of its own start (``sys.argv``,
``sys.path``, ``__name__``, ``__file__``, the working directory...). The same program is
run by the bare interpreter and by advisor, and the two must agree; where Python's own
behaviour is plain (``sys.path[0]`` is the script's absolute directory) it is also spelled
out. A program is run once per module and several tests read that run.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from advisor.profile import Report

# what a target sees of how it was started (printed as the whole of its stdout)
FACTS = """
    import dataclasses
    import json
    import os
    import pickle
    import sys


    @dataclasses.dataclass
    class Point:
        x: int


    def importable(name):
        try:
            __import__(name)
        except ImportError:
            return False
        return True


    main = sys.modules["__main__"]
    facts = {
        "argv": sys.argv,
        "path0": sys.path[0],
        "path": sys.path,
        "name": __name__,
        "file": __file__,
        "code_file": sys._getframe().f_code.co_filename,
        "spec": None if __spec__ is None else __spec__.name,
        "package": __package__,
        "cwd": os.getcwd(),
        "globals_are_main": main.__dict__ is globals(),
        "pickles": pickle.loads(pickle.dumps(Point(3))) == Point(3),
        "helper": importable("helper"),
        "cwd_only": importable("cwd_only"),
    }
    print(json.dumps(facts))
"""

# options of advisor's that the target must receive untouched, as its own arguments
TARGET_ARGS = ("--json", "x", "-m", "y", "--mode", "bogus", "--", "-h")


@dataclass
class Both:
    """The same start of a target, by the bare interpreter and by advisor."""

    python: subprocess.CompletedProcess[str]
    advisor: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    work: Path

    @property
    def expected(self) -> dict[str, Any]:
        assert self.python.returncode == 0, self.python.stderr
        facts: dict[str, Any] = json.loads(self.python.stdout)
        return facts

    @property
    def seen(self) -> dict[str, Any]:
        assert self.advisor.returncode == 0, self.advisor.stderr[-4000:]
        facts: dict[str, Any] = json.loads(self.advisor.stdout)  # nothing else may be on stdout
        return facts


def layout(root: Path, write_program: Callable[[Path, str], Path]) -> Path:
    """``root/work`` (the cwd, with a module only it holds and a package), ``root/prog``
    (the script and a module beside it). Returns the working directory."""
    work = root / "work"
    write_program(root / "prog" / "facts.py", FACTS)
    write_program(root / "prog" / "helper.py", "VALUE = 42\n")
    write_program(work / "cwd_only.py", "VALUE = 1\n")
    write_program(work / "pkg" / "__init__.py", "")
    write_program(work / "pkg" / "mod.py", FACTS)
    write_program(work / "pkg" / "__main__.py", FACTS)
    write_program(work / "app" / "__main__.py", FACTS)
    return work


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory, program: Callable[[Path, str], Path],
          bare_python: Callable[..., subprocess.CompletedProcess[str]],
          advisor_cli: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., Both]:
    """``start(key, *target)``: run ``python *target`` and ``advisor run --json r *target`` in the
    same working directory, once per module and key (``{work}`` in `target` is that directory)."""
    runs: dict[str, Both] = {}

    def run(key: str, *target: str) -> Both:
        if key not in runs:
            work = layout(tmp_path_factory.mktemp(key), program)
            report_path = work / "report.json"
            arguments = [part.format(work=work.resolve()) for part in target]
            python = bare_python(arguments, work)
            advisor = advisor_cli(["run", "--json", str(report_path), *arguments], work)
            assert report_path.is_file(), advisor.stderr[-4000:]
            report = json.loads(report_path.read_text(encoding="utf-8"))
            Report.model_validate(report)
            runs[key] = Both(python, advisor, report, work.resolve())
        return runs[key]

    return run


def script_run(start: Callable[..., Both]) -> Both:
    return start("script", "../prog/facts.py", *TARGET_ARGS)


# -- advisor run SCRIPT ARGS --


def test_script_sees_its_argv_with_option_like_arguments_untouched(start: Callable[..., Both]) -> None:
    run = script_run(start)
    assert run.seen["argv"] == ["../prog/facts.py", *TARGET_ARGS]
    assert run.seen["argv"] == run.expected["argv"]
    assert run.report["run"]["argv"] == ["../prog/facts.py", *TARGET_ARGS]


def test_script_runs_as_main_with_its_own_globals(start: Callable[..., Both]) -> None:
    seen = script_run(start).seen
    assert seen["name"] == "__main__"
    assert seen["spec"] is None
    assert seen["package"] is None
    assert seen["globals_are_main"] is True
    assert seen["pickles"] is True  # a class of the script pickles by reference to __main__


def test_script_path0_is_its_absolute_directory_and_sys_path_is_pythons(start: Callable[..., Both]) -> None:
    run = script_run(start)
    prog = str(run.work.parent / "prog")
    assert run.seen["path0"] == prog
    assert run.expected["path0"] == prog
    assert run.seen["path"] == run.expected["path"]


def test_script_imports_beside_it_not_from_the_working_directory(start: Callable[..., Both]) -> None:
    run = script_run(start)
    assert run.seen["helper"] is True
    assert run.seen["cwd_only"] is False  # as python: the cwd is not on sys.path for a script
    assert run.expected["cwd_only"] is False


def test_script_runs_in_the_current_working_directory(start: Callable[..., Both]) -> None:
    run = script_run(start)
    assert run.seen["cwd"] == str(run.work)
    assert run.expected["cwd"] == str(run.work)


def test_script_file_names_the_script(start: Callable[..., Both]) -> None:
    run = script_run(start)
    assert Path(run.work, run.seen["file"]).resolve() == run.work.parent / "prog" / "facts.py"
    assert run.seen["code_file"] == run.seen["file"]


def test_script_file_is_absolute_as_python_makes_it(start: Callable[..., Both]) -> None:
    run = script_run(start)
    assert run.expected["file"] == str(run.work / "../prog/facts.py")  # python joins, does not normalize
    assert run.seen["file"] == run.expected["file"]
    assert run.seen["code_file"] == run.expected["code_file"]


def test_script_given_by_absolute_path_matches_python_entirely(start: Callable[..., Both]) -> None:
    # with an absolute path there is nothing to resolve: every fact must be python's
    run = start("absolute", "{work}/../prog/facts.py", "a", "-m", "b")
    assert run.seen == run.expected
    assert run.seen["argv"] == [f"{run.work}/../prog/facts.py", "a", "-m", "b"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_target_stdout_is_exactly_what_it_printed(fmt: str, run_advisor: Callable[..., Any], tmp_path: Path,
                                                  program: Callable[[Path, str], Path]) -> None:
    program(tmp_path / "out.py", """
        import atexit
        import sys

        atexit.register(print, "bye")
        print("alpha")
        print("beta", end="")
        sys.stdout.write(" gamma\\n")
        print("to stderr", file=sys.stderr)
    """)
    done = run_advisor(["run", "--format", fmt, "out.py"])
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout == "alpha\nbeta gamma\nbye\n"
    assert done.stderr.startswith("to stderr\n")
    report_text = done.stderr[len("to stderr\n"):]
    if fmt == "json":
        report = json.loads(report_text)
        assert report["run"]["argv"] == ["out.py"]
        assert [task["name"] for task in report["tasks"]] == ["MainThread"]
    else:
        assert "MainThread" in report_text
        assert "out.py" in report_text


# -- advisor run -m MODULE ARGS --


@pytest.mark.parametrize(("key", "target", "spec"), [
    ("module", ("-m", "pkg.mod", *TARGET_ARGS), "pkg.mod"),
    ("module-joined", ("-mpkg.mod", "a", "b"), "pkg.mod"),
    ("package", ("-m", "pkg", *TARGET_ARGS), "pkg.__main__"),
])
def test_module_runs_as_python_m_runs_it(key: str, target: tuple[str, ...], spec: str,
                                         start: Callable[..., Both]) -> None:
    run = start(key, *target)
    args = list(target[2:] if target[0] == "-m" else target[1:])
    assert run.seen == run.expected
    assert run.seen["name"] == "__main__"
    assert run.seen["spec"] == spec
    assert run.seen["package"] == spec.rpartition(".")[0]
    assert run.seen["argv"] == [str(run.work / (spec.replace(".", "/") + ".py")), *args]
    assert run.seen["path0"] == str(run.work)
    assert run.seen["cwd_only"] is True  # python -m puts the cwd first on sys.path
    assert run.seen["globals_are_main"] is True
    assert run.seen["pickles"] is True
    assert run.report["run"]["argv"][1:] == args
    assert run.report["run"]["exit_code"] == 0


# -- advisor run DIRECTORY (with __main__.py) --


def test_directory_runs_its_main_with_argv_as_given(start: Callable[..., Both]) -> None:
    run = start("directory", "app", "x", "--json", "y")
    assert run.seen["argv"] == ["app", "x", "--json", "y"] == run.expected["argv"]
    assert run.seen["name"] == "__main__"
    assert run.seen["file"] == str(run.work / "app" / "__main__.py") == run.expected["file"]
    assert run.seen["cwd"] == str(run.work)


def test_directory_path0_is_absolute_as_python_makes_it(start: Callable[..., Both]) -> None:
    run = start("directory", "app", "x", "--json", "y")
    assert run.expected["path0"] == str(run.work / "app")
    assert run.seen["path0"] == str(run.work / "app")
    assert run.seen["path"] == run.expected["path"]
