"""`McpBackend`: the gateway as a Streamable HTTP client of one upstream MCP server, on its own aiohttp session.

The MCP gateway speaks to each backend itself rather than through the SDK's session-scoped client:
headers are chosen per call (per-user credentials from `x-tfy-mcp-headers`, python-sdk #1509), the
session id lives in the gateway's own encrypted token rather than in a client object, and an SSE
answer must be relayed event by event as it arrives, not collected. So this module is a thin
transport: it sends one JSON-RPC message, says how the server answered (one JSON message, or a
stream of events) and turns every way that can fail into one typed `BackendError`.

Transport rules (MCP 2025-11-25 `basic/transports`; the 2026-07-28 era rides on the same calls with
its `Mcp-Method`/`Mcp-Name` headers passed in `extra_headers`):
- every POST carries `Accept: application/json, text/event-stream` and `Content-Type: application/json`;
  after initialization every request carries `MCP-Protocol-Version` and, when the server gave one,
  `Mcp-Session-Id`;
- headers: `extra_headers` (per call) < the backend's static `headers` (`auth_data` wins) < the
  transport headers above; connection-level names are never sent from either;
- `timeout_s` bounds each wait for the server (connecting, the answer's headers, every read of its
  body): a long tool call that keeps streaming is never cut, a silent one is. GET streams have no
  read timeout by default (server-initiated messages may be hours apart);
- redirects are not followed (a redirect could carry the backend's credentials to another host).

Errors never quote a header value or the URL (a server may take its key in the query string).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

import aiohttp
import orjson
from multidict import CIMultiDict

from relaygate.mcp.sse_reader import DEFAULT_MAX_EVENT_BYTES, MalformedSse, SseEvent, SseReader
from relaygate.upstream.errors import CONNECT, MALFORMED, NETWORK_ERRORS, TIMEOUT, failure_kind
from relaygate.upstream.session import CONNECT_TIMEOUT_SECONDS
from relaygate.wire_types import JSON

ACCEPT_BOTH = "application/json, text/event-stream"
SESSION_HEADER = "Mcp-Session-Id"
PROTOCOL_HEADER = "MCP-Protocol-Version"
INITIALIZE_ID = "relaygate-initialize"  # the id of the gateway's own initialize request to a backend
MAX_SESSION_ID_CHARS = 1024  # it travels inside the gateway's session token: a huge one is refused
MAX_ERROR_BODY_BYTES = 64 << 10  # how much of an HTTP error's body is read for its JSON-RPC error

# Set by aiohttp for the connection, or by this module for the transport: never taken from a caller.
_NEVER_SENT = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "accept",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    }
)

Failure = Literal["connect", "timeout", "disconnected", "http_status", "content_type", "malformed", "rpc_error"]


class BackendError(Exception):
    """A backend exchange that failed: `status` is the HTTP status when the server answered one, else None.

    `kind` says what happened (the gateway maps it to a JSON-RPC error for its client, and a 404
    `http_status` on a session means "initialize again"). `message` is the server's JSON-RPC message
    when it answered an error status with one (the 2026-07-28 era answers `-32601` with 404 and
    `-32020` with 400, which the gateway may pass on). `reason` never quotes headers or the URL.
    """

    def __init__(self, status: int | None, reason: str, *, kind: Failure, message: JSON | None = None) -> None:
        super().__init__(reason if status is None else f"{reason} (HTTP {status})")
        self.status = status
        self.reason = reason
        self.kind: Failure = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class InitResult:
    """A backend's answer to `initialize`: its result, its session id (None: sessionless) and the version."""

    result: JSON
    session_id: str | None
    protocol_version: str


class SseEventStream:
    """An SSE answer, event by event as the server sends it; the connection is released at its end.

    Iterate it (`async for event in stream`), or leave early with `aclose()` (which closes the
    connection: in the 2026-07-28 era that is how a request is cancelled). Each read waits at most
    the backend's `timeout_s` for more bytes (none: GET streams), never a total.
    """

    __slots__ = ("_response", "_reader", "_pending", "_done")

    def __init__(self, response: aiohttp.ClientResponse, max_event_bytes: int) -> None:
        self._response = response
        self._reader = SseReader(max_event_bytes)
        self._pending: list[SseEvent] = []
        self._done = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SseEvent:
        while not self._pending:
            if self._done:
                raise StopAsyncIteration
            chunk = await self._read()
            if not chunk:
                self._done = True
                self._response.release()
                self._finish()
                raise StopAsyncIteration
            self._pending = self._feed(chunk)
            self._pending.reverse()  # popped from the end, in arrival order
        return self._pending.pop()

    async def _read(self) -> bytes:
        try:
            return await self._response.content.readany()
        except NETWORK_ERRORS as exc:
            await self.aclose()
            raise network_error(exc, "reading the event stream") from None

    def _feed(self, chunk: bytes) -> list[SseEvent]:
        try:
            return self._reader.feed(chunk)
        except MalformedSse as exc:
            self._close()
            raise BackendError(None, str(exc), kind="malformed") from None

    def _finish(self) -> None:
        try:
            self._reader.finish()
        except MalformedSse as exc:
            raise BackendError(None, str(exc), kind="malformed") from None

    def _close(self) -> None:
        self._done = True
        self._pending = []
        self._response.close()

    async def aclose(self) -> None:
        """Stop reading and close the connection (idempotent; after the end it does nothing)."""
        if not self._done:
            self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@dataclass(slots=True)
class UpstreamReply:
    """How a backend answered a request: one JSON-RPC `message`, or `events` to relay as they arrive.

    Exactly one of the two is set. An event stream must be consumed to its end or closed (`aclose`,
    or `async with reply:`), or its connection stays open.
    """

    status: int
    message: JSON | None = None
    events: SseEventStream | None = None
    raw: bytes | None = None  # the JSON answer's bytes as they came (relayed as is when nothing changes it)

    async def aclose(self) -> None:
        """Release an event stream still open (nothing to do for a JSON answer)."""
        if self.events is not None:
            await self.events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class McpBackend:
    """One upstream MCP server (Streamable HTTP): its URL, its static headers and its inactivity timeout.

    Holds no connection and no session: the gateway's pooled `aiohttp.ClientSession` is passed to
    each call, and the backend's session id travels in the gateway's own session token, so one
    `McpBackend` serves every caller and replica.
    """

    __slots__ = ("url", "timeout_s", "max_message_bytes", "_static", "_post_timeout", "_get_timeout")

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        *,
        max_message_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.max_message_bytes = max_message_bytes
        self._static = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _NEVER_SENT)
        connect = min(timeout_s, CONNECT_TIMEOUT_SECONDS)
        self._post_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=timeout_s)
        self._get_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=None)

    async def initialize(
        self,
        session: aiohttp.ClientSession,
        client_params: Mapping[str, object],
        protocol_version: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
    ) -> InitResult:
        """The handshake: `initialize` asking for `protocol_version`, then `notifications/initialized`.

        `client_params` are the client's initialize params (capabilities, clientInfo); its
        `protocolVersion` is replaced by `protocol_version`. A JSON-RPC error answer raises
        `BackendError(kind="rpc_error")` with the server's message.
        """
        params = {**client_params, "protocolVersion": protocol_version}
        request: JSON = {"jsonrpc": "2.0", "id": INITIALIZE_ID, "method": "initialize", "params": params}
        headers = self._headers(extra_headers, session_id=None, protocol_version=None)
        response = await self._send(session, "POST", request, headers, self._post_timeout)
        session_id = _session_id(response)
        reply = await self._reply(response)
        answer = reply.message if reply.events is None else await _answer_in(reply.events, INITIALIZE_ID)
        result = _init_result(answer)
        version = result.get("protocolVersion")
        if not isinstance(version, str) or not _visible_ascii(version, 64):
            raise BackendError(None, "the initialize result has no valid protocolVersion", kind="malformed")
        initialized: JSON = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        try:
            await self.notify(
                session, initialized, session_id=session_id, protocol_version=version, extra_headers=extra_headers
            )
        except BackendError:
            if session_id is not None:  # a half-open session is ended rather than left to expire
                with contextlib.suppress(BackendError):
                    await self.delete_session(
                        session, session_id, protocol_version=version, extra_headers=extra_headers
                    )
            raise
        return InitResult(result, session_id, version)

    async def request(
        self,
        session: aiohttp.ClientSession,
        message: JSON,
        *,
        session_id: str | None,
        protocol_version: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> UpstreamReply:
        """POST one JSON-RPC request; the reply is its JSON answer or its event stream (not yet read)."""
        headers = self._headers(extra_headers, session_id=session_id, protocol_version=protocol_version)
        response = await self._send(session, "POST", message, headers, self._post_timeout)
        return await self._reply(response)

    async def notify(
        self,
        session: aiohttp.ClientSession,
        message: JSON,
        *,
        session_id: str | None,
        protocol_version: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        """POST a message that gets no answer (a notification, or the client's response to a server
        request): the server accepts it with 202 (any 2xx is taken as accepted)."""
        headers = self._headers(extra_headers, session_id=session_id, protocol_version=protocol_version)
        response = await self._send(session, "POST", message, headers, self._post_timeout)
        if response.status >= 300:
            raise await _status_error(response)
        response.release()

    async def delete_session(
        self,
        session: aiohttp.ClientSession,
        session_id: str,
        *,
        protocol_version: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> bool:
        """End a backend session (`DELETE`). False when there was nothing to end: the server no longer
        knows the session (404) or does not let clients end sessions (405). Other failures raise."""
        headers = self._headers(extra_headers, session_id=session_id, protocol_version=protocol_version)
        del headers["Content-Type"]
        response = await self._send(session, "DELETE", None, headers, self._post_timeout)
        if response.status in (404, 405):
            response.release()
            return False
        if response.status >= 300:
            raise await _status_error(response)
        response.release()
        return True

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
        """Open the GET stream of server-initiated messages (resumed after `last_event_id` if given).

        No read timeout unless `idle_timeout_s` is given. A server without one answers 405, raised
        as `BackendError(405, ..., kind="http_status")`.
        """
        headers = self._headers(extra_headers, session_id=session_id, protocol_version=protocol_version)
        headers["Accept"] = "text/event-stream"
        del headers["Content-Type"]
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = self._get_timeout
        if idle_timeout_s is not None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout.sock_connect, sock_read=idle_timeout_s)
        response = await self._send(session, "GET", None, headers, timeout)
        if response.status >= 300:
            raise await _status_error(response)
        if response.content_type != "text/event-stream":
            response.close()
            raise BackendError(response.status, "the GET stream is not text/event-stream", kind="content_type")
        return SseEventStream(response, self.max_message_bytes)

    def _headers(
        self, extra: Mapping[str, str] | None, *, session_id: str | None, protocol_version: str | None
    ) -> CIMultiDict[str]:
        """Per-call headers < static headers < transport headers (case-insensitive: one value per name)."""
        headers: CIMultiDict[str] = CIMultiDict()
        if extra:
            headers.extend((k, v) for k, v in extra.items() if k.lower() not in _NEVER_SENT)
            headers.update(self._static)
        else:
            headers.extend(self._static)
        headers["Accept"] = ACCEPT_BOTH
        headers["Content-Type"] = "application/json"
        if protocol_version is not None:
            headers[PROTOCOL_HEADER] = protocol_version
        if session_id is not None:
            headers[SESSION_HEADER] = session_id
        return headers

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        message: JSON | None,
        headers: CIMultiDict[str],
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """One HTTP exchange up to the answer's headers; network failures become `BackendError`."""
        body = None if message is None else orjson.dumps(message)
        try:
            return await session.request(
                method, self.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
        except NETWORK_ERRORS as exc:
            raise network_error(exc, "sending the request") from None

    async def _reply(self, response: aiohttp.ClientResponse) -> UpstreamReply:
        """The answer to a request: one JSON message, or the event stream (checked, not yet read)."""
        if response.status >= 300:
            raise await _status_error(response)
        content_type = response.content_type
        if content_type == "text/event-stream":
            return UpstreamReply(response.status, events=SseEventStream(response, self.max_message_bytes))
        if content_type != "application/json":
            response.close()
            raise BackendError(response.status, "the answer is neither JSON nor an event stream", kind="content_type")
        if response.status == 202 or response.content_length == 0:
            response.release()
            raise BackendError(response.status, "the server accepted a request without answering it", kind="malformed")
        body = await _read_capped(response, self.max_message_bytes)
        return UpstreamReply(response.status, message=_json_message(body), raw=body)


async def _answer_in(events: SseEventStream, request_id: str) -> JSON:
    """The response to `request_id` in an event stream (what comes before it is not the gateway's to relay)."""
    async with events:
        async for event in events:
            message = event.message
            if message is not None and message.get("id") == request_id and ("result" in message or "error" in message):
                return message
    raise BackendError(None, "the event stream ended without the answer", kind="malformed")


def _init_result(answer: JSON | None) -> JSON:
    """The `result` of an initialize answer; a JSON-RPC error (or anything else) raises."""
    assert answer is not None  # a JSON reply always has its message
    if "error" in answer:
        error = answer["error"]
        code = error.get("code") if isinstance(error, dict) else None
        reason = (
            f"the server refused initialize (JSON-RPC error {code})"
            if isinstance(code, int)
            else ("the server refused initialize")
        )
        raise BackendError(None, reason, kind="rpc_error", message=answer)
    result = answer.get("result")
    if not isinstance(result, dict):
        raise BackendError(None, "the initialize answer has no result object", kind="malformed")
    return result


def _session_id(response: aiohttp.ClientResponse) -> str | None:
    """The backend's `Mcp-Session-Id`: visible ASCII only (the spec's rule), and bounded in length."""
    value = response.headers.get(SESSION_HEADER)
    if value is None:
        return None
    if not _visible_ascii(value, MAX_SESSION_ID_CHARS):
        response.close()
        raise BackendError(
            response.status, "the server's session id is not visible ASCII or too long", kind="malformed"
        )
    return value


def _visible_ascii(value: str, max_chars: int) -> bool:
    return 0 < len(value) <= max_chars and all("!" <= c <= "~" for c in value)


def _json_message(body: bytes) -> JSON:
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BackendError(None, "the answer is not valid JSON", kind="malformed") from None
    if not isinstance(message, dict):
        raise BackendError(None, "the answer is not a JSON-RPC message (a JSON object)", kind="malformed")
    return message


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The whole body, refused once it is longer than `cap` (the connection is then closed)."""
    if response.content_length is not None and response.content_length > cap:
        response.close()
        raise BackendError(None, f"the answer is longer than {cap} bytes", kind="malformed")
    chunks: list[bytes] = []
    size = 0
    try:
        if response.content_length is not None and "Content-Encoding" not in response.headers:
            body = await response.read()  # within the cap (above), and no more than Content-Length
            response.release()
            return body
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > cap:
                response.close()
                raise BackendError(None, f"the answer is longer than {cap} bytes", kind="malformed")
            chunks.append(chunk)
    except NETWORK_ERRORS as exc:
        response.close()
        raise network_error(exc, "reading the answer") from None
    response.release()
    return b"".join(chunks)


async def error_message(response: aiohttp.ClientResponse) -> JSON | None:
    """The JSON-RPC message an error status carries (None: none, or not JSON, or too long); the
    connection is closed either way."""
    message: JSON | None = None
    if response.content_type == "application/json":
        try:
            parsed = orjson.loads(await _read_capped(response, MAX_ERROR_BODY_BYTES))
            message = parsed if isinstance(parsed, dict) else None
        except (BackendError, orjson.JSONDecodeError):
            message = None
    response.close()
    return message


async def _status_error(response: aiohttp.ClientResponse) -> BackendError:
    """An error status (or a redirect): a `BackendError` with the server's JSON-RPC message if it sent one."""
    status = response.status
    message = await error_message(response)
    reason = "the server redirected the request" if 300 <= status < 400 else "the server answered an error status"
    return BackendError(status, reason, kind="http_status", message=message)


def network_error(exc: BaseException, doing: str) -> BackendError:
    """What aiohttp (or the OS) raised, as a `BackendError` naming the exception's class only."""
    kind = failure_kind(exc)
    name = type(exc).__name__
    if kind == TIMEOUT:
        return BackendError(None, f"the MCP server sent nothing for too long while {doing}", kind="timeout")
    if kind == CONNECT:
        return BackendError(None, f"could not connect to the MCP server ({name})", kind="connect")
    if kind == MALFORMED:
        return BackendError(None, f"the MCP server sent malformed HTTP while {doing} ({name})", kind="malformed")
    return BackendError(None, f"the connection to the MCP server broke while {doing} ({name})", kind="disconnected")
