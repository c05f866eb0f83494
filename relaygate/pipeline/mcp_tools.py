"""`tools/list` and `tools/call`: the tools a caller may use, and one call of one of them.

Both ask `McpPolicy.tool_allowed` (through `tool_listing.listed_tools` and on each call), so a denied
tool is never listed and calling it by a guessed name is `-32602` "Unknown tool", exactly like a tool
that does not exist. A call is admitted against the limits whose `when.mcp_servers` match (one request,
`cost_per_call_usd`), forwarded with the backend's own session id, and relayed as the upstream
answers it (JSON, or SSE event by event); it writes one log row (`extra.mcp`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from relaygate.errors import GatewayError, scrub
from relaygate.mcp.http_errors import session_not_found
from relaygate.mcp.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    JsonRpcMessage,
    RequestId,
    error_response,
    result_response,
)
from relaygate.mcp.names import ToolNames
from relaygate.mcp.tool_listing import listed_tools
from relaygate.mcp.upstream import BackendError
from relaygate.pipeline.admission import admit_mcp, settle_later
from relaygate.pipeline.mcp_answers import answer_of, error_code, failure_answer
from relaygate.pipeline.mcp_reply import relay_events, send_json, send_message
from relaygate.pipeline.mcp_request import McpRequest, upstream_host
from relaygate.runtime.mcp import McpServer
from relaygate.wire_types import JSON

log = logging.getLogger("relaygate.mcp")
MAX_MEMBER_PAGES = 20  # pages of one member's listing a virtual server collects
UNKNOWN_TOOL = "Unknown tool"


async def list_tools(req: McpRequest, message: JsonRpcMessage) -> None:
    """Answer `tools/list`: the upstream's page filtered (remote), or every member merged (virtual)."""
    assert message.id is not None
    if not req.virtual:
        server = req.members()[0]
        try:
            answer = await _request(req, server, dict(message.body))
        except BackendError as exc:
            await send_json(req.call, _failure(req, message.id, exc, server))
            return
        result = answer.get("result")
        if not isinstance(result, dict):
            await send_message(req.call, answer, server.secrets)
            return
        tools, names = listed_tools(
            req.policy, req.name, req.principal.subjects, [(server.name, _tools(result))], prefixed=False
        )
        _learn(req, names, tools)
        answer = {"jsonrpc": "2.0", "id": message.id, "result": {**result, "tools": tools}}
        await send_message(req.call, answer, server.secrets)
        return
    tools, _ = await _virtual_listing(req)
    await send_json(req.call, result_response(message.id, {"tools": tools}))


async def _virtual_listing(req: McpRequest) -> tuple[list[dict[str, Any]], ToolNames]:
    """Every member's tools (all pages, concurrently), merged in member order; a failing member is left out."""
    servers = [s for s in req.members() if req.session is not None and s.name in req.session.backends]
    listings = await asyncio.gather(*(_all_tools(req, server) for server in servers), return_exceptions=True)
    usable: list[tuple[str, list[Any]]] = []
    for server, listing in zip(servers, listings, strict=True):
        if isinstance(listing, BaseException):
            log.warning("MCP server %s: tools/list failed for %s: %s", server.name, req.name, listing)
            continue
        usable.append((server.name, listing))
    tools, names = listed_tools(req.policy, req.name, req.principal.subjects, usable, prefixed=True)
    _learn(req, names, tools)
    return tools, names


async def _all_tools(req: McpRequest, server: McpServer) -> list[Any]:
    tools: list[Any] = []
    cursor: object = None
    for page in range(MAX_MEMBER_PAGES):
        params: JSON = req.with_meta({} if cursor is None else {"cursor": cursor})
        request: JSON = {"jsonrpc": "2.0", "id": f"relaygate-list-{page}", "method": "tools/list", "params": params}
        answer = await _request(req, server, request)
        result = answer.get("result")
        if not isinstance(result, dict):
            raise BackendError(None, f"tools/list answered an error ({error_code(answer)})", kind="rpc_error")
        tools.extend(_tools(result))
        cursor = result.get("nextCursor")
        if not isinstance(cursor, str) or not cursor:
            break
    return tools


def _tools(result: JSON) -> list[Any]:
    tools = result.get("tools")
    return tools if isinstance(tools, list) else []


def _learn(req: McpRequest, names: ToolNames, tools: list[dict[str, Any]]) -> None:
    req.call.gateway.mcp_tools.learn(req.name, names, [tool["name"] for tool in tools])


async def _request(req: McpRequest, server: McpServer, request: JSON) -> JSON:
    """One request to a member in the caller's session, its answer read whole."""
    session = req.session
    assert session is not None
    backend_session = session.backends.get(server.name)
    if backend_session is None:
        raise BackendError(None, "no session with this MCP server", kind="http_status")
    backend, extra = req.backend(server)
    reply = await backend.request(
        req.http,
        request,
        session_id=backend_session.session_id,
        protocol_version=backend_session.protocol_version,
        extra_headers=req.routed(request, extra),
    )
    return await answer_of(reply, request["id"])


def _failure(req: McpRequest, request_id: RequestId, exc: BackendError, server: McpServer) -> bytes:
    """The answer when a backend failed; a session-era 404 means the backend forgot the session."""
    if exc.status == 404 and not req.stateless:  # the backend forgot its session: the client must initialize again
        raise session_not_found()
    return scrub(failure_answer(request_id, exc, server.name), server.secrets)


async def _resolve(req: McpRequest, listed: str) -> tuple[McpServer, str] | None:
    """The (remote server, upstream tool) behind a listed name, learning the names by a listing if needed."""
    directory = req.call.gateway.mcp_tools
    found = directory.resolve(req.name, listed)
    if found is None:
        if req.virtual:
            await _virtual_listing(req)
        else:
            server = req.members()[0]
            try:
                tools = await _all_tools(req, server)
            except BackendError:
                return None
            listed_ones, names = listed_tools(
                req.policy, req.name, req.principal.subjects, [(server.name, tools)], prefixed=False
            )
            _learn(req, names, listed_ones)
        found = directory.resolve(req.name, listed)
    if found is None:
        return None
    member, tool = found
    remote = req.remote(member)
    return None if remote is None else (remote, tool)


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
    ctx.requested_model = f"{req.name}/{listed if isinstance(listed, str) else ''}"
    started = time.perf_counter()
    target = await _resolve(req, listed) if isinstance(listed, str) else None
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
        await _forward_call(req, message, server, tool, mcp)
    except GatewayError as exc:
        ctx.status, ctx.error_type, ctx.error_message = exc.status, exc.type, exc.message
        raise
    finally:
        settle_later(call.gateway, reservation, ctx)
        _observe(req, started, mcp["outcome"])


async def _forward_call(
    req: McpRequest, message: JsonRpcMessage, server: McpServer, tool: str, mcp: dict[str, Any]
) -> None:
    """Send the call upstream under the upstream name, and relay its answer noting the outcome."""
    session = req.session
    assert session is not None and message.id is not None
    backend_session = session.backends.get(server.name)
    if backend_session is None:
        raise session_not_found()
    backend, extra = req.backend(server)
    body = {**message.body, "params": {**message.params, "name": tool}}
    request_id = message.id

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
            extra_headers=req.routed(body, extra),
        )
    except BackendError as exc:
        req.call.ctx.error_type = "upstream_error"
        req.call.ctx.error_message = exc.reason
        await send_json(req.call, _failure(req, request_id, exc, server))
        return
    finally:
        req.call.ctx.upstream_ms = (time.perf_counter() - upstream_started) * 1000.0
    if reply.events is not None:

        def failed(exc: BackendError) -> bytes:
            mcp["outcome"], mcp["jsonrpc_error_code"] = "protocol_error", INTERNAL_ERROR
            return scrub(failure_answer(request_id, exc, server.name), server.secrets)

        await relay_events(req.call, reply.events, server.secrets, note, failed)
        return
    assert reply.message is not None
    note(reply.message)
    await send_message(req.call, reply.message, server.secrets)


def _observe(req: McpRequest, started: float, outcome: str) -> None:
    """The MCP metrics of one tools/call (its row is written by the app's finish)."""
    metrics = req.call.gateway.metrics.requests
    if metrics is None:
        return
    tool = req.call.ctx.extra["mcp"].get("tool") or ""
    metrics.mcp_call(req.name, tool, outcome)
    error = "" if outcome in ("ok", "tool_error") else outcome
    metrics.mcp_operation(req.name, "tools/call", error, time.perf_counter() - started)
