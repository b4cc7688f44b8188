"""Renderers: each turns a saved or fresh ``Report`` into text, and nothing else.

Every renderer works from the report alone (no probe, no live process), so any format
can be produced later from a saved JSON file with ``advisor report``.
"""

from __future__ import annotations

from collections.abc import Callable

from advisor.profile import Report, report_json

from .markdown import render_markdown
from .sarif import render_sarif
from .text import render_text

RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "json": report_json,
    "md": render_markdown,
    "sarif": render_sarif,
}
