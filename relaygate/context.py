"""Per-request state carried from dispatch to the log row."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relaygate.observe.record import LogRecord
    from relaygate.observe.trace_context import IncomingParent
    from relaygate.routing.router import AttemptRecord
    from relaygate.runtime.targets import Target


@dataclass(slots=True)
class Timings:
    """Stage durations in milliseconds for `server-timing` (docs/SCHEMAS.md stage names).

    `logging` is the time spent building the request's log row, which a non-streaming answer does
    before its header goes out (the row is queued after the answer); streams send no `server-timing`.
    """

    auth: float = 0.0
    ratelimit: float = 0.0
    budget: float = 0.0
    loadbalance: float = 0.0
    model: float = 0.0
    logging: float = 0.0
    input_guardrails: float | None = None  # set when input guardrails ran
    output_guardrails: float | None = None  # set when output guardrails ran

    def header(self, total_ms: float, attempts: Sequence[Any] = ()) -> bytes:
        """The `server-timing` header value, with one `attempt-N` entry per upstream attempt; the
        guardrail stages appear when guardrails ran."""
        if self.input_guardrails is None and self.output_guardrails is None:  # the common case: one f-string
            text = (
                f"auth;dur={self.auth:.3f}, ratelimit;dur={self.ratelimit:.3f}, budget;dur={self.budget:.3f}, "
                f"loadbalance;dur={self.loadbalance:.3f}, model;dur={self.model:.3f}, "
                f"logging;dur={self.logging:.3f}, total;dur={total_ms:.3f}"
            )
        else:
            guard_in = "" if self.input_guardrails is None else f"input_guardrails;dur={self.input_guardrails:.3f}, "
            guard_out = (
                "" if self.output_guardrails is None else f"output_guardrails;dur={self.output_guardrails:.3f}, "
            )
            text = (
                f"auth;dur={self.auth:.3f}, {guard_in}ratelimit;dur={self.ratelimit:.3f}, "
                f"budget;dur={self.budget:.3f}, loadbalance;dur={self.loadbalance:.3f}, model;dur={self.model:.3f}, "
                f"{guard_out}logging;dur={self.logging:.3f}, total;dur={total_ms:.3f}"
            )
        if len(attempts) > 1:
            text += "".join(
                f', attempt-{i};desc="{a.target} {a.status or a.error}";dur={a.duration_ms:.3f}'
                for i, a in enumerate(attempts, 1)
            )
        return text.encode()


@dataclass(slots=True)
class Usage:
    """Token counts as the upstream reported them (None when it did not)."""

    input_tokens: int | None = None  # every input token, cache reads and writes included
    output_tokens: int | None = None  # every output token, reasoning included
    cached_tokens: int | None = None  # input tokens read from the provider's prompt cache
    cache_write_tokens: int | None = None  # input tokens written to the prompt cache (Anthropic, Bedrock)
    reasoning_tokens: int | None = None  # output tokens spent thinking

    def details(self) -> dict[str, int]:
        """The cache and reasoning counts that were reported, for the log row."""
        found = {
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }
        return {key: value for key, value in found.items() if value is not None}


@dataclass(slots=True)
class RequestContext:
    """Everything the gateway learns about one request while serving it."""

    request_id: str
    method: str
    path: str
    route: str = ""  # the route's path template (metrics and spans never carry the raw path)
    operation: str = ""  # the API operation (`chat`, `embeddings`, `messages`, `proxy`, ...)
    started: float = field(default_factory=time.perf_counter)
    wall_time: float = field(default_factory=time.time)
    subject: str | None = None
    subjects: frozenset[str] = frozenset()  # the subject and its teams (`team:<name>`)
    team: str | None = None  # the caller's first team by name (log rows and usage rollups)
    token_id: str | None = None
    requested_model: str | None = None
    resolved_model: str | None = None
    provider: str | None = None
    model_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    log_bodies: bool = True
    streaming: bool = False
    status: int = 0
    usage: Usage = field(default_factory=Usage)
    ttft_ms: float | None = None  # first content-bearing bytes sent to the caller
    last_chunk_ms: float | None = None  # a stream's last content chunk (time per output chunk)
    upstream_ms: float | None = None  # time spent waiting on upstreams (attempts, then the relay of a stream)
    attempts: Sequence[AttemptRecord] = ()  # every upstream try, in order
    # (kind, rule id, used / limit) of each limit rule's counter after this request's reservation
    limit_usage: tuple[tuple[str, str, float], ...] = ()
    trace_id: str | None = None  # W3C trace id (32 hex): the response header, the log row, the spans
    parent: IncomingParent | None = None  # the caller's span (`traceparent`) the request's trace continues
    auth_missed: bool = False  # the token cache missed and the store was read (noted only when tracing)
    timings: Timings = field(default_factory=Timings)
    error_type: str | None = None
    error_message: str | None = None
    truncated: bool = False
    target: Target | None = None
    cache_hit: bool = False  # answered from the response cache: costs nothing, charges no tokens
    # Feature spans for tracing (guardrails, the cache lookup, an MCP tool call): (name, start, end as
    # perf_counter, CLIENT?, attributes, failed, span id or None: drawn at export). Appended only by
    # requests that use those features.
    spans: list[tuple[str, float, float, bool, tuple[tuple[str, Any], ...], bool, int | None]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # feature attributes for the row and traces
    request_body: bytes | None = None
    response_body: bytes | None = None
    log_record: LogRecord | None = None  # the row, built before a non-streaming answer's header
    _cost: tuple[tuple[Any, ...], float | None, bool] | None = None  # usage and target it was computed for

    def applied_configurations(self) -> dict[str, Any]:
        """What `x-tfy-applied-configurations` reports (and the root span repeats): the limit rule ids
        that applied, load balancing, fallback and per-target overrides, as the pipeline noted them."""
        extra = self.extra
        applied: dict[str, Any] = {}
        limits = extra.get("limits")
        if limits:
            applied.update({key: {"rule_ids": limits[key]} for key in ("rate_limit", "budget") if key in limits})
        routing = extra.get("routing")
        if routing is not None:
            applied["load_balancing"] = routing
        for key in ("fallback", "model_configuration"):
            if key in extra:
                applied[key] = extra[key]
        guardrails = extra.get("guardrails_applied")
        if guardrails is not None:
            applied["guardrails"] = guardrails
        cache = extra.get("cache")
        if cache is not None:
            applied["cache"] = {"status": cache.get("status"), "rule": cache.get("rule")}
        return applied

    def add_span(
        self,
        name: str,
        start: float,
        end: float,
        client: bool,
        attributes: tuple[tuple[str, Any], ...],
        failed: bool,
        span_id: int | None = None,
    ) -> None:
        """Note a feature span for the trace (perf_counter times). `span_id`: the id the span must be
        exported with, when the request already sent it on (a `traceparent` to an MCP backend)."""
        if self.spans is None:
            self.spans = []
        self.spans.append((name, start, end, client, attributes, failed, span_id))

    def elapsed_ms(self) -> float:
        """Milliseconds since the request arrived."""
        return (time.perf_counter() - self.started) * 1000.0

    def cost(self) -> tuple[float | None, bool]:
        """The request's cost in USD from its usage and the answering target's price, and whether it is
        unknown (usage but no price, and the target does not declare itself free). Computed once for the
        log row and the limits settle (again only if the usage changed in between)."""
        if self.cache_hit:
            return 0.0, False
        usage, target = self.usage, self.target
        key = (id(target), usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.cache_write_tokens)
        cached = self._cost
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        cost: float | None = None
        unknown = False
        if target is not None and (usage.input_tokens is not None or usage.output_tokens is not None):
            if target.price is not None:
                cost = target.price.cost(
                    usage.input_tokens or 0,
                    usage.output_tokens or 0,
                    usage.cached_tokens or 0,
                    usage.cache_write_tokens or 0,
                )
            elif target.cost_known:
                cost = 0.0
            else:
                unknown = True
        elif target is not None and target.price is None and not target.cost_known:
            unknown = True
        self._cost = (key, cost, unknown)
        return cost, unknown
