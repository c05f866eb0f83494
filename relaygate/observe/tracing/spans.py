"""The span tree of one finished request: captured on the request's thread, built on the export thread.

Root `{METHOD} {route}` (SERVER, continuing the caller's `traceparent`), then `relaygate.auth` (token
store read), `relaygate.limits` and one CLIENT span per upstream attempt. Attributes are an allow-list:
each is read from a named field of the record; headers, tokens, keys and error texts never are.

When a request finishes, `SpanBuilder.build` asks the sampler (once, for the root, with the caller's
parent: children follow the root, as parent-based sampling does) and captures what the spans need as a
`CapturedTrace` of plain values: explicit times, and per span a *shape*, the tuple of the values its
constant attributes come from (route, status, caller, model, target, provider...). That is all the
request pays. The export thread turns captured traces into OTLP bytes (wire.py), where a shape's
attributes are encoded once and reused, or into the SDK's `ReadableSpan`s (`readable.readable_spans`, for the
gRPC exporter and the tests). The attributes of a span are defined here once, by the `*_attributes`
functions both use.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from relaygate.observe.genai import operation_name as genai_operation
from relaygate.observe.genai import provider_name as genai_provider
from relaygate.observe.tracing.content import content_attributes

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.observe.record import LogRecord
    from relaygate.runtime.snapshot import Snapshot

CUSTOM_ENDPOINT = "CustomEndpoint"  # span type of custom-endpoint traffic (spec/custom-endpoints.txt "Tracing")
SPAN_TYPE = "tfy.span_type"
AUTH_SPAN = "relaygate.auth"
LIMITS_SPAN = "relaygate.limits"
# The seven custom-endpoint attributes of the reference, copied from the record as they are named there.
_PROXY_ATTRIBUTES = (
    "custom_proxy_routing_type",
    "custom_proxy_slug",
    "custom_proxy_endpoint_name",
    "custom_proxy_target_was_cooled_down",
    "loadbalance_target_attempt_count",
    "loadbalance_first_target",
    "loadbalance_final_target",
)
USAGE_ATTRIBUTES = (  # the answering attempt's token counts, in `AttemptSpan.usage` order
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
)
# `"finish_reason": "stop"` (OpenAI) or `"stop_reason": "end_turn"` (Anthropic): patterns that start with
# a long literal, which the regex engine finds by a fast scan (one starting with `"` tried a match at every
# quote of the JSON: a tenth of the capture).
_FINISH_REASON = re.compile(rb'"finish_reason"\s*:\s*"([A-Za-z_]{1,40})"')
_STOP_REASON = re.compile(rb'"stop_reason"\s*:\s*"([A-Za-z_]{1,40})"')
_FINISH_SCAN_BYTES = 16 * 1024  # a stream's finish reason is in its last events

# What a span's constant attributes (and name) are made of; see the `*_attributes` functions.
# Root: (method, route, status, error_type, subject, token_id, requested_model, resolved_model, proxy pairs or None)
RootShape = tuple[str, str, int, str | None, str | None, str | None, str | None, str | None, tuple[Any, ...] | None]
# Attempt: (index, outcome, target, error, status, operation, provider, model, stream, server, response model,
# finish reasons); `model` is None on custom endpoints.
AttemptShape = tuple[
    int,
    str,
    str,
    str | None,
    int | None,
    str,
    str,
    str | None,
    bool,
    tuple[str, int] | None,
    str | None,
    tuple[str, ...],
]
# Limits: (refused rule id or None, rate-limit rule ids, budget rule ids)
LimitsShape = tuple[str | None, tuple[str, ...], tuple[str, ...]]


class AttemptSpan(NamedTuple):
    """One upstream attempt's CLIENT span."""

    shape: AttemptShape
    start: int
    end: int
    usage: tuple[int | None, ...] | None  # the answering attempt's token counts (USAGE_ATTRIBUTES order)
    time_to_first_chunk: float | None  # seconds, on a stream's answering attempt


class FeatureSpan(NamedTuple):
    """A gateway feature's INTERNAL or CLIENT span (a guardrail, the cache lookup), times in unix ns."""

    name: str
    start: int
    end: int
    client: bool  # CLIENT (a guardrail, per the GenAI guardrail conventions) or INTERNAL
    attributes: tuple[tuple[str, Any], ...]
    failed: bool = False
    span_id: int | None = None  # decided by the request (it sent a traceparent naming it); else drawn at export


class CapturedTrace(NamedTuple):
    """Everything the spans of one sampled request need, as plain values (times in unix ns)."""

    trace_id: str  # 32 hex
    parent: str | None  # the caller's span id (16 hex), a remote parent
    trace_state: TraceState | None  # from the sampler
    start: int
    end: int
    root: RootShape
    request_id: str
    path: str
    cost: float | None
    applied: str | None  # the JSON of x-tfy-applied-configurations
    extra: dict[str, Any] | None  # sampler attributes and message content
    auth_end: int | None  # a `relaygate.auth` span from `start` to here (the token store was read)
    limits: tuple[LimitsShape, int, int] | None  # a `relaygate.limits` span: shape, start, end
    attempts: tuple[AttemptSpan, ...]
    features: tuple[FeatureSpan, ...] = ()  # guardrails and the cache lookup, when the request had them

    @property
    def span_count(self) -> int:
        return 1 + (self.auth_end is not None) + (self.limits is not None) + len(self.attempts) + len(self.features)


class SpanBuilder:
    """Captures the trace of finished requests and hands each to `emit` (the export queue)."""

    def __init__(
        self,
        sampler: Sampler,
        emit: Callable[[CapturedTrace, int], None],
        snapshot: Callable[[], Snapshot],
        capture_content: bool,
        always_sample: bool = False,
    ) -> None:
        self._sampler = sampler
        # The sampler samples every trace whose caller did not drop it (parentbased_always_on, the default,
        # and always_on): it is then not asked.
        self._always_sample = always_sample
        self._emit = emit
        self._snapshot = snapshot
        self._capture = capture_content
        self._servers: dict[str, tuple[str, int] | None] = {}  # base URL -> (host, port), parsed once

    def build(self, ctx: RequestContext, record: LogRecord) -> None:
        """The request's trace, queued for export (nothing when the sampler drops it)."""
        if ctx.trace_id is None:
            return
        # The request's perf_counter and monotonic marks in unix ns, from one reading of each clock.
        now, perf, mono = time.time_ns(), time.perf_counter(), time.monotonic()
        incoming = ctx.parent
        extra: dict[str, Any] | None = None
        trace_state = None
        if not self._sampled_by_default(ctx):
            sampling = self._sample(ctx)
            if sampling.decision is not Decision.RECORD_AND_SAMPLE:
                return
            extra = dict(sampling.attributes) if sampling.attributes else None
            trace_state = sampling.trace_state or None
        if self._capture and ctx.operation != "proxy":
            content = content_attributes(record.request_body, record.response_body, ctx.streaming)
            if content:
                extra = {**(extra or {}), **content}
        start = now - int((perf - ctx.started) * 1e9)
        end = now
        mono_zero = now - int(mono * 1e9)  # the unix ns of monotonic time 0
        proxy = ctx.operation == "proxy"
        root: RootShape = (
            ctx.method,
            ctx.route,
            ctx.status,
            ctx.error_type,
            ctx.subject,
            ctx.token_id,
            ctx.requested_model,
            ctx.resolved_model,
            _proxy_pairs(ctx.extra) if proxy else None,
        )
        applied = ctx.applied_configurations()
        limits = ctx.extra.get("limits")
        limits_span = None
        if isinstance(limits, dict):
            limits_end = mono_zero + int(ctx.attempts[0].started * 1e9) if ctx.attempts else end
            limits_start = limits_end - int((ctx.timings.ratelimit + ctx.timings.budget) * 1e6)
            limits_span = (_limits_shape(limits), limits_start, limits_end)
        self._emit(
            CapturedTrace(
                ctx.trace_id,
                incoming.span_id if incoming is not None else None,
                trace_state,
                start,
                end,
                root,
                ctx.request_id,
                ctx.path,
                record.cost_usd,
                orjson.dumps(applied).decode() if applied else None,
                extra,
                start + int(ctx.timings.auth * 1e6) if ctx.auth_missed else None,
                limits_span,
                self._attempts(ctx, mono_zero, start, proxy) if ctx.attempts else (),
                features := _features(ctx, now, perf) if ctx.spans else (),
            ),
            1 + ctx.auth_missed + (limits_span is not None) + len(ctx.attempts) + len(features),
        )

    def sampled(self, ctx: RequestContext) -> bool:
        """Whether the request's trace will be exported: the `sampled` flag of a `traceparent` the request
        sends on before it finishes (the sampler's answer depends on the trace id and the caller's
        parent only, so asking it early gives the answer `build` gets)."""
        if ctx.trace_id is None:
            return False
        return self._sampled_by_default(ctx) or self._sample(ctx).decision is Decision.RECORD_AND_SAMPLE

    def _sampled_by_default(self, ctx: RequestContext) -> bool:
        """The default sampler's answer, known without its context look-ups (a fifth of the old build)."""
        return self._always_sample and (ctx.parent is None or ctx.parent.sampled)

    def _sample(self, ctx: RequestContext) -> SamplingResult:
        """The sampler's decision for the request's root span."""
        assert ctx.trace_id is not None
        incoming = ctx.parent
        trace_id = int(ctx.trace_id, 16)
        parent_context = None
        if incoming is not None:
            flags = TraceFlags(TraceFlags.SAMPLED if incoming.sampled else TraceFlags.DEFAULT)
            parent = SpanContext(trace_id, int(incoming.span_id, 16), True, flags)
            parent_context = trace.set_span_in_context(NonRecordingSpan(parent))
        name = f"{ctx.method} {ctx.route}" if ctx.route else ctx.method
        return self._sampler.should_sample(parent_context, trace_id, name, SpanKind.SERVER)

    def _attempts(
        self, ctx: RequestContext, mono_zero: int, request_start: int, proxy: bool
    ) -> tuple[AttemptSpan, ...]:
        """One CLIENT span per attempt: `{operation} {model}` for models, `proxy {endpoint}` for custom endpoints
        (`mono_zero`: the unix ns of monotonic time 0)."""
        attempts = ctx.attempts
        answering = len(attempts) - 1 if attempts[-1].outcome == "success" else -1
        spans = []
        for index, attempt in enumerate(attempts):
            start = mono_zero + int(attempt.started * 1e9)
            end = start + int(attempt.duration_ms * 1e6)
            model = response_model = None
            reasons: tuple[str, ...] = ()
            usage = first_chunk = None
            if proxy:
                server = self._proxy_server(ctx, attempt.target)
            else:
                answered = index == answering
                target = (
                    ctx.target if answered and ctx.target is not None else self._snapshot().models.get(attempt.target)
                )
                model = target.model_id if target is not None else attempt.target
                server = None
                if target is not None:
                    server = self._servers.get(target.base_url) or self._server(target.base_url)
                if answered:
                    provider_model = ctx.extra.get("provider_model")
                    response_model = provider_model if isinstance(provider_model, str) else None
                    reasons = finish_reasons(ctx.response_body)
                    u = ctx.usage
                    usage = (u.input_tokens, u.output_tokens, u.cached_tokens, u.cache_write_tokens, u.reasoning_tokens)
                    if ctx.streaming and ctx.ttft_ms is not None:
                        first = request_start + int(ctx.ttft_ms * 1e6)
                        first_chunk = max(first - start, 0) / 1e9
                        if ctx.last_chunk_ms is not None:  # a stream's answer lasts until its last chunk
                            end = max(end, request_start + int(ctx.last_chunk_ms * 1e6))
            shape: AttemptShape = (
                index,
                attempt.outcome,
                attempt.target,
                attempt.error,
                attempt.status,
                ctx.operation,
                attempt.provider,
                model,
                ctx.streaming,
                server,
                response_model,
                reasons,
            )
            spans.append(AttemptSpan(shape, start, end, usage, first_chunk))
        return tuple(spans)

    def _server(self, base_url: str) -> tuple[str, int] | None:
        """`server.address` and `server.port` of an upstream base URL (parsed once per URL)."""
        if base_url not in self._servers:
            server = None
            try:
                parts = urlsplit(base_url)
                if parts.hostname:
                    server = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
            except ValueError:
                pass
            self._servers[base_url] = server
        return self._servers[base_url]

    def _proxy_server(self, ctx: RequestContext, endpoint_name: str) -> tuple[str, int] | None:
        account = self._snapshot().proxies.get((ctx.requested_model or "").partition("/")[0])
        endpoint = account.endpoints.get(endpoint_name) if account is not None else None
        if endpoint is None:
            return None
        return endpoint.host, endpoint.port or (443 if endpoint.scheme == "https" else 80)


def _features(ctx: RequestContext, now: int, perf: float) -> tuple[FeatureSpan, ...]:
    """The feature spans the pipeline noted (`RequestContext.spans`, perf_counter times) in unix ns."""
    return tuple(
        FeatureSpan(
            name, now - int((perf - start) * 1e9), now - int((perf - end) * 1e9), client, attributes, failed, span_id
        )
        for name, start, end, client, attributes, failed, span_id in ctx.spans or ()
    )


def _proxy_pairs(extra: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The reference's custom-endpoint attributes the record holds (strings, booleans and integers)."""
    return tuple((key, extra[key]) for key in _PROXY_ATTRIBUTES if isinstance(extra.get(key), str | bool | int))


def _limits_shape(limits: Mapping[str, Any]) -> LimitsShape:
    refused = limits.get("refused")
    ids = []
    for key in ("rate_limit", "budget"):
        rules = limits.get(key)
        ids.append(tuple(str(rule) for rule in rules) if isinstance(rules, list) else ())
    return (str(refused) if refused else None, ids[0], ids[1])


def finish_reasons(body: bytes | None) -> tuple[str, ...]:
    """Finish (or stop) reasons an answer reported, in order, without parsing it (content is escaped JSON,
    so text the model wrote cannot look like the field)."""
    if not body:
        return ()
    if len(body) > _FINISH_SCAN_BYTES:
        body = body[-_FINISH_SCAN_BYTES:]
    found = []
    if b'"finish_reason"' in body:
        found = _FINISH_REASON.findall(body)
    if b'"stop_reason"' in body:
        found += _STOP_REASON.findall(body)
    return tuple(dict.fromkeys(reason.decode() for reason in found if reason != b"null"))


# The attributes of each span, from its shape (constant: encoded once per shape by wire.py) and from what
# varies per request. Never a header, token secret, key or error message.


def root_name(shape: RootShape) -> str:
    method, route = shape[0], shape[1]
    return f"{method} {route}" if route else method


def root_attributes(shape: RootShape) -> dict[str, Any]:
    """HTTP server semconv plus what the gateway decided about the caller and the model."""
    method, route, status, error_type, subject, token_id, requested, resolved, proxy = shape
    attributes: dict[str, Any] = {"http.request.method": method, "http.response.status_code": status}
    if route:
        attributes["http.route"] = route
    if error_type:
        attributes["error.type"] = error_type
    optional: tuple[tuple[str, Any], ...] = (
        ("relaygate.subject", subject),
        # The public id without its `rg-` prefix: spans can be scanned for `rg-` to prove no token leaks.
        ("relaygate.token_id", token_id.removeprefix("rg-") if token_id else None),
        ("relaygate.requested_model", requested),
        ("relaygate.resolved_model", resolved),
    )
    for key, value in optional:
        if value is not None:
            attributes[key] = value
    if proxy is not None:
        attributes[SPAN_TYPE] = CUSTOM_ENDPOINT
        attributes.update(proxy)
    return attributes


def root_request_attributes(captured: CapturedTrace) -> dict[str, Any]:
    """The root's attributes that differ on every request."""
    attributes: dict[str, Any] = {"url.path": captured.path, "relaygate.request_id": captured.request_id}
    if captured.cost is not None:
        attributes["relaygate.cost_usd"] = captured.cost
    if captured.applied is not None:
        attributes["relaygate.applied_configurations"] = captured.applied
    if captured.extra:
        attributes.update(captured.extra)
    return attributes


def attempt_name(shape: AttemptShape) -> str:
    target, operation, model = shape[2], shape[5], shape[7]
    return f"proxy {target}" if model is None else f"{genai_operation(operation)} {model}"


def attempt_attributes(shape: AttemptShape) -> dict[str, Any]:
    """GenAI semconv (model routes) or the custom-endpoint span type, the target and what became of it."""
    index, outcome, target, error, status, operation, provider, model, stream, server, response_model, reasons = shape
    attributes: dict[str, Any] = {
        "relaygate.attempt": index,
        "relaygate.attempt.outcome": outcome,
        "relaygate.target": target,
    }
    if model is None:
        attributes[SPAN_TYPE] = CUSTOM_ENDPOINT
    else:
        attributes["gen_ai.operation.name"] = genai_operation(operation)
        attributes["gen_ai.provider.name"] = genai_provider(provider or "unknown")
        attributes["gen_ai.request.model"] = model
        if stream:
            attributes["gen_ai.request.stream"] = True
        if response_model is not None:
            attributes["gen_ai.response.model"] = response_model
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = list(reasons)
    if server is not None:
        attributes["server.address"], attributes["server.port"] = server
    if status is not None:
        attributes["http.response.status_code"] = status
    if outcome != "success":
        attributes["error.type"] = error or (f"upstream_{status}" if status else "_OTHER")
    return attributes


def attempt_failed(shape: AttemptShape) -> bool:
    return shape[1] != "success"


def attempt_request_attributes(span: AttemptSpan) -> dict[str, Any]:
    """Usage and time to first chunk of the answering attempt."""
    attributes: dict[str, Any] = {}
    if span.usage is not None:
        for key, value in zip(USAGE_ATTRIBUTES, span.usage, strict=True):
            if value is not None:
                attributes[key] = value
    if span.time_to_first_chunk is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = span.time_to_first_chunk
    return attributes


def limits_attributes(shape: LimitsShape) -> dict[str, Any]:
    """Rule ids that applied and the decision (`refused` names the rule that said no)."""
    refused, rate_limit, budget = shape
    attributes: dict[str, Any] = {"relaygate.limits.decision": "deny" if refused else "allow"}
    if rate_limit:
        attributes["relaygate.limits.rate_limit_rule_ids"] = list(rate_limit)
    if budget:
        attributes["relaygate.limits.budget_rule_ids"] = list(budget)
    if refused:
        attributes["relaygate.limits.refused_rule_id"] = refused
    return attributes
