"""W3C trace context: the trace id every request carries, continued from an incoming `traceparent`, and
the `traceparent` a request sends on where an upstream continues its trace (MCP tool calls).

The id is decided when the request arrives (it goes out in `x-relaygate-trace-id` before any answer,
streams included) and reused by the log row and, when tracing is on, by every span of the request.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class IncomingParent:
    """The caller's span a request continues (`traceparent`)."""

    trace_id: str
    span_id: str
    sampled: bool


def parse_traceparent(value: bytes | None) -> IncomingParent | None:
    """The parent a valid `traceparent` names; None for a missing or invalid one (a new trace starts)."""
    if value is None or len(value) > 512:
        return None
    match = _TRACEPARENT.match(value.decode("latin-1").strip())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or (version == "00" and len(value.strip()) != 55):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return IncomingParent(trace_id, span_id, bool(int(flags, 16) & 1))


def new_trace_id(rng: random.Random) -> str:
    """128 random bits from the process's generator (an id, not a secret), never all zero."""
    return f"{rng.getrandbits(128) or 1:032x}"


def traceparent(trace_id: str, span_id: int, sampled: bool) -> str:
    """The W3C `traceparent` naming span `span_id` of trace `trace_id` as the parent of what an upstream
    does (version 00)."""
    return f"00-{trace_id}-{span_id:016x}-{'01' if sampled else '00'}"
