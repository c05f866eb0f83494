"""JSON-RPC batches: an array of messages in one POST, which only protocol 2025-03-26 has.

2025-06-18 removed batches and the stateless era never had them, so a batch is served only in a
session of 2025-03-26 (what the request says it speaks, and what the session was opened with);
otherwise it is 400 -32600 naming the version. `initialize` may not be batched (the 2025-03-26
lifecycle), and a batch holds at most `jsonrpc.MAX_BATCH_MESSAGES` (checked when parsed).

Each message is served in turn by the one-message steps (`mcp_dispatch.py`) on a call of its own: its
own context (each `tools/call` is its own log row, with request id `{request id}-{index}`) and a `send`
that collects the step's answer instead of writing it. The batch's answer is the JSON array of the
responses in batch order (a JSON answer as it is, the response out of an SSE answer: its progress
notifications have no place in a JSON array); a batch of notifications and client responses only is
202. A message the gateway refuses (a rate limit, say) gets its JSON-RPC error in the array; a session
a backend forgot fails the whole batch with 404, as it fails one message.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from relaygate.context import RequestContext
from relaygate.errors import GatewayError
from relaygate.mcp.http_errors import McpRefused, error_body
from relaygate.mcp.jsonrpc import JsonRpcMessage, MessageKind, is_response
from relaygate.mcp.protocol import STATELESS_VERSION, batches_allowed, check_session_version, era_of, session_version
from relaygate.mcp.sse_reader import SseReader
from relaygate.pipeline.call import Call
from relaygate.pipeline.finish import finish
from relaygate.pipeline.mcp_dispatch import dispatch
from relaygate.pipeline.mcp_reply import send_empty, send_json
from relaygate.pipeline.mcp_request import McpRequest, time_operation
from relaygate.pipeline.mcp_sessions import open_session

if TYPE_CHECKING:
    from collections.abc import Sequence

    from relaygate.http.types import Message

BATCH = "batch"  # the request's method label while a batch is served (its messages are timed one by one)


async def serve_batch(req: McpRequest, messages: Sequence[JsonRpcMessage]) -> None:
    """Serve a batch in a 2025-03-26 session (else 400), answering the array of its responses."""
    req.method = BATCH
    headers = req.headers
    if any(era_of(message.body, headers) == "stateless" for message in messages):
        raise McpRefused(400, _unsupported(STATELESS_VERSION))
    refusal = check_session_version(headers)
    if refusal is not None:
        raise McpRefused.of(refusal)
    if not batches_allowed(session_version(headers)):
        raise McpRefused(400, _unsupported(session_version(headers)))
    if any(message.method == "initialize" for message in messages):
        raise McpRefused(400, "Invalid Request: initialize may not be part of a JSON-RPC batch")
    open_session(req)
    assert req.session is not None
    if not batches_allowed(req.session.protocol_version):
        raise McpRefused(400, _unsupported(req.session.protocol_version))
    answers: list[bytes] = []
    for index, message in enumerate(messages):
        answered = await _serve_one(req, message, index)
        if answered is None:  # the caller went away
            req.call.ctx.status = 499
            req.call.ctx.error_type = "client_disconnected"
            return
        answers += answered
    if answers:
        await send_json(req.call, b"[" + b",".join(answers) + b"]")
    else:
        await send_empty(req.call, 202)


def _unsupported(version: str) -> str:
    return f"Invalid Request: JSON-RPC batches are not supported in protocol version {version[:40]} (only 2025-03-26)"


async def _serve_one(req: McpRequest, message: JsonRpcMessage, index: int) -> list[bytes] | None:
    """One message on a call of its own: the responses it answered (None: the caller went away)."""
    outer = req.call
    ctx = _context(outer.ctx, index)
    collected = _Collected()
    call = Call(outer.gateway, outer.scope, outer.receive, collected.send, ctx, outer.base_headers)
    call.principal = outer.principal
    call.row = False  # `tools/call` asks for its row
    one = replace(req, call=call, method=message.method or "response")
    started = time.perf_counter()
    try:
        await dispatch(one, message)
    except GatewayError as exc:
        ctx.status, ctx.error_type, ctx.error_message = exc.status, exc.type, exc.message
        if exc.status == 404 and isinstance(exc, McpRefused):  # the session is gone: the client starts over
            raise
        if message.kind is MessageKind.REQUEST:
            collected.failed(error_body(exc, message.id))
    finally:
        if call.row:
            finish(call)
        if message.kind is MessageKind.REQUEST:
            time_operation(call, req.name, message.method or "", started)
    if ctx.status == 499:
        return None
    return collected.responses()


def _context(outer: RequestContext, index: int) -> RequestContext:
    """A context for one message: the request's caller, logging choices and trace, nothing else."""
    return RequestContext(
        f"{outer.request_id}-{index}",
        outer.method,
        outer.path,
        route=outer.route,
        operation=outer.operation,
        subject=outer.subject,
        subjects=outer.subjects,
        team=outer.team,
        token_id=outer.token_id,
        provider=outer.provider,
        model_type=outer.model_type,
        metadata=outer.metadata,
        log_bodies=outer.log_bodies,
        trace_id=outer.trace_id,
        parent=outer.parent,
    )


class _Collected:
    """What one message's step answered, kept instead of sent: a JSON body, or an SSE stream."""

    __slots__ = ("sse", "chunks")

    def __init__(self) -> None:
        self.sse = False
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.sse = any(
                name == b"content-type" and value.startswith(b"text/event-stream") for name, value in message["headers"]
            )
            self.chunks = []
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    def failed(self, body: bytes) -> None:
        """The step was refused: its JSON-RPC error replaces whatever it had answered."""
        self.sse = False
        self.chunks = [body]

    def responses(self) -> list[bytes]:
        """The JSON-RPC responses answered (none for a notification, accepted with an empty 202)."""
        body = b"".join(self.chunks)
        if not body.strip():
            return []
        if not self.sse:
            return [body]
        reader = SseReader()
        events = reader.feed(body)
        reader.finish()
        return [event.data for event in events if event.message is not None and is_response(event.message)]
