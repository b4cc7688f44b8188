"""The one table of mechanical fixes: rule slug -> fixer.

A rule listed here has findings that ``advisor fix`` can rewrite (when its fixer finds the
change safe on the code at hand); every other finding keeps its written advice.
"""

from __future__ import annotations

from .base import Fixer
from .cache import CacheableFunctionFixer
from .gather import SequentialAwaitsFixer
from .json_copy import JsonCopyFixer
from .logging_args import ExcessLoggingFixer
from .sleep import BlockingSleepFixer

FIXERS: dict[str, Fixer] = {fixer.slug: fixer for fixer in (
    BlockingSleepFixer(),
    CacheableFunctionFixer(),
    ExcessLoggingFixer(),
    JsonCopyFixer(),
    SequentialAwaitsFixer(),
)}
