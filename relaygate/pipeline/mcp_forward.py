"""Messages the gateway forwards without reading: notifications, client responses, and (on a single
remote server) every method it does not handle itself (prompts, resources, completion), relayed as the
upstream answers."""

from __future__ import annotations

from relaygate.errors import scrub
from relaygate.mcp.http_errors import session_not_found
from relaygate.mcp.jsonrpc import JsonRpcMessage, MessageKind
from relaygate.mcp.upstream import BackendError
from relaygate.pipeline.mcp_answers import failure_answer
from relaygate.pipeline.mcp_reply import relay_events, send_empty, send_json, send_message
from relaygate.pipeline.mcp_request import McpRequest

LOCAL_NOTIFICATIONS = frozenset({"notifications/initialized"})


async def accept(req: McpRequest, message: JsonRpcMessage) -> None:
    """A notification or a client response: forwarded to the backends concerned, then 202."""
    session = req.session
    assert session is not None
    if message.method not in LOCAL_NOTIFICATIONS and (message.kind is MessageKind.NOTIFICATION or not req.virtual):
        for server in req.members():
            backend_session = session.backends.get(server.name)
            if backend_session is None:
                continue
            backend, extra = req.backend(server)
            try:
                await backend.notify(
                    req.http,
                    dict(message.body),
                    session_id=backend_session.session_id,
                    protocol_version=backend_session.protocol_version,
                    extra_headers=req.routed(message.body, extra),
                )
            except BackendError as exc:
                if exc.status == 404:
                    raise session_not_found() from None
    await send_empty(req.call, 202)


async def pass_through(req: McpRequest, message: JsonRpcMessage) -> None:
    """Any other request to a single remote server: forwarded as is, its answer relayed."""
    session = req.session
    assert session is not None and message.id is not None
    server = req.members()[0]
    backend_session = session.backends.get(server.name)
    if backend_session is None:
        raise session_not_found()
    backend, extra = req.backend(server)
    try:
        reply = await backend.request(
            req.http,
            dict(message.body),
            session_id=backend_session.session_id,
            protocol_version=backend_session.protocol_version,
            extra_headers=req.routed(message.body, extra),
        )
    except BackendError as exc:
        if exc.status == 404 and not req.stateless:
            raise session_not_found() from None
        await send_json(req.call, scrub(failure_answer(message.id, exc, server.name), server.secrets))
        return
    if reply.events is not None:
        await relay_events(req.call, reply.events, server.secrets)
    else:
        assert reply.message is not None
        await send_message(req.call, reply.message, server.secrets, reply.raw)
