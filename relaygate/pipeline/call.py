"""`Call`: one request as every pipeline step sees it, built once by the dispatcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaygate.http.headers import header

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.http.types import RawHeaders, Receive, Scope, Send


class Call:
    """The ASGI triple, the long-lived `Gateway`, the request's context and (once known) its caller.

    Steps take a `Call` instead of a dozen parameters; `header` reads the request's header index,
    built on the first lookup and shared by every step (one pass over the header list per request).
    """

    __slots__ = ("gateway", "scope", "receive", "send", "ctx", "base_headers", "principal", "row")

    def __init__(
        self,
        gateway: Gateway,
        scope: Scope,
        receive: Receive,
        send: Send,
        ctx: RequestContext,
        base_headers: RawHeaders,
    ) -> None:
        self.gateway = gateway
        self.scope = scope
        self.receive = receive
        self.send = send
        self.ctx = ctx
        self.base_headers = base_headers  # sent on every answer of this request (x-request-id)
        self.principal: Principal | None = None  # set by `authenticate`
        # False: a logged route's request that writes no row (MCP traffic other than `tools/call`,
        # counted in the MCP metrics instead).
        self.row = True

    def header(self, name: bytes) -> bytes | None:
        """First value of a request header (`name` lower-case)."""
        return header(self.scope, name)
