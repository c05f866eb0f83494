"""The MCP endpoints' pipeline: who calls, which server, which era, then one step per JSON-RPC method.

Order: the Origin rule (403), the caller's Relaygate token (401 with `WWW-Authenticate: Bearer`), the
server (404 when no server has the name, 403 when the caller may not use it), then the HTTP method:
POST (one JSON-RPC message, or a batch in a 2025-03-26 session: `mcp_batch.py`), GET (a single remote
server's stream) or DELETE (end the session). In the session era every message but `initialize` needs
a session id this caller opened with this token on this server (404 otherwise: the client initializes
again); the stateless 2026-07-28 era checks `Mcp-Method`/`Mcp-Name` against the body and carries no
session.

Methods: `initialize` opens a session; the rest of the session era is sent on by `mcp_dispatch.py`
(`ping` answered there, `tools/list` and `tools/call` through the access checks, everything else
passed through on a single remote server and -32601 on a virtual one; notifications and client
responses forwarded and accepted with 202, but for `notifications/initialized`: the gateway sent its
own when it initialized each backend). Only `tools/call` writes a log row (its bodies kept as `--log-bodies` and
`x-tfy-logging-config` say, as on model routes); every request is timed in the metrics.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from relaygate.http.body import read_body
from relaygate.mcp.client_headers import CLIENT_HEADERS, parse_client_headers
from relaygate.mcp.http_errors import McpRefused
from relaygate.mcp.jsonrpc import (
    InvalidMessage,
    MessageKind,
    parse_body,
)
from relaygate.mcp.protocol import (
    PROTOCOL_VERSION_HEADER,
    STATELESS_VERSION,
    check_http_method,
    check_method_headers,
    check_origin,
    check_post_headers,
    check_session_version,
    check_stateless_version,
    era_of,
    header_map,
)
from relaygate.pipeline.authenticate import authenticate, read_logging_headers
from relaygate.pipeline.mcp_batch import BATCH, serve_batch
from relaygate.pipeline.mcp_dispatch import dispatch
from relaygate.pipeline.mcp_request import McpRequest, time_operation
from relaygate.pipeline.mcp_sessions import end_session, get_stream, initialize, open_session
from relaygate.pipeline.mcp_stateless import serve_stateless

if TYPE_CHECKING:
    from relaygate.pipeline.call import Call

LOCAL_NOTIFICATIONS = frozenset({"notifications/initialized"})
PASS_THROUGH_PREFIXES = ("prompts/", "resources/", "completion/", "logging/")


async def serve(call: Call, name: str) -> None:
    """Serve one request to MCP server `name` (errors propagate to the app's boundary as `McpRefused`)."""
    call.row = False
    started = time.perf_counter()
    ctx = call.ctx
    ctx.operation = ctx.model_type = ctx.provider = "mcp"
    headers = header_map(call.scope["headers"])
    if not check_origin(headers.get("origin"), (), host=headers.get("host")):
        raise McpRefused(403, "Forbidden: Origin not allowed", code="mcp_origin_refused")
    principal = await authenticate(call)
    read_logging_headers(call)  # x-tfy-metadata for limits, guardrails and the row; whether bodies are kept
    policy = call.gateway.snapshot.mcp
    target = policy.server(name)
    if target is None:
        raise McpRefused(404, f"MCP server '{name}' is not configured", code="mcp_server_not_found")
    if not policy.may_use(name, principal.subjects, principal.grant):
        raise McpRefused(403, f"your token may not use MCP server '{name}'", code="mcp_access_denied")
    client_headers = parse_client_headers(headers.get(CLIENT_HEADERS))
    req = McpRequest(call, principal, name, target, policy, headers, client_headers)
    method = req.method = call.scope["method"]
    if method != "POST" and headers.get(PROTOCOL_VERSION_HEADER) == STATELESS_VERSION:
        refusal = check_http_method(method, "stateless")  # 2026-07-28 removed GET and DELETE
        if refusal is not None:
            raise McpRefused.of(refusal)
    try:
        if method == "GET":
            await get_stream(req)
        elif method == "DELETE":
            await end_session(req)
        else:
            await _post(req)
    finally:
        if req.method != BATCH:  # a batch's messages are timed one by one
            time_operation(call, name, req.method, started)


async def _post(req: McpRequest) -> None:
    """One POSTed JSON-RPC message, or a batch."""
    call = req.call
    raw = await read_body(call.scope, call.receive, call.gateway.settings.max_request_body_bytes)
    refusal = check_post_headers(req.headers.get("content-type"), req.headers.get("accept"))
    if refusal is not None:
        raise McpRefused.of(refusal)
    try:
        parsed = parse_body(raw, max_bytes=call.gateway.settings.max_request_body_bytes, allow_batch=True)
    except InvalidMessage as exc:
        raise McpRefused(exc.status, exc.message, rpc_code=exc.code, request_id=exc.request_id) from None
    if parsed.batch:
        await serve_batch(req, parsed.messages)
        return
    message = parsed.messages[0]
    req.method = message.method or "response"
    _maybe_row(req)
    if era_of(message.body, req.headers) == "stateless":
        for refusal in (check_stateless_version(message.body), check_method_headers(message.body, req.headers)):
            if refusal is not None:
                raise McpRefused.of(refusal, message.id)
        await serve_stateless(req, message)
        return
    refusal = check_session_version(req.headers)
    if refusal is not None:
        raise McpRefused.of(refusal, message.id)
    if message.kind is MessageKind.REQUEST and message.method == "initialize":
        await initialize(req, message)
        return
    open_session(req)
    await dispatch(req, message)


def _maybe_row(req: McpRequest) -> None:
    """A request other than `tools/call` writes a row only when `RELAYGATE_MCP_LOG_METHODS` names its
    method (or is `*`): `initialize`, `tools/list` and the rest are counted in the metrics either way."""
    logged = req.call.gateway.settings.mcp_log_methods
    if req.method == "tools/call" or (req.method not in logged and "*" not in logged):
        return
    req.call.row = True
    req.call.ctx.requested_model = f"{req.name}/{req.method}"
    req.call.ctx.extra["mcp"] = {"method": req.method}
