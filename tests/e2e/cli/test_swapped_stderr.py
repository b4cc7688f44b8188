"""A target that swaps ``sys.stderr`` for an object of its own does not swallow advisor's report."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

SWAPS_STDERR = """
    import io
    import sys
    import time

    sys.stderr = io.StringIO()  # never restored, as a daemon that silences itself would do
    time.sleep(0.05)
    print("done")
"""


def test_the_report_reaches_the_stderr_advisor_started_with(
        tmp_path: Path, run_advisor: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    script = tmp_path / "swaps.py"
    script.write_text(textwrap.dedent(SWAPS_STDERR), encoding="utf-8")
    run = run_advisor(["run", "--format", "md", str(script)])
    assert run.returncode == 0, run.stderr
    assert run.stdout == "done\n"
    assert "MainThread" in run.stderr, run.stderr
