"""`Dialect`: what the request pipeline needs to know about one caller-facing wire format.

The attempt loop and the exchange are the same for every dialect; they reach the wire format only
through this object: how a stream is filtered (usage and error events read on the way), what counts as
its first content, how a stream cut after content ends, where usage sits in an answer, and how an error
is rendered before an answer started.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from relaygate.context import Usage
    from relaygate.errors import GatewayError
    from relaygate.http.types import RawHeaders, Send


class SSEFilter(Protocol):
    """Whole events out of upstream bytes, usage and error events noted on the way."""

    usage: Usage
    error: dict[str, object] | None

    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """One caller-facing wire format, as the pipeline uses it."""

    name: str
    new_filter: Callable[[bool, int], SSEFilter]  # (wants_usage, SSE line cap) -> a fresh filter for one attempt
    first_verdict: Callable[[bytes], str | None]  # "content" | "error" | None (all preamble)
    error_event: Callable[[GatewayError], bytes]  # the event that ends a stream failing after content
    read_usage: Callable[[object, Usage], None]  # an answer's `usage` value -> the request's usage
    send_error: Callable[[Send, GatewayError, RawHeaders], Awaitable[None]]  # an error before any answer
