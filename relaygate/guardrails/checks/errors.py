"""Errors a compiled check can raise while it runs (config errors are plain `ValueError` at load)."""

from __future__ import annotations


class CheckTimeout(Exception):
    """A check used up its time budget before it finished reading the text.

    The engine treats it as a guardrail error (the integration's `on_error` decides), never as a
    pass: a text that makes a check slow must not slip through it. The message names the check and
    the budget, never the text.
    """
