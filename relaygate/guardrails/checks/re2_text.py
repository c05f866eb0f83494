"""Running RE2 over a `str`: one UTF-8 encoding per text shared by every pattern, and the way back
from RE2's byte offsets to `str` offsets.

Why RE2 (google-re2, installed with cel-python and declared in pyproject): it matches in time linear in
the text whatever the pattern, with no backtracking, so no pattern an operator writes can hang a
request on `(a+)+$`-style input, and its DFA scans a 2 KB prompt several times faster than `re`.
It reads UTF-8 bytes: `re2.search(str)` would re-encode the text for every pattern, so a check
encodes once (`EncodedText`) and maps the few offsets it reports back to characters.

The price is RE2's syntax: no lookaround, no backreferences, no possessive quantifiers, repetition
counts up to 1000, and `\\d \\w \\s \\b` are ASCII-only. Patterns are also parsed by Python's own
parser (`pattern_width`), so an accepted pattern is one both read; its width comes from that parse.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from re import _parser  # the parse tree, for a width: here since 3.11
from typing import Protocol, cast

import re2  # untyped: used through the Re2Pattern protocol below

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a DFA that runs out of memory falls back to the NFA: not worth a log line
_LARGE_OPTIONS = re2.Options()
_LARGE_OPTIONS.log_errors = False
_LARGE_OPTIONS.max_mem = 64 << 20
# Python's "unbounded" width: MAXREPEAT in 3.11 (where getwidth caps at it), MAXWIDTH from 3.12.
_UNBOUNDED = min(_parser.MAXREPEAT, getattr(_parser, "MAXWIDTH", _parser.MAXREPEAT))


class Re2Match(Protocol):
    """The part of a `re2` match object the checks use (offsets are bytes of the encoded text)."""

    def start(self, group: int = 0) -> int: ...

    def end(self, group: int = 0) -> int: ...


class Re2Pattern(Protocol):
    """The part of a compiled `re2` pattern the checks use: always over `EncodedText.data`."""

    def search(self, text: bytes, pos: int | None = None, endpos: int | None = None) -> Re2Match | None: ...

    def finditer(self, text: bytes, pos: int | None = None, endpos: int | None = None) -> Iterator[Re2Match]: ...


def compile_re2(pattern: str, *, large: bool = False) -> Re2Pattern:
    """`pattern` compiled by RE2; ValueError (RE2's reason) when RE2 cannot run it.

    `large`: a memory budget of 64 MiB instead of 8 (allocated only as the DFA needs it), so a list of
    thousands of keywords keeps to the DFA instead of falling back to the ~10x slower NFA.
    """
    try:
        return cast(Re2Pattern, re2.compile(pattern, _LARGE_OPTIONS if large else _OPTIONS))
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


def pattern_width(pattern: str, flags: int = 0) -> tuple[int, int | None]:
    """(shortest, longest) text `pattern` can match, in characters; longest None when unbounded.

    From Python's parse tree, so also a syntax check: ValueError when Python cannot parse it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible nested set" and the like: RE2 decides the meaning
        try:
            low, high = _parser.parse(pattern, flags).getwidth()
        except (re.error, OverflowError, RecursionError) as error:
            raise ValueError(str(error)) from None
    return int(low), (None if high >= _UNBOUNDED else int(high))


class EncodedText:
    """One text as RE2 reads it (UTF-8 bytes) and the map from byte offsets back to characters.

    Lone surrogates (which JSON can carry) are encoded as `?`: one byte for one character, so the
    text stays valid UTF-8 for RE2 and every offset maps back exactly; encoding never raises.
    """

    __slots__ = ("text", "data", "is_ascii", "_byte", "_char")

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8", "replace")
        self.is_ascii = len(self.data) == len(text)
        self._byte = 0  # the last mapped offset pair: mapping increasing offsets reads the text once
        self._char = 0

    def char_offset(self, byte_offset: int) -> int:
        """The character offset of `byte_offset` (a character boundary RE2 reported).

        Cheapest for increasing offsets: it decodes only what lies between this offset and the last.
        """
        if self.is_ascii:
            return byte_offset
        if byte_offset < self._byte:
            self._byte = self._char = 0
        # "replace": an offset inside a character (none RE2 reports) would miscount, never raise.
        self._char += len(self.data[self._byte : byte_offset].decode("utf-8", "replace"))
        self._byte = byte_offset
        return self._char
