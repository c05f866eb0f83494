"""Loop detection: every upstream request carries this gateway's hop marker in `Via`.

A base URL that leads back to the gateway (directly, through a DNS alias, or through other gateways
and proxies) would otherwise make one request call itself until the request timeout. Each gateway
(one id per `relaygate serve`, shared by its workers) appends `1.1 relaygate-<id>` to the `Via` chain
it received and sends the chain on with every upstream call it makes for that request (LLM adapters
build fresh headers, so the chain travels in a context variable, set per request, read by the
upstream session's middleware). A request whose chain already names this gateway is a loop: 508
before any upstream call, so a loop stops at its second arrival.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import ClientHandlerType, ClientRequest, ClientResponse

    from relaygate.http.types import Scope

_VIA = b"via"
# The `Via` chain the request being served arrived with (None: it had none).
_incoming: ContextVar[str | None] = ContextVar("relaygate_incoming_via", default=None)


class HopMarker:
    """This gateway's `Via` entry, the check on arrival, and the client middleware that sends it on."""

    __slots__ = ("entry", "_token")

    def __init__(self, instance_id: str) -> None:
        self._token = f"relaygate-{instance_id}".encode("latin-1")
        self.entry = f"1.1 relaygate-{instance_id}"

    def arrived(self, scope: Scope) -> bool:
        """Note the request's `Via` chain for its upstream calls; True when it already passed here."""
        chain: bytes | None = None
        for name, value in scope["headers"]:
            if name == _VIA:
                chain = value if chain is None else chain + b", " + value
        if chain is None:
            return False
        if self._token in chain:
            return True
        _incoming.set(chain.decode("latin-1"))
        return False

    async def middleware(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        """Set `Via` on an upstream request: the chain this request arrived with, then this gateway."""
        chain = _incoming.get()
        request.headers["Via"] = f"{chain}, {self.entry}" if chain else self.entry
        return await handler(request)
