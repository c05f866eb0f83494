"""`tools/call`: one call of one tool, with access, limits, guardrails, the relay and one log row.

The name is mapped back to (remote server, upstream tool) and access asked again with
`McpPolicy.tool_allowed`, so calling a denied tool by a guessed name is `-32602` "Unknown tool",
exactly like a tool that does not exist. The call is admitted against the limits whose
`when.mcp_servers` match (one request, `cost_per_call_usd`), checked by the pre-invoke guardrails,
forwarded with the backend's own session id (and, with tracing on, the trace context of the call's span:
`mcp_trace.py`), and relayed as the upstream answers (JSON, or SSE event by event), the result checked
by the post-invoke guardrails on its way back. The row's `extra.mcp` says what happened; its bodies,
when kept, are the request as the client sent it (its arguments as the pre-invoke guardrails masked
them) and the answer the client got (`mcp_reply.py`), the servers' `auth_data` values scrubbed.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from relaygate.errors import GatewayError, scrub
from relaygate.guardrails.text import Texts
from relaygate.mcp.http_errors import session_not_found
from relaygate.mcp.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, JsonRpcMessage, RequestId, error_response
from relaygate.mcp.upstream import BackendError
from relaygate.pipeline.admission import admit_mcp, settle_later
from relaygate.pipeline.mcp_answers import error_code, failure_answer
from relaygate.pipeline.mcp_guard import ToolGuard, blocked_result, result_texts, string_slots
from relaygate.pipeline.mcp_reply import relay_events, send_json, send_message, send_result
from relaygate.pipeline.mcp_request import McpRequest, upstream_host
from relaygate.pipeline.mcp_tools import backend_failure, resolve_tool
from relaygate.pipeline.mcp_trace import CallTrace, call_trace, record_span, traced_body, traced_headers
from relaygate.runtime.mcp import McpServer
from relaygate.wire_types import JSON

UNKNOWN_TOOL = "Unknown tool"


async def call_tool(req: McpRequest, message: JsonRpcMessage) -> None:
    """Answer `tools/call`: access, limits, the upstream call relayed, one log row."""
    call, ctx = req.call, req.call.ctx
    assert message.id is not None
    call.row = True
    listed = message.params.get("name")
    mcp: dict[str, Any] = {
        "method": "tools/call",
        "tool": listed if isinstance(listed, str) else None,
        "is_error": None,
        "jsonrpc_error_code": None,
        "session_era": "stateless" if req.stateless else "session",
        "protocol_version": req.session.protocol_version if req.session else None,
        "outcome": "denied",
    }
    ctx.extra["mcp"] = mcp
    if ctx.log_bodies:
        ctx.request_body = _logged_request(req, message.body)
    ctx.requested_model = f"{req.name}/{listed if isinstance(listed, str) else ''}"
    started = time.perf_counter()
    target = await resolve_tool(req, listed) if isinstance(listed, str) else None
    if target is not None:
        server, tool = target
        member = server.name if req.virtual else None
        if not req.policy.tool_allowed(req.name, tool, req.principal.subjects, member):
            target = None
    if target is None:
        mcp["jsonrpc_error_code"] = INVALID_PARAMS
        await send_json(call, error_response(message.id, INVALID_PARAMS, UNKNOWN_TOOL))
        _observe(req, started, "denied")
        return
    server, tool = target
    mcp["tool"] = tool
    ctx.requested_model = f"{server.name}/{tool}"
    ctx.resolved_model = upstream_host(server)
    reservation = None
    guard: ToolGuard | None = None
    trace = call_trace(req)
    try:
        reservation = await admit_mcp(
            call.gateway,
            ctx,
            req.principal,
            server.name,
            tool,
            server.cost_per_call_usd,
            virtual=req.name if req.virtual else None,
        )
        guard = _guard(req, server, tool)
        body = {**message.body, "params": {**message.params, "name": tool}}
        allowed = guard is None or await _checked_arguments(req, guard, body, mcp)
        arguments = body["params"].get("arguments")
        if ctx.log_bodies and guard is not None and arguments != message.params.get("arguments"):
            masked = {**message.body, "params": {**message.params, "arguments": arguments}}
            ctx.request_body = _logged_request(req, masked)
        if allowed:
            await _forward_call(req, message.id, traced_body(body, trace), server, mcp, guard, trace)
    except GatewayError as exc:
        ctx.status, ctx.error_type, ctx.error_message = exc.status, exc.type, exc.message
        raise
    finally:
        settle_later(call.gateway, reservation, ctx)
        record_span(req, message, tool, started, mcp, trace)
        if guard is not None and guard.verdicts:
            ctx.extra["guardrails"] = [verdict.row() for verdict in guard.verdicts]
        _observe(req, started, mcp["outcome"])


def _logged_request(req: McpRequest, body: Any) -> bytes:
    """A tools/call request as the row keeps it: scrubbed of every member's `auth_data` values."""
    return scrub(orjson.dumps(body), tuple(secret for server in req.members() for secret in server.secrets))


def _guard(req: McpRequest, server: McpServer, tool: str) -> ToolGuard | None:
    """The call's guardrails (None when the config has no guardrail rules)."""
    policy = req.call.gateway.snapshot.guardrails
    if not policy.rules:
        return None
    ctx = req.call.ctx
    context = {"mcp_server": server.name, "tool": tool, "subject": ctx.subject, "request_id": ctx.request_id}
    return ToolGuard(policy, server.name, tool, req.principal.subjects, ctx.metadata, context, [])


async def _checked_arguments(req: McpRequest, guard: ToolGuard, body: JSON, mcp: dict[str, Any]) -> bool:
    """Pre-invoke guardrails over the arguments (masked in place); False when the call must not be made."""
    texts = Texts()
    params = body["params"]
    arguments = params.get("arguments")
    if isinstance(arguments, dict | list):
        params["arguments"] = arguments = _copy(arguments)  # masks never touch the parsed request
        string_slots(arguments, texts, "user")
    report = await guard.run("mcp_pre", texts)
    if report is None or (report.blocked is None and report.failed is None):
        return True
    request_id = body["id"]
    if report.blocked is not None:
        mcp["outcome"], mcp["is_error"] = "denied", True
        await send_result(req.call, request_id, blocked_result(report.blocked, before=True))
    else:
        assert report.failed is not None
        mcp["outcome"], mcp["jsonrpc_error_code"] = "protocol_error", INTERNAL_ERROR
        text = f"guardrail {report.failed.ref} could not check the tool call ({report.failed.reason})"
        await send_json(req.call, error_response(request_id, INTERNAL_ERROR, text))
    return False


def _copy(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts, lists and scalars only)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


async def _checked_answer(guard: ToolGuard, answer: JSON, mcp: dict[str, Any]) -> JSON | None:
    """Post-invoke guardrails over a result: the answer to send instead (masked, blocked or failed),
    or None to send it as it came."""
    result = answer.get("result")
    if not isinstance(result, dict):
        return None
    report = await guard.run("mcp_post", result_texts(result))
    if report is None:
        return None
    if report.blocked is not None:
        mcp["outcome"], mcp["is_error"] = "tool_error", True
        return {"jsonrpc": "2.0", "id": answer.get("id"), "result": blocked_result(report.blocked, before=False)}
    if report.failed is not None:
        mcp["outcome"], mcp["jsonrpc_error_code"], mcp["is_error"] = "protocol_error", INTERNAL_ERROR, None
        text = f"guardrail {report.failed.ref} could not check the tool result ({report.failed.reason})"
        return {"jsonrpc": "2.0", "id": answer.get("id"), "error": {"code": INTERNAL_ERROR, "message": text}}
    return answer if report.mutated else None


async def _forward_call(
    req: McpRequest,
    request_id: RequestId,
    body: JSON,
    server: McpServer,
    mcp: dict[str, Any],
    guard: ToolGuard | None,
    trace: CallTrace | None,
) -> None:
    """Send the call upstream under the upstream name, and relay its answer noting the outcome."""
    session = req.session
    assert session is not None
    backend_session = session.backends.get(server.name)
    if backend_session is None:
        raise session_not_found()
    backend, extra = req.backend(server)

    def note(answer: JSON) -> None:
        if answer.get("id") != request_id or "method" in answer:
            return
        code = error_code(answer)
        result = answer.get("result")
        is_error = isinstance(result, dict) and result.get("isError") is True
        mcp["jsonrpc_error_code"] = code
        mcp["is_error"] = is_error if code is None else None
        mcp["outcome"] = "protocol_error" if code is not None else ("tool_error" if is_error else "ok")

    upstream_started = time.perf_counter()
    mcp["outcome"] = "protocol_error"
    try:
        reply = await backend.request(
            req.http,
            body,
            session_id=backend_session.session_id,
            protocol_version=backend_session.protocol_version,
            extra_headers=traced_headers(req.routed(body, extra), trace),
        )
    except BackendError as exc:
        req.call.ctx.error_type = "upstream_error"
        req.call.ctx.error_message = exc.reason
        await send_json(req.call, backend_failure(req, request_id, exc, server))
        return
    finally:
        req.call.ctx.upstream_ms = (time.perf_counter() - upstream_started) * 1000.0
    if reply.events is not None:

        def failed(exc: BackendError) -> bytes:
            mcp["outcome"], mcp["jsonrpc_error_code"] = "protocol_error", INTERNAL_ERROR
            return scrub(failure_answer(request_id, exc, server.name), server.secrets)

        async def checked(answer: JSON) -> JSON | None:
            if guard is None or answer.get("id") != request_id or "method" in answer:
                return None
            return await _checked_answer(guard, answer, mcp)

        await relay_events(req.call, reply.events, server.secrets, note, failed, checked if guard else None)
        return
    assert reply.message is not None
    note(reply.message)
    answer = reply.message
    if guard is not None:
        answer = await _checked_answer(guard, answer, mcp) or answer
    await send_message(req.call, answer, server.secrets, reply.raw if answer is reply.message else None)


def _observe(req: McpRequest, started: float, outcome: str) -> None:
    """The MCP metrics of one tools/call (its row is written by the app's finish)."""
    metrics = req.call.gateway.metrics.requests
    if metrics is None:
        return
    tool = req.call.ctx.extra["mcp"].get("tool") or ""
    metrics.mcp_call(req.name, tool, outcome)
    error = "" if outcome in ("ok", "tool_error") else outcome
    metrics.mcp_operation(req.name, "tools/call", error, time.perf_counter() - started)
