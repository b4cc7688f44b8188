"""A report file that cannot be written although its directory looks writable (a full disk,
a read-only mount; here a file-size limit, which any user can set): one line, exit 2, the
other outputs still made, and never a passed CI gate.

``--json`` and friends are checked before the target runs (the directory exists and is
writable); what only the write itself finds was a traceback in ``report`` and ``merge``,
and in ``run`` an "internal error" with the target's exit status 0, so ``--fail-on`` let a
pipeline pass with no report at all.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.conftest import ADVISOR, advisor_env

LIMIT_BYTES = 200  # any report is bigger

BLOCKING = """
    import asyncio
    import time


    async def tick():
        for _ in range(10):
            await asyncio.sleep(0.01)


    async def main():
        ticker = asyncio.create_task(tick())
        time.sleep(0.2)
        await ticker


    asyncio.run(main())
    print("done")
"""


def limited(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """advisor with writes past LIMIT_BYTES refused (EFBIG, with SIGXFSZ ignored)."""
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT_BYTES, LIMIT_BYTES))

    return subprocess.run([*ADVISOR, *args], cwd=cwd, env=advisor_env({"PYTHONDONTWRITEBYTECODE": "1"}),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, preexec_fn=limit)


@pytest.fixture
def saved(tmp_path: Path, program: Callable[[Path, str], Path],
          run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> Path:
    program(tmp_path / "blocking.py", BLOCKING)
    done = run_advisor(["run", "--json", "saved.json", "blocking.py"])
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "saved.json"


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("advisor: ")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def test_run_says_so_exits_2_and_fails_the_gate(saved: Path) -> None:
    work = saved.parent
    done = limited(["run", "--fail-on", "high", "--format", "json", "--json", "new.json", "--md", "new.md",
                    "blocking.py"], work)
    assert done.stdout == "done\n"  # the program ran as ever
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "new.json: cannot write" in line and "new.md: cannot write" in line
    # the report still went to stderr, whole
    report = json.loads(done.stderr[:done.stderr.index("\nadvisor: ")])
    assert [finding["rule"] for finding in report["findings"]] == ["blocking-sleep"]
    assert not (work / "new.json").exists() and not list(work.glob(".new.json.*"))


def test_report_tries_every_file_and_still_prints(saved: Path) -> None:
    work = saved.parent
    done = limited(["report", str(saved), "--format", "json", "--json", "copy.json", "--collapsed", "stacks.txt"],
                   work)
    assert done.returncode == 2
    assert one_error_line(done.stderr) == ("advisor: error: copy.json: cannot write: File too large; "
                                           "stacks.txt: cannot write: File too large")
    assert json.loads(done.stdout)["findings"][0]["rule"] == "blocking-sleep"
    assert sorted(path.name for path in work.iterdir() if path.suffix in (".json", ".txt")) == ["saved.json"]


def test_merge_output_that_cannot_be_written(saved: Path) -> None:
    done = limited(["merge", str(saved), str(saved), "-o", "all.json"], saved.parent)
    assert done.returncode == 2
    assert one_error_line(done.stderr) == "advisor: error: all.json: cannot write: File too large"
    assert not (saved.parent / "all.json").exists()
