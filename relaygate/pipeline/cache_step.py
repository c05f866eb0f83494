"""The response-cache step of the LLM pipeline (docs/cache.md): decide, look up, answer a hit, and
record a complete success for later requests.

`decide` reads the request's rule (the first cache rule it matches, else the `x-tfy-cache-config`
header alone when the config allows it) and the header's controls, which may only narrow the rule:
a shorter TTL, a namespace, a refresh, no-store, a maximum age. The key holds the caller's scope
(subject by default; `global` only where config says so), so no header can reach another caller's
entries. A backend failure is a miss (`x-tfy-cache-status: error`), counted, never a failed request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.cache.assemble import assemble
from relaygate.cache.entry import CacheEntry, EntryKind
from relaygate.cache.errors import CacheBackendError
from relaygate.cache.key import CacheKey, cache_key
from relaygate.cache.replay import replay_json, replay_stream
from relaygate.cache.semantic_partition import conversation_length, semantic_partition
from relaygate.errors import BadRequest
from relaygate.guardrails.engine import GuardrailFailure
from relaygate.http.responses import send_bytes
from relaygate.pipeline.internal import embed

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.cache.store import CacheStore
    from relaygate.cache.vector_index import VectorIndex
    from relaygate.http.types import RawHeaders, Send
    from relaygate.pipeline.call import Call
    from relaygate.runtime.cache import CachePolicy, CacheRule

# Operation -> what an entry of it is (how it streams, if it does).
ENTRY_KINDS: dict[str, EntryKind] = {
    "chat": "openai_chat",
    "completions": "openai_completions",
    "messages": "anthropic_messages",
    "embeddings": "json",
    "rerank": "json",
    "moderations": "json",
    "messages_count_tokens": "json",
}
SEMANTIC_EMBED_TIMEOUT = 10.0  # seconds for the embedding of a semantic lookup
_KEY_HEADERS = (b"x-tfy-provider-name", b"x-tfy-strict-openai", b"anthropic-version", b"anthropic-beta")
_HEADER_FIELDS = frozenset(("type", "ttl", "namespace", "force_refresh", "no_store", "max_age", "similarity_threshold"))


@dataclass(slots=True)
class CacheDecision:
    """How this request uses the cache."""

    rule: CacheRule
    key: CacheKey
    kind: EntryKind
    ttl: int
    namespace: str
    force_refresh: bool
    no_store: bool
    max_age: float | None
    threshold: float = 0.9  # semantic: the least cosine similarity that counts as a hit
    scope: str = ""
    status: str = "miss"  # hit | miss | error | bypass, for the header and the log row
    similarity: float | None = None  # semantic hits: the score
    semantic_at: tuple[VectorIndex, str, list[float]] | None = None  # where a semantic miss's answer is indexed
    lookup_ms: float | None = None
    lookup_started: float = 0.0

    @property
    def semantic(self) -> bool:
        return self.rule.type == "semantic"


def read_header(call: Call) -> dict[str, Any] | None:
    """`x-tfy-cache-config` as a JSON object (400 when it is not one); None when absent."""
    return parse_header(call.header(b"x-tfy-cache-config"))


def parse_header(raw: bytes | None) -> dict[str, Any] | None:
    """An `x-tfy-cache-config` value as a JSON object (400 when it is not one); None when absent."""
    if raw is None or not raw.strip():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise BadRequest("x-tfy-cache-config must be a JSON object", code="invalid_header", param="x-tfy-cache-config")
    unknown = set(value) - _HEADER_FIELDS
    if unknown:
        raise BadRequest(
            f"x-tfy-cache-config has an unknown field {sorted(unknown)[0][:64]!r} "
            f"(known: {', '.join(sorted(_HEADER_FIELDS))})",
            code="invalid_header",
            param="x-tfy-cache-config",
        )
    return value


def decide(
    call: Call, operation: str, model: str, payload: dict[str, Any] | None, principal: Principal
) -> CacheDecision | None:
    """The request's cache use, or None (no rule, no header, or an endpoint that is never cached)."""
    policy = call.gateway.snapshot.cache
    header = read_header(call) if (policy.rules or policy.header_opt_in) else None
    ctx = call.ctx
    decision = decide_for(
        policy, operation, model, payload, principal, header, ctx.subjects, ctx.metadata, ctx.team, call.header
    )
    if decision is None and header is not None:
        ctx.extra["cache"] = {"status": "bypass", "reason": bypass_reason(operation, payload)}
    return decision


def bypass_reason(operation: str, payload: dict[str, Any] | None) -> str:
    """Why a request that sent `x-tfy-cache-config` does not use the cache (`decide_for` gave None)."""
    if ENTRY_KINDS.get(operation) is None or payload is None:
        return "endpoint is not cached"
    return "no cache rule allows this request"


def decide_for(
    policy: CachePolicy,
    operation: str,
    model: str,
    payload: dict[str, Any] | None,
    principal: Principal,
    header: dict[str, Any] | None,
    subjects: frozenset[str],
    metadata: Mapping[str, str],
    team: str | None,
    header_of: Callable[[bytes], bytes | None],
) -> CacheDecision | None:
    """`decide` without a live request, so the admin API's `cache/explain` runs the same code:
    `header` is the parsed `x-tfy-cache-config`, `header_of` reads a request header by lower-case name."""
    kind = ENTRY_KINDS.get(operation)
    if kind is None or payload is None:
        return None
    rule = policy.rule_for(model, subjects, metadata) if policy.rules else None
    if rule is None and header is not None and policy.header_opt_in:
        rule = policy.header_rule
    if rule is None or (rule.opt_in and header is None):
        return None
    controls = _controls(header or {}, rule)
    if controls["type"] != rule.type:
        wanted = controls["type"]
        raise BadRequest(
            f"x-tfy-cache-config.type {wanted!r} is not what this gateway's cache rule {rule.id!r} offers "
            f"({rule.type})"
            + (": semantic caching needs a cache rule with type: semantic" if wanted == "semantic" else ""),
            code="cache_type_unsupported",
            param="x-tfy-cache-config",
        )
    namespace = controls["namespace"]
    key = cache_key(
        api=f"{operation}",
        model=model,
        body=payload,
        headers=_key_headers(header_of),
        scope=_scope(rule, principal, team),
        namespace=namespace,
        include_user=rule.key_includes_user,
    )
    return CacheDecision(
        rule,
        key,
        kind,
        controls["ttl"],
        namespace,
        controls["force_refresh"],
        controls["no_store"],
        controls["max_age"],
        threshold=max(rule.similarity_threshold, controls["similarity_threshold"]),
        scope=key.key_object["scope"],
    )


def _controls(header: dict[str, Any], rule: CacheRule) -> dict[str, Any]:
    """The header's controls the rule allows; a control it does not allow is refused (400), and a
    TTL longer than the rule's is cut to it (a header narrows, never widens)."""
    allowed = rule.client_controls
    for name in ("ttl", "namespace", "force_refresh", "no_store", "max_age"):
        if name in header and name not in allowed:
            raise BadRequest(
                f"x-tfy-cache-config.{name} is not allowed by cache rule {rule.id!r}",
                code="invalid_header",
                param="x-tfy-cache-config",
            )
    ttl = header.get("ttl", rule.ttl)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
        raise BadRequest("x-tfy-cache-config.ttl must be a positive integer (seconds)", code="invalid_header")
    namespace = header.get("namespace", "")
    if not isinstance(namespace, str) or len(namespace) > 128:
        raise BadRequest(
            "x-tfy-cache-config.namespace must be a string of at most 128 characters", code="invalid_header"
        )
    max_age = header.get("max_age")
    if max_age is not None and (not isinstance(max_age, int | float) or isinstance(max_age, bool) or max_age < 0):
        raise BadRequest("x-tfy-cache-config.max_age must be a number of seconds", code="invalid_header")
    threshold = header.get("similarity_threshold", 0.0)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0.0 <= threshold <= 1.0:
        raise BadRequest("x-tfy-cache-config.similarity_threshold must be a number from 0 to 1", code="invalid_header")
    flags = {name: header.get(name, False) for name in ("force_refresh", "no_store")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise BadRequest(f"x-tfy-cache-config.{name} must be true or false", code="invalid_header")
    kind = header.get("type", rule.type)
    if kind not in ("exact-match", "semantic"):
        raise BadRequest(
            "x-tfy-cache-config.type must be exact-match or semantic", code="invalid_header", param="x-tfy-cache-config"
        )
    return {
        "type": kind,
        "ttl": min(ttl, rule.ttl),
        "namespace": namespace,
        "max_age": max_age,
        "similarity_threshold": float(threshold),  # a header may only raise it (narrower)
        **flags,
    }


def _scope(rule: CacheRule, principal: Principal, team: str | None) -> str:
    """Whose entries these are: the caller (default), its team, its virtual account, or everyone."""
    if rule.scope == "global":
        return "global"
    if rule.scope == "team" and team is not None:
        return f"team:{team}"
    if rule.scope == "virtual_account" and principal.is_virtual_account:
        return principal.subject
    return principal.subject  # subject; a team or virtual-account scope the caller lacks falls back to it


def _key_headers(header_of: Callable[[bytes], bytes | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _KEY_HEADERS:
        value = header_of(name)
        if value is not None:
            out[name.decode()] = value.decode("latin-1")
    return out


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


@dataclass(slots=True)
class CacheRecord:
    """Collects a miss's answer and stores it once it is known to be a complete success."""

    call: Call
    decision: CacheDecision
    store: CacheStore
    max_bytes: int
    chunks: list[bytes] | None = None  # a stream's relayed events
    size: int = 0
    encoded: bytes | None = None  # what was stored (single-flight followers get it)

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
        self.encoded = entry.encode()
        decision = self.decision
        self.call.gateway.cache.write_later(
            self.store, decision.key, entry, decision.ttl, self.max_bytes, decision.semantic_at
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
