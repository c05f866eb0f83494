"""One request-log row, built on the request path and written later by the sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relaygate.context import RequestContext


@dataclass(slots=True)
class LogRecord:
    """What the log keeps about one request. Never holds a token secret or an upstream credential."""

    request_id: str
    time: float  # unix seconds when the request arrived
    method: str
    path: str
    subject: str | None = None  # "user:alice@x.com" | "virtualaccount:ci-bot"
    token_id: str | None = None  # public id of the token, never the secret
    requested_model: str | None = None
    resolved_model: str | None = None  # "{account}/{integration}" that answered
    provider: str | None = None  # provider kind: openai, azure-openai, mock, ...
    model_type: str | None = None  # chat, embedding, ...
    status: int = 0
    streaming: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cost_unknown: bool = False
    latency_ms: float | None = None
    ttft_ms: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str | None = None
    request_body: bytes | None = None  # None when logging is off for the request
    response_body: bytes | None = None
    truncated: bool = False  # stream ended by an upstream failure after content was sent
    extra: dict[str, Any] = field(default_factory=dict)  # feature-specific attributes (routing, proxy)
    trace_id: str | None = None  # W3C trace id of the request (its spans, `x-relaygate-trace-id`)
    team: str | None = None  # the caller's first team by name (a user in several teams counts under one)


def subject_candidates(user: str) -> list[str]:
    """A `user` filter (`--user`, `GET /logs?user=`, usage filters) as stored subjects: `alice@x.com`
    means `user:alice@x.com`; a full subject (`virtualaccount:bot`) is taken as is."""
    if ":" in user:
        kind, _, name = user.partition(":")
        if kind == "virtual-account":
            return [user, f"virtualaccount:{name}"]
        return [user]
    return [f"user:{user}", user]


def record_from_context(ctx: RequestContext, body_limit: int) -> LogRecord:
    """The log row for a finished request; cost from the target's price, marked unknown without one."""
    usage = ctx.usage
    cost, cost_unknown = ctx.cost()
    log_bodies = ctx.log_bodies and ctx.subject is not None
    return LogRecord(
        request_id=ctx.request_id,
        time=ctx.wall_time,
        method=ctx.method,
        path=ctx.path,
        subject=ctx.subject,
        token_id=ctx.token_id,
        requested_model=ctx.requested_model,
        resolved_model=ctx.resolved_model,
        provider=ctx.provider,
        model_type=ctx.model_type,
        status=ctx.status,
        streaming=ctx.streaming,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=cost,
        cost_unknown=cost_unknown,
        latency_ms=round(ctx.elapsed_ms(), 3),
        ttft_ms=round(ctx.ttft_ms, 3) if ctx.ttft_ms is not None else None,
        metadata=ctx.metadata,
        error_type=ctx.error_type,
        error_message=ctx.error_message,
        request_body=_clip(ctx.request_body, body_limit) if log_bodies else None,
        response_body=_clip(ctx.response_body, body_limit) if log_bodies else None,
        truncated=ctx.truncated,
        extra=_with_usage_details(ctx),
        trace_id=ctx.trace_id,
        team=ctx.team,
    )


def _with_usage_details(ctx: RequestContext) -> dict[str, Any]:
    """Cache and reasoning token counts ride in `extra` (they exist for some providers only)."""
    details = ctx.usage.details()
    if not details:
        return ctx.extra
    return {**ctx.extra, "usage_details": details}


def _clip(body: bytes | None, limit: int) -> bytes | None:
    if body is None or len(body) <= limit:
        return body
    return body[:limit]


def finished_record(ctx: RequestContext, body_limit: int) -> LogRecord:
    """The row to queue once the request is over: the one built before a non-streaming answer's header
    (`server-timing` reports that work as `logging`) with its latency brought up to date, else a new one."""
    record = ctx.log_record
    if record is None or record.status != ctx.status:
        return record_from_context(ctx, body_limit)
    record.latency_ms = round(ctx.elapsed_ms(), 3)
    return record
