"""The version of the profiled code: git commit and dirty flag of the target's repository.

A report that says which commit it measured lets ``advisor diff`` and the Markdown checklist
speak of "release A and release B" instead of two file names. ``git`` is asked with a short
timeout from the target's directory; when git is missing, slow, or the target is not in a
repository, the run simply has no commit (and a user-given ``--release`` name alone).
Nothing here may fail a run.
"""

from __future__ import annotations

import os
import subprocess

from .profile import CodeVersion

GIT_TIMEOUT_S = 2.0


def _git(directory: str, *arguments: str) -> str | None:
    """git's stdout, or None when it cannot answer (not a repository, no git, timeout)."""
    try:
        done = subprocess.run(["git", "-C", directory, *arguments], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL,
                              # the user's hooks or pager must not run, and no prompt may block
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout


def code_version(directory: str, release: str | None = None) -> CodeVersion | None:
    """The commit of the repository holding `directory` and whether its tree had changes
    (tracked or untracked), plus the `release` name; None when there is nothing to say."""
    commit = None
    dirty = False
    head = _git(directory, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is not None and head.strip():
        commit = head.strip()
        status = _git(directory, "status", "--porcelain", "--untracked-files=normal")
        dirty = bool(status and status.strip())
    if commit is None and not release:
        return None
    return CodeVersion(commit=commit, dirty=dirty, release=release or None)


def describe(version: CodeVersion | None) -> str:
    """A short name of a code version for people: ``release 1.2 (abc1234, dirty)``."""
    if version is None:
        return "unknown version"
    details = []
    if version.commit:
        details.append(version.commit[:7])
    if version.dirty:
        details.append("dirty")
    inside = ", ".join(details)
    if version.release:
        return f"release {version.release}" + (f" ({inside})" if inside else "")
    return f"commit {inside}" if inside else "unknown version"
