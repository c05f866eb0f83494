"""Searching with RE2 under a time budget, for patterns an operator wrote (regexes, keyword lists).

RE2's time is linear in the text, but the constant depends on the pattern: a DFA that keeps running
out of memory falls back to an NFA, and a crafted pattern (`a[ab]{300}c`) then reads ~2 s per MB.
One RE2 call cannot be interrupted, so a large text is searched in windows of `WINDOW_BYTES` and the
`Deadline` is checked between windows and between matches: a check stops after about its budget
plus one window's scan, and raises `CheckTimeout` rather than holding the request.

Windows give the same matches as one scan of the whole text: RE2 reads the text around a window
(for `^`, `$`, `\\b`), and each window overlaps the next by the longest a match can be, so a match
is only taken from a window that holds all of it. A pattern whose matches are unbounded (`\\d+`)
cannot be windowed: it is scanned whole, with the deadline checked between matches only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from relaygate.guardrails.checks.errors import CheckTimeout
from relaygate.guardrails.checks.re2_text import Re2Match, Re2Pattern

WINDOW_BYTES = 16 * 1024  # a 2 KB prompt is one window: no overhead where it matters
_UTF8_MAX_BYTES = 4


class Deadline:
    """The time left to one evaluation of one check."""

    __slots__ = ("_expires", "_message")

    def __init__(self, seconds: float, check_name: str) -> None:
        # CPU time of this thread, not wall time: a check the OS preempted under load has not spent its
        # budget (wall time would turn a busy machine into guardrail errors, 503 under enforce).
        self._expires = time.thread_time() + seconds
        self._message = f"{check_name} check exceeded its {seconds * 1000:g} ms budget"

    def check(self) -> None:
        """Raise CheckTimeout once the budget is spent."""
        if time.thread_time() > self._expires:
            raise CheckTimeout(self._message)


def _char_start(data: bytes, index: int) -> int:
    """`index` moved forward to the first byte of a UTF-8 character (or the end)."""
    size = len(data)
    while index < size and 0x80 <= data[index] < 0xC0:
        index += 1
    return index


def search_within(
    pattern: Re2Pattern, data: bytes, pos: int, max_chars: int | None, deadline: Deadline
) -> Re2Match | None:
    """The first match of `pattern` in `data` at or after `pos`, as `pattern.search(data, pos)` finds it.

    `max_chars` is the longest match the pattern can make (None: unbounded, one scan to the end).
    """
    size = len(data)
    overlap = size if max_chars is None else max_chars * _UTF8_MAX_BYTES
    while True:
        take_before = _char_start(data, pos + WINDOW_BYTES)  # matches starting here or later: next window
        end = size if take_before + overlap >= size else _char_start(data, take_before + overlap)
        match = pattern.search(data, pos, end)
        if end >= size:
            return match
        if match is not None and match.start() < take_before:
            return match
        deadline.check()
        pos = take_before


def finditer_within(pattern: Re2Pattern, data: bytes, max_chars: int | None, deadline: Deadline) -> Iterator[Re2Match]:
    """Every match of `pattern` in `data`, as `pattern.finditer(data)` gives them, under `deadline`."""
    pos, size = 0, len(data)
    while pos <= size:
        match = search_within(pattern, data, pos, max_chars, deadline)
        if match is None:
            return
        yield match
        deadline.check()
        end = match.end()
        pos = end if end > match.start() else _char_start(data, end + 1)  # past an empty match
