"""`LegacySseBackend`: a legacy HTTP+SSE MCP server (2024-11-05) behind the calls `McpBackend` offers.

The gateway speaks Streamable HTTP to its callers whatever the backend speaks; `McpRequest.backend`
picks this class for a server with `transport: sse`, and the pipeline calls it exactly as it calls
`McpBackend`: `initialize`, `request` (an `UpstreamReply` whose events are relayed as they arrive),
`notify`, `delete_session`, `open_get_stream`.

What differs underneath:
- the backend session is a connection this process holds (`LegacyConnection`, in the gateway's
  `LegacyConnections` table), found by the id minted at `initialize` (`legacy_session_id`), which the
  gateway's sealed session token carries to every replica;
- a process that does not hold it (another replica, a restart, a connection the server closed or
  the table let go) opens a new one and initializes the server again, with the session's protocol
  version and the client's params recorded in the id, then serves the request: callers never see it;
- a POST the server refuses with 404 (it restarted and forgot the session), or one that could not be
  sent, is retried once on a new connection; a POST that may have been delivered never is;
- every request is answered as an event stream (progress first, the response last, keep-alives from
  the relay meanwhile); `timeout_s` is the server's inactivity timeout, as for `McpBackend`;
- notifications reach only a connection this process holds (a new connection has nothing to hear),
  and the stateless 2026-07-28 era gets a connection for its one request, closed after it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict

from relaygate.mcp import legacy_session_id
from relaygate.mcp.legacy_connection import ConnectionHooks, LegacyConnection, StreamClosed
from relaygate.mcp.legacy_http import legacy_headers
from relaygate.mcp.legacy_pool import Key, LegacyConnections, Opener
from relaygate.mcp.protocol import negotiate_version
from relaygate.mcp.sse_reader import DEFAULT_MAX_EVENT_BYTES
from relaygate.mcp.upstream import INITIALIZE_ID, BackendError, InitResult, SseEventStream, UpstreamReply
from relaygate.wire_types import JSON

log = logging.getLogger("relaygate.mcp")
_ENVELOPE_PREFIX = "io.modelcontextprotocol/"
_META_CAPABILITIES = _ENVELOPE_PREFIX + "clientCapabilities"
_META_CLIENT_INFO = _ENVELOPE_PREFIX + "clientInfo"


class LegacySseBackend:
    """One legacy HTTP+SSE server: its name, SSE URL, `auth_data` headers and inactivity timeout."""

    __slots__ = ("name", "url", "timeout_s", "max_message_bytes", "_static", "_pool")

    def __init__(
        self,
        name: str,
        url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        pool: LegacyConnections,
        *,
        max_message_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.name = name
        self.url = url
        self.timeout_s = timeout_s
        self.max_message_bytes = max_message_bytes
        self._static = dict(headers)
        self._pool = pool

    async def initialize(
        self,
        session: aiohttp.ClientSession,
        client_params: Mapping[str, object],
        protocol_version: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
    ) -> InitResult:
        """Open a connection and initialize the server on it; the session id names that connection."""
        connection_id = legacy_session_id.new_connection_id()
        headers = legacy_headers(self._static, extra_headers)
        answers: list[tuple[JSON, str]] = []
        await self._pool.connection(
            (self.name, connection_id), self._opener(session, headers, client_params, protocol_version, answers)
        )
        result, version = answers[0]
        return InitResult(result, legacy_session_id.encode(connection_id, client_params), version)

    async def request(
        self,
        session: aiohttp.ClientSession,
        message: JSON,
        *,
        session_id: str | None,
        protocol_version: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> UpstreamReply:
        """Send one request on the session's connection (opened again if needed); its answer as events."""
        headers = legacy_headers(self._static, extra_headers)
        if session_id is None:
            return await self._one_off(session, message, protocol_version, headers)
        key, params = self._key(session_id)
        opener = self._opener(session, headers, params, protocol_version)
        connection = await self._pool.connection(key, opener)
        try:
            events = await connection.request(message, headers)
        except BackendError as exc:
            if not _not_delivered(exc):
                raise
            log.info("MCP server %s: legacy SSE session lost (%s); opening it again", self.name, exc.reason)
            self._pool.close(key, connection)
            connection = await self._pool.connection(key, opener)
            events = await connection.request(message, headers)
        return UpstreamReply(200, events=events)

    async def notify(
        self,
        session: aiohttp.ClientSession,
        message: JSON,
        *,
        session_id: str | None,
        protocol_version: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        """POST a notification or a client response on the connection this process holds (else nothing)."""
        if session_id is None:
            return
        key, _ = self._key(session_id)
        connection = self._pool.held(key)
        if connection is None:
            log.debug("MCP server %s: %s not sent: no legacy SSE connection here", self.name, message.get("method"))
            return
        sent = _cancellation(connection, message)
        if sent is None:
            return
        try:
            await connection.send(sent, legacy_headers(self._static, extra_headers))
        except BackendError as exc:
            if not _not_delivered(exc):
                raise
            self._pool.close(key, connection)  # the server forgot the session: the next request starts over

    async def delete_session(
        self,
        session: aiohttp.ClientSession,
        session_id: str,
        *,
        protocol_version: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> bool:
        """Close the session's connection if this process holds it (the legacy transport has no DELETE)."""
        try:
            key, _ = self._key(session_id)
        except BackendError:
            return False
        return self._pool.close(key)

    async def open_get_stream(
        self,
        session: aiohttp.ClientSession,
        *,
        session_id: str | None,
        protocol_version: str,
        extra_headers: Mapping[str, str] | None = None,
        last_event_id: str | None = None,
        idle_timeout_s: float | None = None,
    ) -> SseEventStream:
        """The session's server-initiated messages from now on (no replay: the transport has no event ids)."""
        if session_id is None:
            raise BackendError(405, "a stateless request has no GET stream", kind="http_status")
        headers = legacy_headers(self._static, extra_headers)
        key, params = self._key(session_id)
        connection = await self._pool.connection(key, self._opener(session, headers, params, protocol_version))
        return connection.subscribe(idle_timeout_s)

    def _key(self, session_id: str) -> tuple[Key, JSON]:
        """The table key of a session and its client params; a 404 (initialize again) for a foreign id."""
        try:
            connection_id, params = legacy_session_id.decode(session_id)
        except legacy_session_id.NotLegacy:
            raise BackendError(404, "the session was not opened over the legacy SSE transport", kind="http_status")
        return (self.name, connection_id), params

    def _opener(
        self,
        session: aiohttp.ClientSession,
        headers: CIMultiDict[str],
        client_params: Mapping[str, object],
        protocol_version: str,
        answers: list[tuple[JSON, str]] | None = None,
    ) -> Opener:
        """How to open a connection for the pool: GET the stream, then initialize (its answer kept in `answers`)."""

        async def start(hooks: ConnectionHooks) -> LegacyConnection:
            connection = await self._open(session, headers, hooks)
            try:
                answer = await _handshake(connection, headers, client_params, protocol_version)
            except BaseException:
                connection.close()
                raise
            if answers is None:
                log.info("MCP server %s: legacy SSE session initialized again on this process", self.name)
            else:
                answers.append(answer)
            return connection

        return start

    async def _open(
        self, session: aiohttp.ClientSession, headers: CIMultiDict[str], hooks: ConnectionHooks | None = None
    ) -> LegacyConnection:
        return await LegacyConnection.open(
            session, self.url, headers, self.timeout_s, max_event_bytes=self.max_message_bytes, hooks=hooks
        )

    async def _one_off(
        self, session: aiohttp.ClientSession, message: JSON, protocol_version: str, headers: CIMultiDict[str]
    ) -> UpstreamReply:
        """A stateless-era request: a connection of its own, initialized with the client's `_meta`, closed after.

        A legacy server speaks the session era only: it is asked for the latest session-era version,
        and the request goes without the 2026-07-28 envelope (`io.modelcontextprotocol/*` in `_meta`),
        which a dual-era server refuses on a session it initialized."""
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        client_params = {
            "capabilities": meta.get(_META_CAPABILITIES) or {},
            "clientInfo": meta.get(_META_CLIENT_INFO) or dict(legacy_session_id.DEFAULT_CLIENT_INFO),
        }
        if isinstance(params, dict) and meta:
            kept = {key: value for key, value in meta.items() if not key.startswith(_ENVELOPE_PREFIX)}
            rest = {key: value for key, value in params.items() if key != "_meta"}
            message = {**message, "params": {**rest, "_meta": kept} if kept else rest}
        connection = await self._open(session, headers)
        try:
            await _handshake(connection, headers, client_params, negotiate_version(protocol_version))
            events = await connection.request(message, headers, then=connection.close)
        except BaseException:
            connection.close()
            raise
        return UpstreamReply(200, events=events)


async def _handshake(
    connection: LegacyConnection, headers: CIMultiDict[str], client_params: Mapping[str, object], version: str
) -> tuple[JSON, str]:
    """`initialize` asking for `version`, then `notifications/initialized`: (the result, the version agreed)."""
    params = {**client_params, "protocolVersion": version}
    request: JSON = {"jsonrpc": "2.0", "id": INITIALIZE_ID, "method": "initialize", "params": params}
    answer: JSON | None = None
    async with await connection.request(request, headers) as events:
        async for event in events:
            if event.message is not None and "method" not in event.message:
                answer = event.message
    if answer is None:
        raise BackendError(None, "the event stream ended without the initialize answer", kind="malformed")
    if "error" in answer:
        raise BackendError(None, "the server refused initialize", kind="rpc_error", message=answer)
    result = answer.get("result")
    agreed = result.get("protocolVersion") if isinstance(result, dict) else None
    if not isinstance(result, dict) or not isinstance(agreed, str) or not 0 < len(agreed) <= 64:
        raise BackendError(None, "the initialize answer has no result with a protocolVersion", kind="malformed")
    await connection.send({"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
    return result, agreed


def _not_delivered(exc: BackendError) -> bool:
    """Whether a failed POST certainly did not reach the session: sending it again is safe."""
    return isinstance(exc, StreamClosed) or exc.status == 404 or exc.kind == "connect"


def _cancellation(connection: LegacyConnection, message: JSON) -> JSON | None:
    """`notifications/cancelled` names the caller's request id: sent under its wire id (None: not in flight here)."""
    if message.get("method") != "notifications/cancelled":
        return message
    params = message.get("params")
    wire = connection.cancel_target(params.get("requestId")) if isinstance(params, dict) else None
    if wire is None or not isinstance(params, dict):
        return None
    return {**message, "params": {**params, "requestId": wire}}
