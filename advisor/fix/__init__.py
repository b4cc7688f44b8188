"""Mechanical, safe fixes of findings as unified diffs (``advisor fix REPORT.json [--apply]``).

One fixer per rule whose advice can be written as code without judgement (``registry``),
each a libcst rewrite that keeps the file's formatting and comments and refuses, with a
reason, wherever the change could alter what the program does; ``apply`` combines a
file's edits and makes the diff; ``marking`` tells the engine which findings can be fixed
and records the digest of every file findings point into.
"""

from __future__ import annotations

# the rules with a fixer in ``registry.FIXERS`` (kept here so that asking costs no libcst import)
FIXED_RULES = frozenset({"blocking-sleep", "cacheable-function", "excess-logging", "redundant-conversion",
                         "sequential-awaits"})
