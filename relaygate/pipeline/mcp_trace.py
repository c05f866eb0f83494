"""A `tools/call`'s place in the trace: its CLIENT span, and the trace context the backend continues.

With tracing on, the call's span `tools/call {tool}` gets its id before the call is forwarded, so the
backend can be told to hang its own spans under it: the forwarded request carries
`params._meta.traceparent` (MCP's convention) and the HTTP `traceparent` header, both naming the
request's trace and that span. The span is then exported with that very id. With tracing off nothing
is added and the body goes upstream as the client sent it (but for the tool's upstream name).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relaygate.mcp.jsonrpc import JsonRpcMessage
from relaygate.mcp.protocol import SESSION_ID_HEADER
from relaygate.observe.trace_context import traceparent
from relaygate.pipeline.mcp_request import McpRequest
from relaygate.wire_types import JSON

TRACEPARENT = "traceparent"


@dataclass(frozen=True, slots=True)
class CallTrace:
    """The call span's id, decided up front, and the `traceparent` naming it."""

    span_id: int
    traceparent: str


def call_trace(req: McpRequest) -> CallTrace | None:
    """The call span's trace context when tracing is on (None: off)."""
    gateway = req.call.gateway
    ctx = req.call.ctx
    if gateway.tracing is None or ctx.trace_id is None:
        return None
    span_id = gateway.rng.getrandbits(64) or 1
    return CallTrace(span_id, traceparent(ctx.trace_id, span_id, gateway.tracing.sampled(ctx)))


def traced_body(body: JSON, trace: CallTrace | None) -> JSON:
    """The forwarded request with `params._meta.traceparent` set (the client's other `_meta` kept)."""
    if trace is None:
        return body
    params = body.get("params")
    params = params if isinstance(params, Mapping) else {}
    meta = params.get("_meta")
    meta = meta if isinstance(meta, Mapping) else {}
    return {**body, "params": {**params, "_meta": {**meta, TRACEPARENT: trace.traceparent}}}


def traced_headers(headers: dict[str, str], trace: CallTrace | None) -> dict[str, str]:
    """The per-call headers with the gateway's `traceparent` (replacing one a client header carried)."""
    if trace is None:
        return headers
    kept = {name: value for name, value in headers.items() if name.lower() != TRACEPARENT}
    return {**kept, TRACEPARENT: trace.traceparent}


def record_span(
    req: McpRequest, message: JsonRpcMessage, tool: str, started: float, mcp: dict[str, Any], trace: CallTrace | None
) -> None:
    """The `tools/call {tool}` span (CLIENT, under the request's SERVER span) when tracing is on; the
    session id only as a hash."""
    if req.call.gateway.tracing is None:
        return
    session_id = req.headers.get(SESSION_ID_HEADER)
    attributes: list[tuple[str, Any]] = [
        ("mcp.method.name", "tools/call"),
        ("gen_ai.tool.name", tool),
        ("jsonrpc.request.id", str(message.id)),
        ("mcp.protocol.version", mcp["protocol_version"] or ""),
    ]
    if session_id:
        attributes.append(("mcp.session.id", hashlib.sha256(session_id.encode()).hexdigest()[:16]))
    failed = mcp["outcome"] == "protocol_error"
    span_id = trace.span_id if trace is not None else None
    req.call.ctx.add_span(
        f"tools/call {tool}", started, time.perf_counter(), True, tuple(attributes), failed, span_id=span_id
    )
