"""`tools/list`, and the way from a listed tool name back to its server and upstream tool.

Listing asks `McpPolicy.tool_allowed` (through `tool_listing.listed_tools`), as `tools/call` does
(`mcp_call.py`), so a denied tool is never listed. A single remote server's page passes through
filtered (its own cursors pass through too). A virtual server pages the merge: each page holds the next
upstream page of every member still listing (fetched concurrently), in member order then upstream
order, and its `nextCursor` carries the members' own cursors (`mcp/list_cursor.py`). Each listing
teaches the process's `ToolDirectory` its names' way back; a name it has not seen yet (a later page,
another replica) is learnt by one whole listing when a call needs it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from relaygate.errors import scrub
from relaygate.mcp.http_errors import session_not_found
from relaygate.mcp.jsonrpc import INVALID_PARAMS, JsonRpcMessage, RequestId, error_response, result_response
from relaygate.mcp.list_cursor import InvalidCursor, decode_cursor, encode_cursor, member_cursor
from relaygate.mcp.names import ToolNames
from relaygate.mcp.tool_listing import every_name, listed_tools
from relaygate.mcp.upstream import BackendError
from relaygate.pipeline.mcp_answers import answer_of, error_code, failure_answer
from relaygate.pipeline.mcp_reply import send_json, send_message
from relaygate.pipeline.mcp_request import McpRequest
from relaygate.runtime.mcp import McpServer
from relaygate.wire_types import JSON

log = logging.getLogger("relaygate.mcp")
MAX_MEMBER_PAGES = 20  # pages of one member's listing a virtual server collects


async def list_tools(req: McpRequest, message: JsonRpcMessage) -> None:
    """Answer `tools/list`: the upstream's page filtered (remote), or every member merged (virtual)."""
    assert message.id is not None
    if not req.virtual:
        server = req.members()[0]
        try:
            answer = await _request(req, server, dict(message.body))
        except BackendError as exc:
            await send_json(req.call, backend_failure(req, message.id, exc, server))
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
    cursor = message.params.get("cursor")
    try:
        positions = _positions(req, None if cursor is None else decode_cursor(req.name, cursor))
    except InvalidCursor:
        text = "Invalid params: the cursor is invalid (list again without one)"
        await send_json(req.call, error_response(message.id, INVALID_PARAMS, text))
        return
    tools, next_cursor = await _virtual_page(req, positions)
    page: dict[str, Any] = {"tools": tools}
    if next_cursor is not None:
        page["nextCursor"] = next_cursor
    await send_json(req.call, result_response(message.id, page))


def _positions(req: McpRequest, cursors: dict[str, str] | None) -> list[tuple[McpServer, str | None]]:
    """The members a page lists, in member order, with the upstream cursor of each (None: its first
    page). A member the cursor names that the session does not hold (a reload dropped it) is skipped."""
    session = req.session
    assert session is not None
    members = [server for server in req.members() if server.name in session.backends]
    if cursors is None:
        return [(server, None) for server in members]
    return [(server, cursors[server.name]) for server in members if server.name in cursors]


async def _virtual_page(
    req: McpRequest, positions: list[tuple[McpServer, str | None]]
) -> tuple[list[dict[str, Any]], str | None]:
    """One merged page: the next upstream page of each member (concurrently; a failing member is left
    out and logged), filtered and renamed, and the cursor of the members still listing."""
    pages = await asyncio.gather(*(_page(req, server, cursor) for server, cursor in positions), return_exceptions=True)
    usable: list[tuple[str, list[Any]]] = []
    still_open: list[tuple[str, str]] = []
    for (server, _), page in zip(positions, pages, strict=True):
        if isinstance(page, BaseException):
            log.warning("MCP server %s: tools/list failed for %s: %s", server.name, req.name, page)
            continue
        tools, next_cursor = page
        usable.append((server.name, tools))
        if next_cursor is not None:
            still_open.append((server.name, next_cursor))
    listed, names = listed_tools(req.policy, req.name, req.principal.subjects, usable, prefixed=True)
    _learn(req, names, listed)
    return listed, encode_cursor(req.name, still_open)


async def _member_listings(req: McpRequest) -> tuple[list[tuple[str, list[Any]]], bool]:
    """Every member's whole listing (all pages, concurrently), and whether none failed (a member that
    fails is left out and logged)."""
    servers = [s for s in req.members() if req.session is not None and s.name in req.session.backends]
    listings = await asyncio.gather(*(_all_tools(req, server) for server in servers), return_exceptions=True)
    usable: list[tuple[str, list[Any]]] = []
    for server, listing in zip(servers, listings, strict=True):
        if isinstance(listing, BaseException):
            log.warning("MCP server %s: tools/list failed for %s: %s", server.name, req.name, listing)
            continue
        usable.append((server.name, listing))
    return usable, len(usable) == len(servers)


async def _all_tools(req: McpRequest, server: McpServer) -> list[Any]:
    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(MAX_MEMBER_PAGES):
        page, cursor = await _page(req, server, cursor)
        tools.extend(page)
        if cursor is None:
            break
    return tools


async def _page(req: McpRequest, server: McpServer, cursor: str | None) -> tuple[list[Any], str | None]:
    """One page of a member's listing and its next cursor (None: the last page)."""
    params: JSON = req.with_meta({} if cursor is None else {"cursor": cursor})
    request: JSON = {"jsonrpc": "2.0", "id": "relaygate-list", "method": "tools/list", "params": params}
    answer = await _request(req, server, request)
    result = answer.get("result")
    if not isinstance(result, dict):
        raise BackendError(None, f"tools/list answered an error ({error_code(answer)})", kind="rpc_error")
    upstream = result.get("nextCursor")
    next_cursor = member_cursor(upstream)
    if next_cursor is None and isinstance(upstream, str) and upstream:
        log.warning("MCP server %s: a nextCursor of %d characters is not followed", server.name, len(upstream))
    return _tools(result), next_cursor


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


def backend_failure(req: McpRequest, request_id: RequestId, exc: BackendError, server: McpServer) -> bytes:
    """The answer when a backend failed; a session-era 404 means the backend forgot the session."""
    if exc.status == 404 and not req.stateless:  # the backend forgot its session: the client must initialize again
        raise session_not_found()
    return scrub(failure_answer(request_id, exc, server.name), server.secrets)


async def resolve_tool(req: McpRequest, listed: str) -> tuple[McpServer, str] | None:
    """The (remote server, upstream tool) behind a listed name, learning the names by a listing if needed."""
    directory = req.call.gateway.mcp_tools
    found = directory.resolve(req.name, listed)
    if found is None and not directory.fresh(req.name):
        listings, complete = await _member_listings(req)
        names = every_name(listings, prefixed=req.virtual)
        directory.learn(req.name, names, names.listed(), complete=complete)
        found = directory.resolve(req.name, listed)
    if found is None:
        return None
    member, tool = found
    remote = req.remote(member)
    return None if remote is None else (remote, tool)
