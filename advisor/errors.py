"""Errors the user can cause: shown as one line, exit status 2, never a traceback."""

from __future__ import annotations


class UsageError(Exception):
    """Bad option, missing script, unreadable file: the message is the whole story."""


USAGE_STATUS = 2  # the exit status of a UsageError
