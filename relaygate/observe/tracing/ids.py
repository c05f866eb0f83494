"""Span ids for spans built after the fact: the root takes the trace id the request already sent.

The response's `x-relaygate-trace-id` (and the log row) were decided when the request arrived, before
any span existed; the SDK asks its id generator for a trace id only for a root without a parent, and
this generator answers with the id set for the request being recorded.
"""

from __future__ import annotations

import random

from opentelemetry.sdk.trace.id_generator import IdGenerator


class RequestIds(IdGenerator):
    """Trace id: the one set by `use` (the request's); span ids: 64 random bits."""

    def __init__(self) -> None:
        self._rng = random.Random()  # ids, not secrets: seeded from os.urandom
        self._trace_id = 0

    def use(self, trace_id: int) -> None:
        """The trace id of the next root span (spans are built on one thread, one request at a time)."""
        self._trace_id = trace_id

    def generate_trace_id(self) -> int:
        return self._trace_id or self._rng.getrandbits(128) or 1

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def is_trace_id_random(self) -> bool:
        return True  # relaygate's trace ids are 128 random bits (observe/trace_context.py)
