"""The gateway's HTTP/1.1 protocol: uvicorn's httptools protocol with limits on request heads and slow clients.

uvicorn's `HttpToolsProtocol` feeds the parser whatever arrives: httptools keeps a header line in memory
until it ends (one unterminated line grew to 124 MiB), and nothing bounds the request line, the header
count or how long a client may take. `GatewayProtocol` adds, before a request reaches the app:

- a head budget: while a request head is incomplete the parser gets at most `max_request_line_bytes +
  max_header_bytes` bytes, so an unterminated line is cut there (431) and per-connection memory stays
  bounded; the request target is counted as it arrives (414), header lines as they end and their bytes once
  the head is complete (431);
- one `Host` line only (400, RFC 9112 section 3.2);
- slow clients: a head not complete within `header_timeout`, a body silent for `body_idle_timeout`, or
  slower than `min_body_rate` bytes/s on average after `min_body_rate_grace` (Kestrel's rule), get 408.
  One timer per connection, armed only while a head or body is incomplete across reads, and checked
  lazily (the body path only records a timestamp), so complete requests pay nothing for it.

Refusals are complete responses (OpenAI-shaped JSON, `x-request-id`, `connection: close`). The connection
then half-closes and discards what the client still sends for `LINGER_SECONDS`, so a client that is still
writing its oversized head reads the answer instead of a connection reset.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, fields
from itertools import chain
from typing import Any, NoReturn

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from relaygate.errors import BadRequest, GatewayError, RequestTimeout
from relaygate.http.types import STOPPING_HOOK
from relaygate.settings import Settings

log = logging.getLogger("relaygate.server")
LINGER_SECONDS = 2.0  # after a refusal: how long what the client still sends is read and dropped
_MIN_TIMER_DELAY = 0.01


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The protocol's limits: the Settings fields of the same names (defaults there); 0 turns a timeout or rate off."""

    max_request_line_bytes: int
    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_idle_timeout: float
    min_body_rate: float
    min_body_rate_grace: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            names = f"--{f.name.replace('_', '-')} (RELAYGATE_{f.name.upper()})"
            if f.type == "int" and not value > 0:
                raise ValueError(f"{names} must be at least 1, got {value}")
            if f.type == "float" and not value >= 0:
                raise ValueError(f"{names} must be 0 (off) or more, got {value}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


def limits_of(config: Config) -> ServerLimits:
    """The limits `relaygate serve` put on its uvicorn config; under plain `uvicorn --http ...`, RELAYGATE_* vars."""
    limits = getattr(config, "relaygate_limits", None)
    if not isinstance(limits, ServerLimits):
        limits = ServerLimits.from_settings(Settings.from_env())
        config.relaygate_limits = limits  # type: ignore[attr-defined]  # once per process, not per connection
    return limits


class _Refused(Exception):
    """Raised inside a parser callback: the parser stops, and `data_received` sends the refusal."""


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head limits, one-Host rule and slow-client timeouts (module doc)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = self.limits = limits_of(config)
        self._max_header_bytes = limits.max_header_bytes
        self._max_headers = limits.max_headers
        self._head_budget = limits.max_request_line_bytes + limits.max_header_bytes + 4
        self._head_room = self._head_budget  # bytes the current head may still use
        self._in_head = True  # no request body being read: between requests or inside a head
        self._head_begun = False  # a request's first byte arrived, its head is not complete yet
        self._host_seen = False
        self._unmetered = False  # set after a request ends: the rest of that read is not charged to the budget
        self._head_unmetered = False  # the current head began in such a read
        self._refusal: tuple[int, GatewayError] | None = None  # decided by a parser callback
        self._refused = False  # answered (or about to be) and closing: further input is dropped
        self._pending: bytes | None = None  # a refusal waiting for responses ahead of it (pipelining)
        self._timer: asyncio.TimerHandle | None = None  # header timeout, body checks, then lingering
        self._body_start = 0.0
        self._body_last = 0.0
        self._body_bytes = 0

    # -- connection ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.limits.header_timeout:
            self._timer = self.loop.call_later(self.limits.header_timeout, self._on_timer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """Graceful shutdown began: also tell the app (its live tails end, so the drain is not held)."""
        hook = self.app_state.get(STOPPING_HOOK)
        if callable(hook):
            hook()
        super().shutdown()

    def data_received(self, data: bytes | memoryview) -> None:
        if self._refused:
            return  # lingering after a refusal
        if self._in_head:
            room = self._head_room - len(data)
            if room < 0:
                self._feed_over_budget(data)
                return
            self._head_room = room
        self._unmetered = False
        self._feed(data)
        if not self._in_head and not self._refused:  # a body continues past this read
            if self._timer is None:
                self._start_body_clock()
            else:
                self._body_last = self.loop.time()
        elif self._timer is None and self._head_begun and self.limits.header_timeout and not self._refused:
            self._timer = self.loop.call_later(self.limits.header_timeout, self._on_timer)

    def _feed_over_budget(self, data: bytes | memoryview) -> None:
        """Feed only what the head may still use; if it is still incomplete then, it is too large."""
        view = memoryview(data)
        room = self._head_room
        self._head_room = 0
        if room:
            self._feed(view[:room])
            if self._refused:
                return
        if self._in_head and self._head_room == 0:  # same head, budget spent (a new head resets it)
            # The request line is within its limit (on_url checks it), so the header lines are not.
            self._refuse(431, self._headers_too_large())
            return
        self.data_received(view[room:])  # the body, or the next request's head (budgeted again)

    def _feed(self, data: bytes | memoryview) -> None:
        """uvicorn's `data_received`, with refusals decided by the callbacks below."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._cancel_timer()
                self._refused = True  # the connection belongs to the WebSocket protocol from here on
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            refusal, self._refusal = self._refusal, None
            if refusal is None:
                refusal = (400, BadRequest("invalid HTTP request", code="invalid_http_request"))
            self._refuse(*refusal)

    # -- parser callbacks (uvicorn's, plus counting) ------------------------------------------------------

    def on_message_begin(self) -> None:
        self._head_begun = True
        self._head_unmetered = self._unmetered
        self._host_seen = False
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self.url += url
        limit = self.limits.max_request_line_bytes
        # request line = method SP target SP HTTP/x.y; "GET" + 2 + 8 is the shortest overhead
        if len(self.url) + 13 > limit and len(self.url) + len(self.parser.get_method()) + 10 > limit:
            self._stop(
                414,
                BadRequest(
                    f"request line longer than {limit} bytes (--max-request-line-bytes)", code="request_line_too_long"
                ),
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's on_header plus the line count and the Host rule. The head budget bounds the bytes a
        # head can hold; their exact sum is checked once, when the head is complete.
        if len(self.headers) >= self._max_headers:  # here, not at the end: 14,000 tiny lines fit the budget
            self._stop(
                431,
                BadRequest(
                    f"more than {self._max_headers} request header lines (--max-headers)", code="too_many_headers"
                ),
            )
        name = name.lower()
        # llhttp keeps trailing OWS, which RFC 9110 section 5.5 excludes from the value.
        value = value.rstrip(b" \t")
        if name == b"host":
            if self._host_seen:
                self._stop(
                    400,
                    BadRequest("more than one Host header line (RFC 9112 section 3.2)", code="duplicate_host_header"),
                )
            self._host_seen = True
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers = self.headers
        # "name: value\r\n" per line, summed only when the head's bytes are unknown (it began in the read that
        # ended the previous request) or may be over the limit
        if (self._head_unmetered or self._head_budget - self._head_room > self._max_header_bytes) and (
            sum(map(len, chain.from_iterable(headers))) + 4 * len(headers) > self._max_header_bytes
        ):
            self._stop(431, self._headers_too_large())
        self._in_head = False
        self._head_begun = False
        self._body_bytes = 0
        if self._timer is not None:
            self._cancel_timer()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)  # the clock is read once per read, in data_received
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_room = self._head_budget
        self._unmetered = True  # a request that begins in the rest of this read is not charged to the budget
        if self._timer is not None:
            self._cancel_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if self._pending is not None and not self.pipeline:  # the responses ahead of a refusal are out
            self.server_state.total_requests += 1
            response, self._pending = self._pending, None
            self._answer_and_linger(response)
            return
        super().on_response_complete()

    def _headers_too_large(self) -> GatewayError:
        return BadRequest(
            f"request header lines larger than {self._max_header_bytes} bytes together (--max-header-bytes)",
            code="request_header_fields_too_large",
        )

    def _stop(self, status: int, error: GatewayError) -> NoReturn:
        self._refusal = (status, error)
        raise _Refused()

    # -- slow clients --------------------------------------------------------------------------------------

    def _start_body_clock(self) -> None:
        now = self.loop.time()
        self._body_start = self._body_last = now
        self._arm_body_timer(now)

    def _arm_body_timer(self, now: float) -> None:
        limits = self.limits
        due = float("inf")
        if limits.body_idle_timeout:
            due = self._body_last + limits.body_idle_timeout
        if limits.min_body_rate:
            # when the average since the start would fall below the rate if nothing more arrived
            due = min(due, self._body_start + max(limits.min_body_rate_grace, self._body_bytes / limits.min_body_rate))
        if due != float("inf"):
            self._timer = self.loop.call_at(max(due, now + _MIN_TIMER_DELAY), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._refused or self.transport.is_closing():
            return
        if self._in_head:
            self._refuse(
                408,
                RequestTimeout(
                    f"request head not complete within {self.limits.header_timeout:g} s (--header-timeout)",
                    code="header_timeout",
                ),
            )
        else:
            self._check_body()

    def _check_body(self) -> None:
        limits = self.limits
        now = self.loop.time()
        cycle = self.cycle
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            # The gateway is not reading (backpressure, a queued pipelined request, no 100 Continue sent
            # yet): the client is not slow, so the measurement starts over.
            self._body_start = self._body_last = now
            self._body_bytes = 0
        elif limits.body_idle_timeout and now - self._body_last >= limits.body_idle_timeout:
            self._refuse(
                408,
                RequestTimeout(
                    f"no request body data for {limits.body_idle_timeout:g} s (--body-idle-timeout)",
                    code="body_idle_timeout",
                ),
            )
            return
        elif (
            limits.min_body_rate
            and self._body_bytes < limits.min_body_rate * (now - self._body_start)
            and (now - self._body_start >= limits.min_body_rate_grace)
        ):
            self._refuse(
                408,
                RequestTimeout(
                    f"request body slower than {limits.min_body_rate:g} bytes/s (--min-body-rate)", code="body_too_slow"
                ),
            )
            return
        self._arm_body_timer(now)

    def _refuse(self, status: int, error: GatewayError) -> None:
        """Answer `status` and close the connection, without overtaking responses still being written."""
        self._refused = True
        self._cancel_timer()
        self._log(status, error.message)
        cycle = self.cycle
        if not self._in_head:
            # Inside this request's body (a body timeout, bad chunked trailers): the app stops reading
            # (receive() says http.disconnect, its sends are dropped). If it already answered, or is
            # queued behind a pipelined request, there is nothing to add: just close.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started or self.pipeline:
                self.transport.close()
                return
        elif (cycle is not None and not cycle.response_complete) or self.pipeline:
            self._pending = self._render(status, error)  # a new head behind responses in flight
            return
        self._answer_and_linger(self._render(status, error))

    def _render(self, status: int, error: GatewayError) -> bytes:
        body = error.body()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"x-request-id: " + os.urandom(12).hex().encode() + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        return b"".join(content)

    def _answer_and_linger(self, response: bytes) -> None:
        self._cancel_timer()
        self._unset_keepalive_if_required()
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(response)
        if transport.can_write_eof():
            transport.write_eof()  # the client reads the answer, then EOF; its own close ends the lingering
            self.flow.resume_reading()
            self._timer = self.loop.call_later(LINGER_SECONDS, transport.close)
        else:
            transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _log(self, status: int, message: str) -> None:
        client = f"{self.client[0]}:{self.client[1]} " if self.client else ""
        log.warning("%srefused with %d: %s", client, status, message)
