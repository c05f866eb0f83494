"""Usage of a relayed Responses API answer (`/responses`), read on the way with bounded memory.

The answer is relayed chunk by chunk as it comes; this reader only watches. A JSON answer (first byte
`{`) is kept whole up to the answer cap and parsed once at the end, as it must be. A stream is never
kept: lines are cut as they arrive and only `data:` lines naming `response.completed` (whose
`response.usage` is the answer's usage) are parsed. A line longer than the line cap is not held
either: its first bytes (the event's type) and last `_TAIL` bytes (where `usage` sits, after the
output) are, and the usage object is taken from that tail. What is kept for the log row is the first
`log_limit` bytes (the row holds no more), and nothing past the answer cap, as when it was kept whole.
"""

from __future__ import annotations

import re

import orjson

from relaygate.context import Usage
from relaygate.dialects.openai.usage import read_usage

_COMPLETED = b"response.completed"
_HEAD = 256  # bytes of an over-long line kept to know its event type
_TAIL = 64 << 10  # bytes of an over-long line kept to find its usage (it comes after the output)
_USAGE_KEY = b'"usage"'
_WHITESPACE = b" \t\r\n"
_STRING_OR_BRACE = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}]')


class ResponsesUsageReader:
    """Watches a Responses answer go by; `finish` says what to log and has read its usage."""

    __slots__ = (
        "usage",
        "_answer_cap",
        "_line_cap",
        "_log_limit",
        "_size",
        "_stream",
        "_json",
        "_logged",
        "_logged_size",
        "_line",
        "_head",
        "_tail",
    )

    def __init__(self, usage: Usage, answer_cap: int, line_cap: int, log_limit: int) -> None:
        self.usage = usage
        self._answer_cap = answer_cap
        self._line_cap = max(line_cap, _HEAD + _TAIL)
        self._log_limit = log_limit
        self._size = 0  # bytes seen
        self._stream: bool | None = None  # decided by the first byte: `{` is a JSON answer
        self._json: list[bytes] | None = []  # a JSON answer, kept whole (None past the cap)
        self._logged: list[bytes] = []  # a stream's first `log_limit` bytes
        self._logged_size = 0
        self._line = b""  # a stream's partial last line (at most the line cap)
        self._head: bytes | None = None  # an over-long line's first bytes (None: no line is over-long)
        self._tail = b""  # and its last ones

    @property
    def held(self) -> int:
        """Bytes a stream holds now: the partial line, or an over-long line's ends, and the logged head."""
        return len(self._line) + len(self._head or b"") + len(self._tail) + self._logged_size

    def feed(self, chunk: bytes) -> None:
        """One relayed chunk."""
        if not chunk:
            return
        if self._stream is None:
            self._stream = chunk[:1] != b"{"
        self._size += len(chunk)
        if not self._stream:
            if self._json is not None:
                self._json.append(chunk)
                if self._size > self._answer_cap:
                    self._json = None  # too large to keep: neither logged nor read, as before
            return
        if self._logged_size < self._log_limit:
            part = chunk[: self._log_limit - self._logged_size]
            self._logged.append(part)
            self._logged_size += len(part)
        self._scan(chunk)

    def finish(self) -> bytes | None:
        """The answer's bytes for the log row (the whole JSON answer, or a stream's first `log_limit`
        bytes; None past the answer cap), its usage read."""
        if self._stream is None:
            return b""
        if not self._stream:
            if self._json is None:
                return None
            body = b"".join(self._json)
            self._read_json(body)
            return body
        self._end_stream()
        return b"".join(self._logged) if self._size <= self._answer_cap else None

    def _read_json(self, body: bytes) -> None:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(parsed, dict):
            read_usage(parsed.get("usage"), self.usage)

    def _scan(self, chunk: bytes) -> None:
        start = 0
        if self._head is not None:  # inside an over-long line: only its end matters
            end = chunk.find(b"\n")
            if end == -1:
                self._tail = (self._tail + chunk)[-_TAIL:]
                return
            self._tail = (self._tail + chunk[:end])[-_TAIL:]
            self._end_long_line()
            start = end + 1
        data = self._line + chunk[start:] if self._line else chunk[start:]
        cut = data.rfind(b"\n")
        if cut == -1:
            self._hold(data)
            return
        if _COMPLETED in data:
            for line in data[:cut].split(b"\n"):
                self._read_line(line)
        self._hold(data[cut + 1 :])

    def _hold(self, rest: bytes) -> None:
        """Keep a partial line; one longer than the cap keeps only its head and tail."""
        if len(rest) <= self._line_cap:
            self._line = rest
            return
        self._line = b""
        self._head, self._tail = rest[:_HEAD], rest[-_TAIL:]

    def _read_line(self, line: bytes) -> None:
        if not (line.startswith(b"data:") and _COMPLETED in line):
            return
        try:
            event = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            return
        response = event.get("response") if isinstance(event, dict) else None
        if isinstance(response, dict):
            read_usage(response.get("usage"), self.usage)

    def _end_long_line(self) -> None:
        head, tail = self._head or b"", self._tail
        self._head, self._tail = None, b""
        if head.startswith(b"data:") and _COMPLETED in head:
            usage = last_usage_object(tail)
            if usage is not None:
                read_usage(usage, self.usage)

    def _end_stream(self) -> None:
        """The stream's last line, which no line end closed."""
        if self._head is not None:
            self._end_long_line()
        elif self._line:
            line, self._line = self._line, b""
            self._read_line(line)


def last_usage_object(data: bytes) -> object:
    """The last `"usage": {...}` object whole in `data` (a fragment of JSON), parsed; None when there is none."""
    at = data.rfind(_USAGE_KEY)
    while at != -1:
        i = at + len(_USAGE_KEY)
        while i < len(data) and data[i] in _WHITESPACE:
            i += 1
        if i < len(data) and data[i] == 58:  # ':'
            i += 1
            while i < len(data) and data[i] in _WHITESPACE:
                i += 1
            end = _object_end(data, i) if i < len(data) and data[i] == 123 else -1  # '{'
            if end != -1:
                try:
                    return orjson.loads(data[i:end])
                except orjson.JSONDecodeError:
                    pass
        at = data.rfind(_USAGE_KEY, 0, at)
    return None


def _object_end(data: bytes, start: int) -> int:
    """Where the object opening at `start` ends (one past its `}`), strings skipped; -1 if it does not."""
    depth = 0
    for match in _STRING_OR_BRACE.finditer(data, start):
        token = match.group()
        if token == b"{":
            depth += 1
        elif token == b"}":
            depth -= 1
            if depth == 0:
                return match.end()
    return -1
