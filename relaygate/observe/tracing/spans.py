"""The span tree of one finished request, built after the fact from its record with explicit times.

Root `{METHOD} {route}` (SERVER, continuing the caller's `traceparent`), then `relaygate.auth` (token
store read), `relaygate.limits` and one CLIENT span per upstream attempt. Attributes are an allow-list:
each is read from a named field of the record; headers, tokens, keys and error texts never are.

The spans are the SDK's finished `ReadableSpan`s, made directly rather than started and ended through a
`Tracer`: everything about them is known at once, and the tracer's per-attribute validation and locking
cost ~20 µs a span, which at 100% sampling was a third of a chat request's CPU. The sampler is asked
once, for the root, with the caller's parent (children follow the root, as parent-based sampling does).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from relaygate.observe.genai import operation_name as genai_operation
from relaygate.observe.genai import provider_name as genai_provider
from relaygate.observe.tracing.content import content_attributes

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.observe.record import LogRecord
    from relaygate.routing.router import AttemptRecord
    from relaygate.runtime.snapshot import Snapshot

CUSTOM_ENDPOINT = "CustomEndpoint"  # span type of custom-endpoint traffic (spec/custom-endpoints.txt "Tracing")
SPAN_TYPE = "tfy.span_type"
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
_FINISH_REASON = re.compile(rb'"(?:finish_reason|stop_reason)"\s*:\s*"([A-Za-z_]{1,40})"')
_FINISH_SCAN_BYTES = 16 * 1024  # a stream's finish reason is in its last events
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_ERROR = Status(StatusCode.ERROR)
_UNSET = Status(StatusCode.UNSET)


@dataclass(slots=True)
class _Clock:
    """Converts the request's perf_counter and monotonic marks to unix nanoseconds, from one reading."""

    now_ns: int
    perf: float
    mono: float

    def perf_ns(self, mark: float) -> int:
        return self.now_ns - int((self.perf - mark) * 1e9)

    def mono_ns(self, mark: float) -> int:
        return self.now_ns - int((self.mono - mark) * 1e9)


class SpanBuilder:
    """Builds the finished spans of requests and hands each to `emit` (the export queue)."""

    def __init__(
        self,
        sampler: Sampler,
        resource: Resource,
        scope: InstrumentationScope,
        emit: Callable[[ReadableSpan], None],
        snapshot: Callable[[], Snapshot],
        capture_content: bool,
        always_sample: bool = False,
    ) -> None:
        self._sampler = sampler
        # The sampler samples every trace whose caller did not drop it (parentbased_always_on, the default,
        # and always_on): it is then not asked.
        self._always_sample = always_sample
        self._resource = resource
        self._scope = scope
        self._emit = emit
        self._snapshot = snapshot
        self._capture = capture_content
        self._rng = random.Random()  # span ids: ids, not secrets
        self._servers: dict[str, tuple[str, int] | None] = {}  # base URL -> (host, port), parsed once

    def build(self, ctx: RequestContext, record: LogRecord) -> None:
        """The request's spans, queued for export (none when the sampler drops the trace)."""
        if ctx.trace_id is None:
            return
        clock = _Clock(time.time_ns(), time.perf_counter(), time.monotonic())
        start = clock.perf_ns(ctx.started)
        end = clock.now_ns
        trace_id = int(ctx.trace_id, 16)
        name = f"{ctx.method} {ctx.route}" if ctx.route else ctx.method
        attributes = _root_attributes(ctx, record)
        parent = None
        parent_context = None
        if ctx.parent is not None:
            flags = TraceFlags(TraceFlags.SAMPLED if ctx.parent.sampled else TraceFlags.DEFAULT)
            parent = SpanContext(trace_id, int(ctx.parent.span_id, 16), True, flags)
            parent_context = trace.set_span_in_context(NonRecordingSpan(parent))
        trace_state = None
        if self._always_sample and (ctx.parent is None or ctx.parent.sampled):
            pass  # the default sampler's answer, without its context look-ups (a fifth of the build)
        else:
            sampling = self._sampler.should_sample(parent_context, trace_id, name, SpanKind.SERVER, attributes)
            if sampling.decision is not Decision.RECORD_AND_SAMPLE:
                return
            attributes.update(sampling.attributes or {})
            trace_state = sampling.trace_state
        if self._capture and ctx.operation != "proxy":
            attributes.update(content_attributes(record.request_body, record.response_body, ctx.streaming))
        root = SpanContext(trace_id, self._span_id(), False, _SAMPLED, trace_state)
        if ctx.auth_missed:
            self._span("relaygate.auth", root, SpanKind.INTERNAL, {}, start, start + int(ctx.timings.auth * 1e6))
        limits = ctx.extra.get("limits")
        if isinstance(limits, dict):
            limits_end = clock.mono_ns(ctx.attempts[0].started) if ctx.attempts else end
            limits_start = limits_end - int((ctx.timings.ratelimit + ctx.timings.budget) * 1e6)
            self._span(
                "relaygate.limits", root, SpanKind.INTERNAL, _limits_attributes(limits), limits_start, limits_end
            )
        answering = len(ctx.attempts) - 1 if ctx.attempts and ctx.attempts[-1].outcome == "success" else -1
        for index, attempt in enumerate(ctx.attempts):
            self._attempt(ctx, attempt, index, index == answering, root, clock, start)
        self._emit(
            ReadableSpan(
                name,
                root,
                parent,
                self._resource,
                attributes,
                kind=SpanKind.SERVER,
                status=_ERROR if ctx.status >= 500 else _UNSET,
                start_time=start,
                end_time=end,
                instrumentation_scope=self._scope,
            )
        )

    def _span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def _span(
        self,
        name: str,
        parent: SpanContext,
        kind: SpanKind,
        attributes: dict[str, Any],
        start: int,
        end: int,
        error: bool = False,
    ) -> None:
        """A finished child span of `parent`, queued."""
        context = SpanContext(parent.trace_id, self._span_id(), False, _SAMPLED, parent.trace_state)
        self._emit(
            ReadableSpan(
                name,
                context,
                parent,
                self._resource,
                attributes,
                kind=kind,
                status=_ERROR if error else _UNSET,
                start_time=start,
                end_time=end,
                instrumentation_scope=self._scope,
            )
        )

    def _attempt(
        self,
        ctx: RequestContext,
        attempt: AttemptRecord,
        index: int,
        answered: bool,
        root: SpanContext,
        clock: _Clock,
        request_start: int,
    ) -> None:
        """One CLIENT span: `{operation} {model}` for models, `proxy {endpoint}` for custom endpoints."""
        start = clock.mono_ns(attempt.started)
        end = start + int(attempt.duration_ms * 1e6)
        attributes: dict[str, Any] = {
            "relaygate.attempt": index,
            "relaygate.attempt.outcome": attempt.outcome,
            "relaygate.target": attempt.target,
        }
        if ctx.operation == "proxy":
            name = f"proxy {attempt.target}"
            attributes[SPAN_TYPE] = CUSTOM_ENDPOINT
            server = self._proxy_server(ctx, attempt.target)
        else:
            target = ctx.target if answered and ctx.target is not None else self._snapshot().models.get(attempt.target)
            model = target.model_id if target is not None else attempt.target
            operation = genai_operation(ctx.operation)
            name = f"{operation} {model}"
            attributes["gen_ai.operation.name"] = operation
            attributes["gen_ai.provider.name"] = genai_provider(attempt.provider or "unknown")
            attributes["gen_ai.request.model"] = model
            if ctx.streaming:
                attributes["gen_ai.request.stream"] = True
            server = self._server(target.base_url) if target is not None else None
            if answered:
                end = self._answer_attributes(ctx, attributes, start, request_start, end)
        if server is not None:
            attributes["server.address"], attributes["server.port"] = server
        if attempt.status is not None:
            attributes["http.response.status_code"] = attempt.status
        failed = attempt.outcome != "success"
        if failed:
            attributes["error.type"] = attempt.error or (f"upstream_{attempt.status}" if attempt.status else "_OTHER")
        self._span(name, root, SpanKind.CLIENT, attributes, start, end, failed)

    def _answer_attributes(
        self, ctx: RequestContext, attributes: dict[str, Any], start: int, request_start: int, end: int
    ) -> int:
        """Usage, response model, finish reasons and time to first chunk on the answering attempt; returns
        its end (a stream's answer lasts until its last chunk)."""
        provider_model = ctx.extra.get("provider_model")
        if isinstance(provider_model, str):
            attributes["gen_ai.response.model"] = provider_model
        usage = ctx.usage
        for key, value in (
            ("gen_ai.usage.input_tokens", usage.input_tokens),
            ("gen_ai.usage.output_tokens", usage.output_tokens),
            ("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens),
            ("gen_ai.usage.cache_creation.input_tokens", usage.cache_write_tokens),
            ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens),
        ):
            if value is not None:
                attributes[key] = value
        reasons = _finish_reasons(ctx.response_body)
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
        if ctx.streaming and ctx.ttft_ms is not None:
            first = request_start + int(ctx.ttft_ms * 1e6)
            attributes["gen_ai.response.time_to_first_chunk"] = max(first - start, 0) / 1e9
            if ctx.last_chunk_ms is not None:
                end = max(end, request_start + int(ctx.last_chunk_ms * 1e6))
        return end

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


def _root_attributes(ctx: RequestContext, record: LogRecord) -> dict[str, Any]:
    """HTTP server semconv plus what the gateway decided; never a header, token secret or key."""
    attributes: dict[str, Any] = {
        "http.request.method": ctx.method,
        "url.path": ctx.path,
        "http.response.status_code": ctx.status,
        "relaygate.request_id": ctx.request_id,
    }
    if ctx.route:
        attributes["http.route"] = ctx.route
    if ctx.error_type:
        attributes["error.type"] = ctx.error_type
    optional: tuple[tuple[str, Any], ...] = (
        ("relaygate.subject", ctx.subject),
        # The public id without its `rg-` prefix: spans can be scanned for `rg-` to prove no token leaks.
        ("relaygate.token_id", ctx.token_id.removeprefix("rg-") if ctx.token_id else None),
        ("relaygate.requested_model", ctx.requested_model),
        ("relaygate.resolved_model", ctx.resolved_model),
        ("relaygate.cost_usd", record.cost_usd),
    )
    for key, value in optional:
        if value is not None:
            attributes[key] = value
    applied = ctx.applied_configurations()
    if applied:
        attributes["relaygate.applied_configurations"] = orjson.dumps(applied).decode()
    if ctx.operation == "proxy":
        attributes[SPAN_TYPE] = CUSTOM_ENDPOINT
        for key in _PROXY_ATTRIBUTES:
            value = ctx.extra.get(key)
            if isinstance(value, str | bool | int):
                attributes[key] = value
    return attributes


def _limits_attributes(limits: Mapping[str, Any]) -> dict[str, Any]:
    """Rule ids that applied and the decision (`refused` names the rule that said no)."""
    refused = limits.get("refused")
    attributes: dict[str, Any] = {"relaygate.limits.decision": "deny" if refused else "allow"}
    for key in ("rate_limit", "budget"):
        ids = limits.get(key)
        if isinstance(ids, list) and ids:
            attributes[f"relaygate.limits.{key}_rule_ids"] = [str(rule) for rule in ids]
    if refused:
        attributes["relaygate.limits.refused_rule_id"] = str(refused)
    return attributes


def _finish_reasons(body: bytes | None) -> list[str]:
    """Finish (or stop) reasons an answer reported, in order, without parsing it (content is escaped JSON,
    so text the model wrote cannot look like the field)."""
    if not body:
        return []
    found = _FINISH_REASON.findall(body[-_FINISH_SCAN_BYTES:])
    return list(dict.fromkeys(reason.decode() for reason in found if reason != b"null"))
