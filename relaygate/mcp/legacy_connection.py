"""`LegacyConnection`: one open session with a legacy HTTP+SSE MCP server (MCP 2024-11-05).

The client GETs the server's SSE URL and keeps the stream open; the first event, `endpoint`, names
the URL to POST messages to (checked to be on the same origin: `legacy_http.endpoint_url`). Each
POST is accepted with 202 and its answer comes back as a `message` event on the stream, so the
session IS this connection, held by this process.

Several callers may share one connection concurrently (the requests of one gateway session), and the
gateway itself reuses ids such as `relaygate-list-0`, so each request goes out under a fresh integer
id of this connection's and its answer is given back under the caller's id; a request's
`progressToken` is rewritten the same way, so its progress notifications reach that request's
`Inbox` alone. Everything else the server sends (its own requests and notifications) goes to the
inbox of the session's GET stream when one is open, else it is dropped and counted (`on_drop`); a
server request nobody can answer is answered with an error so the server does not wait for ever.

A background task reads the stream; when the stream ends or breaks, every request in flight fails
with a `BackendError`, the GET stream ends, and `on_closed` tells the owner (`LegacyConnections`) to
forget the connection: the next request opens a new one and initializes the server again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson
from multidict import CIMultiDict

from relaygate.mcp.legacy_events import Inbox, LegacyEventStream
from relaygate.mcp.legacy_http import endpoint_url, status_error
from relaygate.mcp.sse_reader import MalformedSse, SseEvent, SseReader
from relaygate.mcp.upstream import BackendError, network_error
from relaygate.upstream.errors import NETWORK_ERRORS
from relaygate.upstream.session import CONNECT_TIMEOUT_SECONDS
from relaygate.wire_types import JSON

log = logging.getLogger("relaygate.mcp")
ENDPOINT_EVENT = "endpoint"
_TEXT_EVENTS = frozenset({ENDPOINT_EVENT})
NO_CALLER_STREAM = -32603  # the error answering a server request when no caller stream is open


class StreamClosed(BackendError):
    """The connection's stream had already ended: the message was not sent (so sending it again is safe)."""

    def __init__(self) -> None:
        super().__init__(None, "the MCP server's event stream is closed", kind="disconnected")


@dataclass(slots=True)
class _InFlight:
    """A request sent under a wire id: where its answer goes and the caller's own id and token."""

    inbox: Inbox
    request_id: object
    progress_token: object = None
    has_token: bool = False


@dataclass(slots=True)
class ConnectionHooks:
    """What a connection tells its owner: a message it had nowhere to put, and its own end."""

    on_drop: Callable[[JSON], None] = lambda message: None
    on_closed: Callable[[LegacyConnection], None] = lambda connection: None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # answers to server requests in flight


class LegacyConnection:
    """One held SSE stream and its POST endpoint (see the module docstring)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        response: aiohttp.ClientResponse,
        reader: SseReader,
        endpoint: str,
        headers: CIMultiDict[str],
        timeout_s: float,
        hooks: ConnectionHooks,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.last_used = time.monotonic()
        self._session = session
        self._response = response
        self._reader = reader
        self._headers = headers
        self._hooks = hooks
        connect = min(timeout_s, CONNECT_TIMEOUT_SECONDS)
        self._post_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=timeout_s)
        self._ids = itertools.count(1)
        self._in_flight: dict[int, _InFlight] = {}
        self._subscriber: Inbox | None = None
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        session: aiohttp.ClientSession,
        url: str,
        headers: CIMultiDict[str],
        timeout_s: float,
        *,
        max_event_bytes: int,
        hooks: ConnectionHooks | None = None,
    ) -> LegacyConnection:
        """GET the SSE URL and wait (at most `timeout_s`) for its `endpoint` event; then read in the background."""
        get_headers = CIMultiDict(headers)
        get_headers["Accept"] = "text/event-stream"
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout_s, CONNECT_TIMEOUT_SECONDS), sock_read=None
        )
        try:
            response = await session.get(url, headers=get_headers, timeout=timeout, allow_redirects=False)
        except NETWORK_ERRORS as exc:
            raise network_error(exc, "opening the event stream") from None
        if response.status >= 300:
            raise await status_error(response, "event stream request")
        if response.content_type != "text/event-stream":
            response.close()
            raise BackendError(response.status, "the SSE URL did not answer an event stream", kind="content_type")
        reader = SseReader(max_event_bytes, _TEXT_EVENTS)
        try:
            async with asyncio.timeout(timeout_s):
                endpoint, backlog = await _endpoint(response, reader, url)
        except TimeoutError:
            response.close()
            raise BackendError(None, "the MCP server named no message endpoint in time", kind="timeout") from None
        except BaseException:  # a BackendError, or the caller cancelled: the stream is not kept
            response.close()
            raise
        connection = cls(session, response, reader, endpoint, headers, timeout_s, hooks or ConnectionHooks())
        connection._task = asyncio.create_task(connection._read(backlog), name="relaygate-mcp-legacy-sse")
        return connection

    @property
    def alive(self) -> bool:
        return not self._closed

    @property
    def busy(self) -> bool:
        """Whether a request is in flight or a GET stream reads this connection (it is then never idle)."""
        return bool(self._in_flight) or self._subscriber is not None

    async def request(
        self, message: JSON, headers: CIMultiDict[str], then: Callable[[], None] | None = None
    ) -> LegacyEventStream:
        """POST a request under a wire id; its progress and answer arrive on the returned stream.

        `then` runs once the stream is read or closed (a connection opened for one request closes)."""
        wire = next(self._ids)
        in_flight = _InFlight(Inbox(), message.get("id"))
        sent = {**message, "id": wire}
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        if isinstance(params, dict) and isinstance(meta, dict) and "progressToken" in meta:
            in_flight.progress_token, in_flight.has_token = meta["progressToken"], True
            sent["params"] = {**params, "_meta": {**meta, "progressToken": wire}}
        self._in_flight[wire] = in_flight
        try:
            await self.send(sent, headers)
        except BaseException:
            self._forget(wire)
            raise

        def done() -> None:
            self._forget(wire)
            if then is not None:
                then()

        return LegacyEventStream(in_flight.inbox, self.timeout_s, done)

    async def send(self, message: JSON, headers: CIMultiDict[str]) -> None:
        """POST one message to the endpoint (202, any 2xx, is accepted); the answer, if any, comes on the stream."""
        if self._closed:
            raise StreamClosed
        self.last_used = time.monotonic()
        post_headers = CIMultiDict(headers)
        post_headers["Content-Type"] = "application/json"
        # A fresh connection per message: on a kept-alive one, a server that restarted meanwhile shows as
        # "disconnected", which cannot be told from a message that arrived, so it could not be sent again.
        post_headers["Connection"] = "close"
        try:
            response = await self._session.post(
                self.endpoint,
                data=orjson.dumps(message),
                headers=post_headers,
                timeout=self._post_timeout,
                allow_redirects=False,
            )
        except NETWORK_ERRORS as exc:
            raise network_error(exc, "sending a message") from None
        if response.status >= 300:
            raise await status_error(response, "message")
        response.release()

    def cancel_target(self, request_id: object) -> int | None:
        """The wire id of the newest request in flight the caller sent as `request_id` (for its cancellation)."""
        for wire in reversed(self._in_flight):
            if self._in_flight[wire].request_id == request_id:
                return wire
        return None

    def subscribe(self, idle_timeout_s: float | None = None) -> LegacyEventStream:
        """The session's GET stream: server-initiated messages from now on (a newer one replaces it)."""
        if self._subscriber is not None:
            self._subscriber.end()
        inbox = self._subscriber = Inbox()
        self.last_used = time.monotonic()

        def unsubscribe() -> None:
            if self._subscriber is inbox:
                self._subscriber = None
                self.last_used = time.monotonic()

        if self._closed:
            inbox.end()
        return LegacyEventStream(inbox, idle_timeout_s, unsubscribe)

    def close(self, error: BackendError | None = None) -> None:
        """Close the stream (idempotent): requests in flight fail with `error`, the GET stream ends."""
        if self._closed:
            return
        self._closed = True
        failure = error or BackendError(
            None, "the gateway closed its connection to the MCP server", kind="disconnected"
        )
        for in_flight in self._in_flight.values():
            in_flight.inbox.fail(failure)
        self._in_flight.clear()
        if self._subscriber is not None:
            self._subscriber.end()
            self._subscriber = None
        self._response.close()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._hooks.on_closed(self)

    async def aclose(self) -> None:
        """Close, and wait for the reading task to finish."""
        self.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _forget(self, wire: int) -> None:
        self._in_flight.pop(wire, None)
        self.last_used = time.monotonic()

    async def _read(self, backlog: list[SseEvent]) -> None:
        """Sort every event of the stream until it ends; then close with the reason."""
        error: BackendError
        try:
            for event in backlog:
                self._event(event)
            while True:
                chunk = await self._response.content.readany()
                if not chunk:
                    self._reader.finish()
                    error = BackendError(None, "the MCP server closed its event stream", kind="disconnected")
                    break
                for event in self._reader.feed(chunk):
                    self._event(event)
        except NETWORK_ERRORS as exc:
            error = network_error(exc, "reading the event stream")
        except MalformedSse as exc:
            error = BackendError(None, str(exc), kind="malformed")
        self.close(error)

    def _event(self, event: SseEvent) -> None:
        if event.event not in (None, "message") or event.message is None:
            return  # a repeated endpoint, or an event type this transport does not define
        message = event.message
        if "method" not in message:
            self._response_message(message)
        elif not self._progress(message):
            self._server_message(message)

    def _response_message(self, message: JSON) -> None:
        wire = message.get("id")
        in_flight = self._in_flight.pop(wire, None) if type(wire) is int else None
        if in_flight is None:
            self._hooks.on_drop(message)  # a caller that left, or an answer to no request of ours
            return
        in_flight.inbox.answer({**message, "id": in_flight.request_id})

    def _progress(self, message: JSON) -> bool:
        """Route a progress notification to its request by token; False when it is not one of ours."""
        if message.get("method") != "notifications/progress":
            return False
        params = message.get("params")
        token = params.get("progressToken") if isinstance(params, dict) else None
        in_flight = self._in_flight.get(token) if type(token) is int else None
        if in_flight is None or not in_flight.has_token or not isinstance(params, dict):
            return False
        restored = {**message, "params": {**params, "progressToken": in_flight.progress_token}}
        if not in_flight.inbox.put(restored):
            self._hooks.on_drop(message)
        return True

    def _server_message(self, message: JSON) -> None:
        """A message the server sends on its own: to the GET stream, else dropped (a request is refused)."""
        if self._subscriber is not None and self._subscriber.put(message):
            return
        self._hooks.on_drop(message)
        if "id" in message:
            if message.get("method") == "ping":
                answer: JSON = {"jsonrpc": "2.0", "id": message["id"], "result": {}}
            else:
                error = {"code": NO_CALLER_STREAM, "message": "no client stream is open to relay this request to"}
                answer = {"jsonrpc": "2.0", "id": message["id"], "error": error}
            task = asyncio.create_task(self._answer_quietly(answer))
            self._hooks.tasks.add(task)
            task.add_done_callback(self._hooks.tasks.discard)

    async def _answer_quietly(self, answer: JSON) -> None:
        try:
            await self.send(answer, self._headers)
        except BackendError as exc:
            log.debug("MCP legacy SSE: answering a server request failed: %s", exc.reason)


async def _endpoint(response: aiohttp.ClientResponse, reader: SseReader, url: str) -> tuple[str, list[SseEvent]]:
    """The endpoint URL from the stream's first `endpoint` event, and the events that came after it."""
    try:
        while True:
            chunk = await response.content.readany()
            if not chunk:
                raise BackendError(None, "the event stream ended before naming its endpoint", kind="disconnected")
            events = reader.feed(chunk)
            for index, event in enumerate(events):
                if event.event == ENDPOINT_EVENT:
                    return endpoint_url(url, event.data), events[index + 1 :]
    except NETWORK_ERRORS as exc:
        raise network_error(exc, "opening the event stream") from None
    except MalformedSse as exc:
        raise BackendError(None, str(exc), kind="malformed") from None
