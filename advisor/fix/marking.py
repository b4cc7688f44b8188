"""Which findings ``advisor fix`` can make, decided when the report is made.

The engine calls ``mark_fixable`` on the ranked findings: for every file a finding points
into it records the file's digest (so ``advisor fix --apply`` can later refuse a file that
changed since), and for findings of a rule with a fixer it plans the fix on the very text
the rules read, setting ``fixable`` where the fixer finds it safe. The report shows those
with ``[*]``, the way ruff marks its fixable diagnostics. Nothing here may cost the user
the report: a file that cannot be read or parsed just has no fixable findings (and libcst
is imported only when some finding's rule has a fixer).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from advisor.profile import Finding

from . import FIXED_RULES


def source_digest(data: bytes) -> str:
    """How a report names a file's content: ``sha256:<hex>`` of its bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def mark_fixable(findings: Sequence[Finding], cwd: str | None = None) -> dict[str, str]:
    """Set ``fixable`` on the findings a fixer can rewrite; the digest of each file they point into."""
    by_file: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_file[finding.location.file].append(finding)
    digests: dict[str, str] = {}
    for file, group in by_file.items():
        path = Path(file) if Path(file).is_absolute() or cwd is None else Path(cwd) / file
        try:
            data = path.read_bytes()
        except OSError:
            continue
        digests[file] = digest = source_digest(data)
        try:
            fixable_ids = fixable(data, digest, group)
        except Exception:  # a bug of ours (or a file libcst cannot read): the advice stays written
            continue
        for finding in group:
            finding.fixable = id(finding) in fixable_ids
    return digests


def fixable(data: bytes, digest: str, findings: Sequence[Finding]) -> set[int]:
    """The ``id()`` of each finding whose fix applies to this file's bytes (`digest`: their
    source_digest). Planned once per text and set of findings (what a fixer reads of them): a
    server's reports ask again and again, and libcst's parse and scopes were most of a
    report's CPU (~0.3 s for one file)."""
    relevant = [finding for finding in findings if finding.rule in FIXED_RULES]
    if not relevant:
        return set()
    key = (digest,
           tuple(finding.model_dump_json(include={"rule", "location", "fix", "evidence"}) for finding in relevant))
    planned = _PLANNED.get(key)
    if planned is None:
        from .apply import plan_edits
        from .base import SourceTree

        edits, _refusals = plan_edits(SourceTree(data.decode("utf-8")), relevant)
        ids = {id(edit.finding) for edit in edits}
        planned = _PLANNED[key] = tuple(index for index, finding in enumerate(relevant) if id(finding) in ids)
        while len(_PLANNED) > MAX_PLANNED:
            del _PLANNED[next(iter(_PLANNED))]
    return {id(relevant[index]) for index in planned}


MAX_PLANNED = 64  # files and sets of findings remembered (oldest forgotten first)
_PLANNED: dict[tuple[str, tuple[str, ...]], tuple[int, ...]] = {}
