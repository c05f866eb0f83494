"""The response-cache step of the LLM pipeline (docs/cache.md): look up, answer a hit, and note it.

An exact lookup first, then (semantic rules) the nearest similar request's entry. A hit is answered
here, in either shape, with its status headers, $0 cost and the original request id; a backend
failure is a miss (`x-tfy-cache-status: error`), counted, never a failed request.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.cache.entry import CacheEntry
from relaygate.cache.errors import CacheBackendError
from relaygate.cache.replay import replay_json, replay_stream
from relaygate.cache.semantic_partition import conversation_length, semantic_partition
from relaygate.guardrails.engine import GuardrailFailure
from relaygate.http.responses import send_bytes
from relaygate.pipeline.internal import embed

if TYPE_CHECKING:
    from relaygate.cache.store import CacheStore
    from relaygate.http.types import RawHeaders, Send
    from relaygate.pipeline.cache_decide import CacheDecision
    from relaygate.pipeline.call import Call


SEMANTIC_EMBED_TIMEOUT = 10.0  # seconds for the embedding of a semantic lookup


async def lookup(store: CacheStore, decision: CacheDecision) -> CacheEntry | None:
    """The stored entry for this request (None: a miss, or a refresh asked for, or too old)."""
    if decision.force_refresh:
        return None
    started = time.perf_counter()
    try:
        raw = await store.get(decision.key.storage_key)
    except CacheBackendError:
        decision.status = "error"
        return None
    finally:
        decision.lookup_started = started
        decision.lookup_ms = (time.perf_counter() - started) * 1000.0
    if raw is None:
        return None
    try:
        entry = CacheEntry.decode(raw)
    except ValueError:
        decision.status = "error"
        return None
    if decision.max_age is not None and time.time() - entry.created > decision.max_age:
        return None
    return entry


def note(call: Call, decision: CacheDecision, **more: Any) -> None:
    """The request's cache facts for the log row (`extra.cache`) and the applied-configurations header."""
    call.ctx.extra["cache"] = {
        "status": decision.status,
        "rule": decision.rule.id,
        "type": decision.rule.type,
        "key_prefix": decision.key.short,
        **({"lookup_ms": round(decision.lookup_ms, 3)} if decision.lookup_ms is not None else {}),
        **({"namespace": decision.namespace} if decision.namespace else {}),
        **more,
    }
    call.gateway.cache.count(decision.status)
    if decision.lookup_ms is not None:
        call.ctx.add_span(
            "relaygate.cache.lookup",
            decision.lookup_started,
            decision.lookup_started + decision.lookup_ms / 1000.0,
            False,
            (
                ("relaygate.cache.status", decision.status),
                ("relaygate.cache.type", decision.rule.type),
                ("relaygate.cache.rule", decision.rule.id),
                ("relaygate.cache.key_prefix", decision.key.short),
            ),
            decision.status == "error",
        )


def status_headers(decision: CacheDecision | None, ctx_extra: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """`x-tfy-cache-status` on every answer of a request that asked for or matched a cache rule."""
    if decision is not None:
        return [(b"x-tfy-cache-status", decision.status.encode())]
    cache = ctx_extra.get("cache")
    if cache is not None:
        return [(b"x-tfy-cache-status", str(cache["status"]).encode())]
    return []


async def answer_hit(
    call: Call,
    send: Send,
    decision: CacheDecision,
    entry: CacheEntry,
    stream: bool,
    wants_usage: bool,
    headers: RawHeaders,
) -> None:
    """Send a stored answer: the JSON or the replayed stream, new ids, the usage as first reported."""
    ctx = call.ctx
    decision.status = "hit"
    ctx.cache_hit = True
    ctx.status = 200
    age = max(0, int(time.time() - entry.created))
    found = {"similarity": round(decision.similarity, 4)} if decision.similarity is not None else {}
    note(call, decision, original_request_id=entry.request_id, saved_usd=entry.cost_usd, age_s=age, **found)
    call.gateway.cache.saved_usd += entry.cost_usd
    out = [
        *headers,
        (b"x-tfy-cache-status", b"hit"),
        (b"x-tfy-cached-trace-id", entry.request_id.encode("latin-1")),
        (b"age", str(age).encode()),
        *applied_header(ctx),
    ]
    if decision.similarity is not None:
        out.append((b"x-tfy-cache-similarity-score", f"{decision.similarity:.4f}".encode()))
    if stream and entry.kind != "json":
        events = replay_stream(entry, include_usage=wants_usage)
        ctx.ttft_ms = ctx.elapsed_ms()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), *out],
            }
        )
        body = b"".join(events)
        await send({"type": "http.response.body", "body": body, "more_body": False})
        ctx.response_body = body if ctx.log_bodies else None
        ctx.last_chunk_ms = ctx.elapsed_ms()
        return
    body = replay_json(entry)
    ctx.response_body = body
    await send_bytes(send, 200, body, entry.content_type.encode("latin-1"), out)


def applied_header(ctx: Any) -> list[tuple[bytes, bytes]]:
    applied = ctx.applied_configurations()
    return [(b"x-tfy-applied-configurations", orjson.dumps(applied))] if applied else []


async def semantic_lookup(
    call: Call, store: CacheStore, decision: CacheDecision, body: dict[str, Any]
) -> CacheEntry | None:
    """A stored answer to a similar request: the last user message embedded by the rule's embedding model
    (through this gateway, as the caller, so its cost is logged), compared with the entries whose every
    other key part is equal. Long conversations are not looked up (they rarely repeat)."""
    rule = decision.rule
    if rule.embedding_model is None or conversation_length(body) > rule.max_messages:
        return None
    found = semantic_partition(
        api=decision.key.key_object["api"],
        model=decision.key.key_object["model"],
        body=body,
        headers=decision.key.key_object["hdr"],
        scope=decision.scope,
        namespace=decision.namespace,
        include_user=rule.key_includes_user,
        embedding_model=rule.embedding_model,
    )
    if found is None:
        return None
    partition, text = found
    index = call.gateway.cache.index_for(call.gateway.snapshot.cache)
    try:
        vector = await embed(call, rule.embedding_model, text, SEMANTIC_EMBED_TIMEOUT)
        best = await index.best(partition, vector)
    except (GuardrailFailure, CacheBackendError, ValueError):
        decision.status = "error"
        return None
    decision.semantic_at = (index, partition, vector)
    if best is None or best[1] < decision.threshold:
        return None
    storage_key, score = best
    try:
        raw = await store.get(storage_key)
        entry = CacheEntry.decode(raw) if raw is not None else None
    except (CacheBackendError, ValueError):
        entry = None
    if entry is None:
        await index.discard(partition, storage_key)
        return None
    decision.similarity = score
    return entry
