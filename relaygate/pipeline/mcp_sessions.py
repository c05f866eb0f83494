"""The session era's life cycle: `initialize` (one backend, or fanned out), opening a session id, GET, DELETE.

A gateway session is its `Mcp-Session-Id` (`mcp/session.py`): sealed with the gateway's key, bound to
the server, the caller's subject and token, and holding each backend's own session id and version, so
any replica with the key serves it and no table is kept. A single remote server's `initialize` result
passes through unchanged; a virtual server initializes every member concurrently, leaves out those that
fail (named in `instructions` and the log) and answers for itself.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import metadata

from relaygate.errors import scrub
from relaygate.mcp.http_errors import McpRefused, session_not_found
from relaygate.mcp.jsonrpc import INTERNAL_ERROR, JsonRpcMessage, error_response, result_response
from relaygate.mcp.protocol import SESSION_ID_HEADER, check_get_headers, negotiate_version
from relaygate.mcp.session import BackendSession, SessionRefused
from relaygate.mcp.upstream import BackendError, InitResult
from relaygate.pipeline.mcp_answers import failure_answer
from relaygate.pipeline.mcp_reply import relay_events, send_empty, send_json
from relaygate.pipeline.mcp_request import McpRequest
from relaygate.runtime.mcp import McpServer

log = logging.getLogger("relaygate.mcp")
_POST_DELETE = {"allow": "POST, DELETE"}

try:
    GATEWAY_VERSION = metadata.version("relaygate")
except metadata.PackageNotFoundError:  # pragma: no cover - a source tree without its metadata
    GATEWAY_VERSION = "0"


async def initialize(req: McpRequest, message: JsonRpcMessage) -> None:
    """Open a session: initialize the backend(s), then answer with a new gateway session id."""
    assert message.id is not None
    version = negotiate_version(message.params.get("protocolVersion"))
    client_params = {k: v for k, v in message.params.items() if k != "protocolVersion"}
    servers = req.members()
    outcomes = await asyncio.gather(
        *(_initialize_one(req, server, client_params, version) for server in servers), return_exceptions=True
    )
    started: dict[str, InitResult] = {}
    failed: list[tuple[McpServer, BaseException]] = []
    for server, outcome in zip(servers, outcomes, strict=True):
        if isinstance(outcome, InitResult):
            started[server.name] = outcome
        else:
            failed.append((server, outcome))
    for server, exc in failed:
        log.warning("MCP server %s: initialize failed for %s: %s", server.name, req.name, _reason(exc))
    if not started:
        server, exc = failed[0]
        if isinstance(exc, BackendError):
            body = scrub(failure_answer(message.id, exc, server.name), server.secrets)
        else:
            body = error_response(message.id, INTERNAL_ERROR, f"MCP server {server.name} could not be initialized")
        await send_json(req.call, body)
        return
    if req.virtual:
        result = _virtual_result(req.name, version, [server.name for server, _ in failed])
        session_version = version
    else:
        only = started[req.name]
        result, session_version = only.result, only.protocol_version
    codec = req.call.gateway.mcp_sessions
    session = codec.new_session(
        server=req.name,
        subject=req.principal.subject,
        token_id=req.principal.token_id,
        protocol_version=session_version,
        backends={name: BackendSession(init.session_id, init.protocol_version) for name, init in started.items()},
    )
    req.call.ctx.extra["mcp"] = {"method": "initialize", "session_era": "session", "protocol_version": session_version}
    metrics = req.call.gateway.metrics.requests
    if metrics is not None:
        metrics.mcp_session_started(req.name)
    await send_json(req.call, result_response(message.id, result), headers={SESSION_ID_HEADER: codec.encode(session)})


async def _initialize_one(
    req: McpRequest, server: McpServer, client_params: dict[str, object], version: str
) -> InitResult:
    backend, extra = req.backend(server)
    return await backend.initialize(req.http, client_params, version, extra_headers=extra)


def _virtual_result(name: str, version: str, failed: list[str]) -> dict[str, object]:
    """A virtual server's own initialize result: tools only (prompts and resources are phase 2)."""
    result: dict[str, object] = {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": True}},
        "serverInfo": {"name": f"relaygate/{name}", "version": GATEWAY_VERSION},
    }
    if failed:
        result["instructions"] = (
            f"Some MCP servers behind {name} could not be reached and their tools are not offered: " + ", ".join(failed)
        )
    return result


def _reason(exc: BaseException) -> str:
    return exc.reason if isinstance(exc, BackendError) else type(exc).__name__


def open_session(req: McpRequest) -> None:
    """Decode the request's `Mcp-Session-Id` for this server, caller and token (404 otherwise)."""
    token = req.headers.get(SESSION_ID_HEADER)
    if not token:
        raise McpRefused(400, "Bad Request: Mcp-Session-Id header is required")
    try:
        req.session = req.call.gateway.mcp_sessions.decode(
            token, server=req.name, subject=req.principal.subject, token_id=req.principal.token_id
        )
    except SessionRefused as exc:
        log.info("MCP session refused on %s: %s", req.name, exc.reason)
        raise session_not_found() from None


async def end_session(req: McpRequest) -> None:
    """DELETE: end every backend session of the gateway session (best effort), then 204."""
    open_session(req)
    assert req.session is not None
    tasks = []
    for member, backend_session in req.session.backends.items():
        server = req.remote(member)
        if server is None or backend_session.session_id is None:
            continue
        backend, extra = req.backend(server)
        tasks.append(
            backend.delete_session(
                req.http,
                backend_session.session_id,
                protocol_version=backend_session.protocol_version,
                extra_headers=extra,
            )
        )
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, BaseException):
            log.info("MCP server session of %s not ended: %s", req.name, _reason(outcome))
    await send_empty(req.call, 204)


async def get_stream(req: McpRequest) -> None:
    """GET: the server-initiated message stream of a single remote server, relayed (405 on virtual servers)."""
    refusal = check_get_headers(req.headers.get("accept"))
    if refusal is not None:
        raise McpRefused.of(refusal)
    open_session(req)
    assert req.session is not None
    if req.virtual or not isinstance(req.target, McpServer):
        raise McpRefused(
            405, "Method Not Allowed: a virtual MCP server has no GET stream", headers={"allow": "POST, DELETE"}
        )
    server = req.target
    backend_session = req.session.backends.get(server.name)
    if backend_session is None:
        raise session_not_found()
    backend, extra = req.backend(server)
    try:
        stream = await backend.open_get_stream(
            req.http,
            session_id=backend_session.session_id,
            protocol_version=backend_session.protocol_version,
            extra_headers=extra,
            last_event_id=req.headers.get("last-event-id"),
        )
    except BackendError as exc:
        if exc.status == 404:
            raise session_not_found() from None
        status = 405 if exc.status == 405 else 502
        raise McpRefused(
            status,
            f"MCP server {server.name}: {exc.reason}",
            headers={"allow": "POST, DELETE"} if status == 405 else None,
        ) from None
    await relay_events(req.call, stream, server.secrets)
