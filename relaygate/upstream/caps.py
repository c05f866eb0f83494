"""How much of one upstream answer the gateway may hold: the settings every upstream read obeys."""

from __future__ import annotations

from dataclasses import dataclass

from relaygate.http.sse_events import DEFAULT_MAX_EVENT_BYTES


@dataclass(frozen=True, slots=True)
class AnswerCaps:
    """How much of one upstream answer the gateway holds at once (`max_sse_line_bytes`, `max_answer_bytes`).

    A stream event (or line) longer than `sse_line_bytes`, or a non-streaming answer larger than
    `answer_bytes`, is a 502: a broken upstream must not grow the gateway's memory without bound.
    """

    sse_line_bytes: int = DEFAULT_MAX_EVENT_BYTES
    answer_bytes: int = 64 << 20


DEFAULT_CAPS = AnswerCaps()
