"""Code version: the report records the git commit and dirty flag of the target's repository
and the user's ``--release``; ``advisor diff`` and the Markdown checklist name them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from advisor.version import code_version, describe

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

PROGRAM = "import time\ntime.sleep(0.01)\nprint('done')\n"


def git(directory: Path, *arguments: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(directory), *arguments], check=True, capture_output=True, text=True,
                          env=env, timeout=30).stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    (project / "app.py").write_text(PROGRAM)
    git(project, "add", "app.py")
    git(project, "commit", "-q", "-m", "first")
    return project


def test_a_clean_repository_gives_its_commit(repository: Path) -> None:
    version = code_version(str(repository))
    assert version is not None
    assert version.commit == git(repository, "rev-parse", "HEAD") and not version.dirty and version.release is None


def test_a_changed_or_new_file_makes_it_dirty(repository: Path) -> None:
    (repository / "app.py").write_text(PROGRAM + "# changed\n")
    version = code_version(str(repository), "v2")
    assert version is not None and version.dirty and version.release == "v2"
    assert describe(version) == f"release v2 ({version.commit[:7]}, dirty)"  # type: ignore[index]


def test_outside_a_repository_only_the_release_is_known(tmp_path: Path) -> None:
    assert code_version(str(tmp_path)) is None
    version = code_version(str(tmp_path), "nightly")
    assert version is not None and version.commit is None and describe(version) == "release nightly"


def test_no_git_at_all_never_fails_the_run(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repository))  # no git on the path
    assert code_version(str(repository)) is None


def test_run_records_it_and_diff_and_the_checklist_name_the_releases(repository: Path, run_advisor: Any) -> None:
    first = git(repository, "rev-parse", "HEAD")
    done = run_advisor(["run", "--release", "A", "--json", "a.json", "app.py"], cwd=repository)
    assert done.returncode == 0, done.stderr
    # read before the run: the report it writes does not make its own tree dirty
    assert json.loads((repository / "a.json").read_text())["run"]["code_version"] == {
        "commit": first, "dirty": False, "release": "A"}
    (repository / ".gitignore").write_text("*.json\n*.md\n")
    git(repository, "add", ".gitignore")
    git(repository, "commit", "-q", "-m", "ignore reports")
    second = git(repository, "rev-parse", "HEAD")
    (repository / "app.py").write_text(PROGRAM + "print('more')\n")  # not committed: dirty
    done = run_advisor(["run", "--release", "B", "--json", "b.json", "--md", "b.md", "--baseline", "a.json",
                        "--html", "b.html", "app.py"], cwd=repository)
    assert done.returncode == 0, done.stderr
    report = json.loads((repository / "b.json").read_text())
    assert report["run"]["code_version"] == {"commit": second, "dirty": True, "release": "B"}
    assert f"release B ({second[:7]}, dirty)" in done.stderr
    assert f'<span class="chip" id="code-version">release B ({second[:7]}, dirty)</span>' in (
        repository / "b.html").read_text()
    checklist = (repository / "b.md").read_text()
    assert f"release B ({second[:7]}, dirty)" in checklist.splitlines()[2]
    assert f"Comparing between release A ({first[:7]}) and release B ({second[:7]}, dirty)." in checklist
    diff = run_advisor(["diff", "a.json", "b.json"], cwd=repository)
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines()[0] == f"between release A ({first[:7]}) and release B ({second[:7]}, dirty)"
    as_json = json.loads(run_advisor(["diff", "--format", "json", "a.json", "b.json"], cwd=repository).stdout)
    assert as_json["new_version"] == {"commit": second, "dirty": True, "release": "B"}


def test_a_run_outside_a_repository_has_no_version(tmp_path: Path, run_advisor: Any) -> None:
    (tmp_path / "app.py").write_text(PROGRAM)
    done = run_advisor(["run", "--json", "r.json", "app.py"])
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r.json").read_text())["run"]["code_version"] is None
    other = run_advisor(["diff", "r.json", "r.json"])
    assert other.stdout.startswith("wall ")


def test_release_needs_a_value(tmp_path: Path, run_advisor: Any) -> None:
    (tmp_path / "app.py").write_text(PROGRAM)
    done = run_advisor(["run", "--release"])
    assert done.returncode == 2 and done.stderr.startswith("advisor: error: ") and "Traceback" not in done.stderr
