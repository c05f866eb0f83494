"""`CacheRecord`: a miss's answer kept for the response cache once it is known to be a complete success.

Only a 200 whose stream reached its terminal event (or a whole JSON answer), not filtered, not flagged
by a guardrail and under the entry cap is stored, in the background after the answer went out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.cache.assemble import assemble
from relaygate.cache.entry import CacheEntry

if TYPE_CHECKING:
    from relaygate.cache.store import CacheStore
    from relaygate.pipeline.cache_decide import CacheDecision
    from relaygate.pipeline.call import Call


@dataclass(slots=True)
class CacheRecord:
    """Collects a miss's answer and stores it once it is known to be a complete success."""

    call: Call
    decision: CacheDecision
    store: CacheStore
    max_bytes: int
    chunks: list[bytes] | None = None  # a stream's relayed events
    size: int = 0
    encoded: bytes | None = None  # what is to be stored (single-flight followers get it too)

    def add(self, out: bytes) -> None:
        """A relayed stream chunk (recording stops past the entry cap)."""
        if self.chunks is None:
            self.chunks = []
        self.size += len(out)
        if self.size <= self.max_bytes:
            self.chunks.append(out)

    def answer(self, body: bytes, content_type: str, flagged: bool) -> None:
        """A non-streaming 200: store it unless it must not be."""
        if self._refused(body, flagged):
            return
        self._store(
            CacheEntry(
                self.decision.kind, body, None, time.time(), self.call.ctx.request_id, self._cost(), content_type
            )
        )

    def stream_ended(self, flagged: bool) -> None:
        """A stream reached its end: store it when it is complete (terminal event, no error, under the cap)."""
        ctx = self.call.ctx
        if self.chunks is None or self.size > self.max_bytes or ctx.truncated or ctx.status != 200:
            return
        events = split_events(b"".join(self.chunks))
        body = assemble(self.decision.kind, events)
        if body is None or self._refused(body, flagged):
            return
        body = _with_usage(body, ctx.usage)
        self._store(
            CacheEntry(
                self.decision.kind, body, tuple(events), time.time(), ctx.request_id, self._cost(), "application/json"
            )
        )

    def _refused(self, body: bytes, flagged: bool) -> bool:
        if self.decision.no_store or flagged or len(body) > self.max_bytes:
            return True
        return _stop_reason_refuses(body, self.decision.rule.cache_truncated)

    def _cost(self) -> float:
        cost, _ = self.call.ctx.cost()
        return cost or 0.0

    def _store(self, entry: CacheEntry) -> None:
        encoded = entry.encode()
        if len(encoded) <= self.max_bytes:
            self.encoded = encoded

    async def write(self) -> None:
        """Store what was kept, once the answer has gone out: the client never waits for it, and the
        request's single-flight ends only after it, so a request arriving then finds the entry."""
        if self.encoded is None:
            return
        decision = self.decision
        await self.call.gateway.cache.write(
            self.store, decision.key, self.call.ctx.request_id, self.encoded, decision.ttl, decision.semantic_at
        )


def _stop_reason_refuses(body: bytes, keep_truncated: bool) -> bool:
    """A filtered answer is never stored; one cut by max_tokens only when the rule says so."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(answer, dict):
        return False
    reasons = [c.get("finish_reason") for c in answer.get("choices") or () if isinstance(c, dict)]
    reasons.append(answer.get("stop_reason"))
    if "content_filter" in reasons or "refusal" in reasons:
        return True
    return not keep_truncated and ("length" in reasons or "max_tokens" in reasons)


def _with_usage(body: bytes, usage: Any) -> bytes:
    """A stream the caller took without its usage chunk: the assembled answer still says its usage."""
    if b'"usage"' in body or usage.input_tokens is None:
        return body
    parsed = orjson.loads(body)
    prompt, completion = usage.input_tokens or 0, usage.output_tokens or 0
    parsed["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return orjson.dumps(parsed)


def split_events(data: bytes) -> list[bytes]:
    """Whole SSE events (each with its blank line) from relayed bytes."""
    data = data.replace(b"\r\n", b"\n")
    return [part + b"\n\n" for part in data.split(b"\n\n") if part.strip()]
