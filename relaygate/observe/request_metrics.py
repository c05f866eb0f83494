"""Per-request metrics, derived from the finished-request record (the same one the log row is).

One call per finished request (`RequestMetrics.record`, a `gateway.recorders` entry): a handful of
dict lookups and bisects, no locks, no I/O. Label values come from config (routes, operations,
providers, configured models and targets) or from the closed `error_type` list; identity and
metadata labels only when the `gateway-observability-config` lists them, capped per label.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from relaygate.observe.error_types import error_type_of
from relaygate.observe.genai import MODEL_OPERATIONS, operation_name, provider_name
from relaygate.observe.series import OTHER, Family, LabelBudget, Labels
from relaygate.runtime.observability import Observability

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.observe.record import LogRecord
    from relaygate.runtime.snapshot import Snapshot

# Semconv bucket advice (next-capabilities.md §1.4): durations up to 300 s for long streams.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 120, 300)
TTFC_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5,
    7.5,
    10,
    15,
    20,
    30,
    45,
    60,
)
TPOC_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1, 4, 16, ... 67108864
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
# The MCP semantic conventions' advice for mcp.*.operation.duration.
MCP_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
# A safety net for labels whose values come from config but could be many (ngrok pass-through models).
CONFIG_LABEL_CAP = 10_000

_GENAI = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "error_type",
)


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "_OTHER"


_STATUS_CLASSES = {status: _status_class(status) for status in range(100, 600)}


class RequestMetrics:
    """The request-derived families; rebuilt when a reload changes the opt-in labels."""

    token_usage: Family | None  # released semconv names
    input_tokens: Family | None  # gen_ai_latest_experimental names
    output_tokens: Family | None

    def __init__(self, snapshot: Callable[[], Snapshot], latest_semconv: bool = False) -> None:
        self._snapshot = snapshot
        self.latest_semconv = latest_semconv  # OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental
        self.observability: Observability | None = None
        self.families: list[Family] = []
        self._configure(snapshot().observability)

    def _configure(self, observability: Observability) -> None:
        """(Re)build the families for this label set; series of the old set are dropped."""
        self.observability = observability
        extra = observability.extra_labels
        cap = observability.max_values_per_label

        def budget(labelnames: Labels, config_capped: tuple[int, ...] = ()) -> LabelBudget | None:
            first_extra = len(labelnames) - len(extra)
            caps = (
                *((p, CONFIG_LABEL_CAP) for p in config_capped),
                *((first_extra + i, cap) for i in range(len(extra))),
            )
            return LabelBudget(caps) if caps else None

        prefix = "gen_ai_client_inference" if self.latest_semconv else "gen_ai_client_operation"
        model_caps = (2, 3)  # gen_ai_request_model, gen_ai_response_model
        self.duration = Family(
            f"{prefix}_duration_seconds", "GenAI operation duration (one per API call, retries and fallbacks "
            "included)", "histogram", _GENAI, buckets=DURATION_BUCKETS, budget=_config_budget(model_caps),
        )  # fmt: skip
        self.ttfc = Family(
            f"{prefix}_time_to_first_chunk_seconds", "time to the first content-bearing chunk of a stream",
            "histogram", _GENAI[:4], buckets=TTFC_BUCKETS, budget=_config_budget(model_caps),
        )  # fmt: skip
        self.tpoc = Family(
            f"{prefix}_time_per_output_chunk_seconds", "time per output chunk after the first: (last - first) / "
            "(output tokens - 1)", "histogram", _GENAI[:4], buckets=TPOC_BUCKETS, budget=_config_budget(model_caps),
        )  # fmt: skip
        if self.latest_semconv:
            self.token_usage = None
            self.input_tokens = Family(
                "gen_ai_client_inference_operation_input_tokens", "input tokens per operation", "histogram",
                _GENAI[:4], buckets=TOKEN_BUCKETS, budget=_config_budget(model_caps),
            )  # fmt: skip
            self.output_tokens = Family(
                "gen_ai_client_inference_operation_output_tokens", "output tokens per operation", "histogram",
                _GENAI[:4], buckets=TOKEN_BUCKETS, budget=_config_budget(model_caps),
            )  # fmt: skip
            self.usage_counters = {
                kind: Family(
                    f"gen_ai_client_inference_usage_{kind}_total",
                    f"billable {kind.replace('_', ' ')}",
                    "counter",
                    (*_GENAI[:4], "gen_ai_token_modality"),
                    budget=_config_budget(model_caps),
                )  # fmt: skip
                for kind in (
                    "input_tokens",
                    "output_tokens",
                    "cache_read_input_tokens",
                    "cache_write_input_tokens",
                    "reasoning_output_tokens",
                )  # fmt: skip
            }
        else:
            self.token_usage = Family(
                "gen_ai_client_token_usage", "tokens per operation by gen_ai_token_type (input, output)",
                "histogram", (*_GENAI[:4], "gen_ai_token_type"), buckets=TOKEN_BUCKETS,
                budget=_config_budget(model_caps),
            )  # fmt: skip
            self.input_tokens = self.output_tokens = None
            self.usage_counters = {}
        requests_labels = ("route", "operation", "status_class", "error_type", *extra)
        self.requests = Family(
            "relaygate_requests_total", "API requests by route template, status class and error type", "counter",
            requests_labels, budget=budget(requests_labels),
        )  # fmt: skip
        self.request_duration = Family(
            "relaygate_request_duration_seconds", "end-to-end gateway time of a request", "histogram",
            ("route", "status_class"), buckets=DURATION_BUCKETS,
        )  # fmt: skip
        self.overhead = Family(
            "relaygate_overhead_duration_seconds", "gateway time minus time waiting on upstreams", "histogram",
            ("route",), buckets=OVERHEAD_BUCKETS,
        )  # fmt: skip
        self.attempts = Family(
            "relaygate_upstream_attempts_total", "upstream tries by outcome (success, retry, fallback, error)",
            "counter", ("provider", "target", "outcome"), budget=_config_budget((1,)),
        )  # fmt: skip
        self.attempt_duration = Family(
            "relaygate_upstream_attempt_duration_seconds", "duration of one upstream try (to its first content "
            "for streams)", "histogram", ("provider", "target", "outcome"), buckets=DURATION_BUCKETS,
            budget=_config_budget((1,)),
        )  # fmt: skip
        self.fallbacks = Family(
            "relaygate_fallbacks_total", "fallbacks from one target to the next", "counter",
            ("virtual_model", "from_target", "to_target"), budget=_config_budget((0, 1, 2)),
        )  # fmt: skip
        cost_labels = ("provider", "model", *extra)
        self.cost = Family(
            "relaygate_cost_usd_total", "cost in USD of answered requests (the log rows' cost_usd)", "counter",
            cost_labels, budget=budget(cost_labels, (1,)),
        )  # fmt: skip
        token_labels = ("provider", "model", "type", *extra)
        self.tokens = Family(
            "relaygate_tokens_total", "tokens by type (input, output, cache_read, cache_write, reasoning)",
            "counter", token_labels, budget=budget(token_labels, (1,)),
        )  # fmt: skip
        self.limit_decisions = Family(
            "relaygate_limits_decisions_total", "rate-limit and budget rule decisions", "counter",
            ("kind", "decision", "rule_id"),
        )  # fmt: skip
        self.limit_usage = Family(
            "relaygate_limit_usage_ratio", "used / limit of the rate-limit or budget counter the latest request "
            "matching the rule counted against (> 1: an audit-mode budget over its limit)", "gauge",
            ("kind", "rule_id"), merge="max",
        )  # fmt: skip
        self.cache_requests = Family(
            "relaygate_cache_requests_total", "response-cache decisions by cache type and status (hit, miss, "
            "error, bypass)", "counter", ("type", "status"),
        )  # fmt: skip
        self.cache_saved = Family(
            "relaygate_cache_saved_usd_total", "USD that cache hits saved (the original requests' cost)", "counter", (),
        )  # fmt: skip
        self.cache_lookup = Family(
            "relaygate_cache_lookup_duration_seconds", "time to look a request up in the response cache",
            "histogram", ("type",), buckets=OVERHEAD_BUCKETS,
        )  # fmt: skip
        self.guardrail_verdicts = Family(
            "relaygate_guardrail_checks_total", "guardrail results by guardrail, stage and result (pass, mutate, "
            "flag, block, error, skipped)", "counter", ("guardrail", "stage", "result"), budget=_config_budget((0,)),
        )  # fmt: skip
        self.guardrail_duration = Family(
            "relaygate_guardrail_duration_seconds", "time one guardrail took on one stage", "histogram",
            ("guardrail", "stage"), buckets=OVERHEAD_BUCKETS, budget=_config_budget((0,)),
        )  # fmt: skip
        # MCP (docs/mcp.md): every tools/call by outcome, and each MCP operation's duration. Server names
        # come from config; tool names are capped per family (an upstream decides what it lists).
        self.mcp_tool_calls = Family(
            "relaygate_mcp_tool_calls_total", "MCP tools/call requests by server, tool and outcome (ok, "
            "tool_error, protocol_error, denied)", "counter", ("mcp_server", "tool", "outcome"),
            budget=_config_budget((0, 1)),
        )  # fmt: skip
        self.mcp_duration = Family(
            "relaygate_mcp_operation_duration_seconds", "time the gateway took to answer one MCP request, by "
            "server, JSON-RPC method and error type", "histogram", ("mcp_server", "mcp_method_name", "error_type"),
            buckets=MCP_BUCKETS, budget=_config_budget((0, 1)),
        )  # fmt: skip
        self.mcp_sessions = Family(
            "relaygate_mcp_sessions_started_total", "MCP sessions the gateway opened (initialize answered), by "
            "server", "counter", ("mcp_server",), budget=_config_budget((0,)),
        )  # fmt: skip
        self.families = [
            f
            for f in (
                self.duration,
                self.ttfc,
                self.tpoc,
                self.token_usage,
                self.input_tokens,
                self.output_tokens,
                *self.usage_counters.values(),
                self.requests,
                self.request_duration,
                self.overhead,
                self.attempts,
                self.attempt_duration,
                self.fallbacks,
                self.cost,
                self.tokens,
                self.limit_decisions,
                self.limit_usage,
                self.cache_requests,
                self.cache_saved,
                self.cache_lookup,
                self.guardrail_verdicts,
                self.guardrail_duration,
                self.mcp_tool_calls,
                self.mcp_duration,
                self.mcp_sessions,
            )  # fmt: skip
            if f is not None
        ]

    def record(self, ctx: RequestContext, record: LogRecord) -> None:
        """Count one finished request."""
        snapshot = self._snapshot()
        observability = snapshot.observability
        if observability is not self.observability:
            self._configure(observability)
        now = time.monotonic()
        status = ctx.status
        if ctx.error_type is None and status < 400 and not ctx.truncated:
            error = ""  # the common case, without the mapping's branches
        else:
            error = error_type_of(status, ctx.error_type, ctx.truncated, ctx.attempts)
        status_class = _STATUS_CLASSES.get(status) or _status_class(status)
        extra = _extra_values(observability, ctx) if observability.extra_labels else ()
        route = ctx.route
        self.requests.inc((route, ctx.operation, status_class, error, *extra), 1.0, now)
        total = (record.latency_ms or 0.0) / 1000.0
        self.request_duration.observe((route, status_class), total, now)
        self.overhead.observe((route,), max(total - (ctx.upstream_ms or 0.0) / 1000.0, 0.0), now)
        provider = ctx.provider or ""
        for attempt in ctx.attempts:
            labels = (attempt.provider, attempt.target, attempt.outcome)
            self.attempts.inc(labels, 1.0, now)
            self.attempt_duration.observe(labels, attempt.duration_ms / 1000.0, now)
        if len(ctx.attempts) > 1:
            self._fallbacks(ctx, now)
        limits = ctx.extra.get("limits")
        if limits:
            self._limits(limits, now)
            for kind, rule_id, ratio in ctx.limit_usage:
                self.limit_usage.set((kind, rule_id), ratio, now)
        extra_facts = ctx.extra
        if "cache" in extra_facts or "guardrails" in extra_facts:
            self._features(extra_facts, now)
        model = ctx.resolved_model or ""
        if record.cost_usd:
            self.cost.inc((provider, model, *extra), record.cost_usd, now)
        usage = ctx.usage
        if usage.input_tokens:
            self.tokens.inc((provider, model, "input", *extra), float(usage.input_tokens), now)
        if usage.output_tokens:
            self.tokens.inc((provider, model, "output", *extra), float(usage.output_tokens), now)
        if usage.cached_tokens or usage.cache_write_tokens or usage.reasoning_tokens:
            for kind, count in (
                ("cache_read", usage.cached_tokens),
                ("cache_write", usage.cache_write_tokens),
                ("reasoning", usage.reasoning_tokens),
            ):
                if count:
                    self.tokens.inc((provider, model, kind, *extra), float(count), now)
        if provider and ctx.operation in MODEL_OPERATIONS:  # the gateway called a model (a GenAI client)
            self._genai(ctx, snapshot, error, total, now)

    def _genai(self, ctx: RequestContext, snapshot: Snapshot, error: str, total: float, now: float) -> None:
        requested = ctx.requested_model or ""
        if requested and ctx.resolved_model is None and not _configured(snapshot, requested):
            requested = OTHER  # a name the caller made up: never its own series
        base = (operation_name(ctx.operation), provider_name(ctx.provider), requested, ctx.resolved_model or "")
        self.duration.observe((*base, error), total, now)
        if ctx.streaming and ctx.ttft_ms is not None:
            self.ttfc.observe(base, ctx.ttft_ms / 1000.0, now)
            output = ctx.usage.output_tokens
            if ctx.last_chunk_ms is not None and output is not None and output > 1:
                self.tpoc.observe(base, (ctx.last_chunk_ms - ctx.ttft_ms) / 1000.0 / (output - 1), now)
        usage = ctx.usage
        if self.token_usage is not None:
            if usage.input_tokens is not None:
                self.token_usage.observe((*base, "input"), float(usage.input_tokens), now)
            if usage.output_tokens is not None:
                self.token_usage.observe((*base, "output"), float(usage.output_tokens), now)
            return
        assert self.input_tokens is not None and self.output_tokens is not None
        if usage.input_tokens is not None:
            self.input_tokens.observe(base, float(usage.input_tokens), now)
        if usage.output_tokens is not None:
            self.output_tokens.observe(base, float(usage.output_tokens), now)
        counts = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
        )
        known = any(c is not None for c in counts)
        for family, count in zip(self.usage_counters.values(), counts, strict=True):
            family.inc((*base, "text" if known else "unknown"), float(count or 0), now)

    def _features(self, facts: dict[str, object], now: float) -> None:
        """The response cache's decision and every guardrail verdict of the request."""
        cache = facts.get("cache")
        if isinstance(cache, dict):
            kind = str(cache.get("type") or "exact-match")
            self.cache_requests.inc((kind, str(cache.get("status"))), 1.0, now)
            saved = cache.get("saved_usd")
            if isinstance(saved, float | int) and saved:
                self.cache_saved.inc((), float(saved), now)
            lookup = cache.get("lookup_ms")
            if isinstance(lookup, float | int):
                self.cache_lookup.observe((kind,), float(lookup) / 1000.0, now)
        verdicts = facts.get("guardrails")
        if isinstance(verdicts, list):
            for verdict in verdicts:
                labels = (str(verdict["name"]), str(verdict["stage"]))
                self.guardrail_verdicts.inc((*labels, str(verdict["result"])), 1.0, now)
                self.guardrail_duration.observe(labels, float(verdict["latency_ms"]) / 1000.0, now)

    def _fallbacks(self, ctx: RequestContext, now: float) -> None:
        routing = ctx.extra.get("routing")
        virtual = routing.get("virtual_model", "") if isinstance(routing, dict) else ""
        attempts = ctx.attempts
        for left, right in zip(attempts, attempts[1:], strict=False):
            if left.target != right.target:
                self.fallbacks.inc((virtual, left.target, right.target), 1.0, now)

    def _limits(self, limits: dict[str, object], now: float) -> None:
        refused = limits.get("refused")
        for kind in ("rate_limit", "budget"):
            ids = limits.get(kind)
            if isinstance(ids, list):
                for rule_id in ids:
                    decision = "deny" if rule_id == refused else "allow"
                    self.limit_decisions.inc((kind, decision, str(rule_id)), 1.0, now)

    def evict_idle(self) -> int:
        """Drop series idle longer than the configured TTL; how many were dropped."""
        assert self.observability is not None
        before = time.monotonic() - self.observability.series_ttl
        return sum(family.evict_idle(before) for family in self.families)

    def mcp_call(self, server: str, tool: str, outcome: str) -> None:
        """Count one MCP tools/call by its outcome."""
        self.mcp_tool_calls.inc((server, tool, outcome), 1.0, time.monotonic())

    def mcp_session_started(self, server: str) -> None:
        """Count one MCP session opened."""
        self.mcp_sessions.inc((server,), 1.0, time.monotonic())

    def mcp_operation(self, server: str, method: str, error_type: str, seconds: float) -> None:
        """Time one MCP request (every method: initialize and tools/list are counted here, not logged)."""
        self.mcp_duration.observe((server, method, error_type), seconds, time.monotonic())

    @property
    def folded(self) -> int:
        """Label values folded into `_OTHER` so far."""
        return sum(f.budget.folded for f in self.families if f.budget is not None)


def _config_budget(positions: tuple[int, ...]) -> LabelBudget | None:
    return LabelBudget(tuple((p, CONFIG_LABEL_CAP) for p in positions)) if positions else None


def _configured(snapshot: Snapshot, name: str) -> bool:
    return name in snapshot.models or name in snapshot.virtual_models or name in snapshot.aliases


def _extra_values(observability: Observability, ctx: RequestContext) -> tuple[str, ...]:
    """Values of the opt-in identity and metadata labels ("" where the request has none)."""
    subject = ctx.subject or ""
    values: list[str] = []
    for label in observability.identity_labels:
        if label == "user":
            values.append(subject[5:] if subject.startswith("user:") else "")
        elif label == "virtual_account":
            values.append(subject[15:] if subject.startswith("virtualaccount:") else "")
        else:
            # One team per request, so sums over teams add up: the first by name, `everyone` last.
            teams = sorted(s[5:] for s in ctx.subjects if s.startswith("team:"))
            named = [t for t in teams if t != "everyone"] or teams
            values.append(named[0] if named else "")
    metadata = ctx.metadata
    values.extend(metadata.get(key, "") for key in observability.metadata_labels)
    return tuple(values)
