"""Loop detection: every upstream request carries this gateway's hop marker in `Via`.

A base URL that leads back to the gateway (directly, through a DNS alias, or through other gateways
and proxies) would otherwise make one request call itself until the request timeout. Each gateway
(one id per `relaygate serve`, shared by its workers) appends `1.1 relaygate-<id>` to the `Via` chain
it received and sends the chain on with every upstream call it makes for that request. A request whose
chain already names this gateway is a loop: 508 before any upstream call, so a loop stops at its second
arrival.

Cheap on purpose: the usual request arrives without `Via`, and its upstream calls carry the session's
default header (`default_headers`, no per-request work). Only a request that arrived with a chain sets
a context variable, per request, with the chain to send on instead (`chained_via`), which the three
places that call upstream (`upstream/relay.send`, the proxy and the resources relay) add: LLM adapters
build fresh headers, so the chain must travel beside them for A -> B -> A to be caught.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relaygate.http.types import Scope

_VIA = b"via"
# `Via` for this request's upstream calls when it arrived with a chain (None: the session default).
_chained: ContextVar[str | None] = ContextVar("relaygate_chained_via", default=None)


class HopMarker:
    """This gateway's `Via` entry: the check on arrival, and the headers that send it on."""

    __slots__ = ("entry", "_token")

    def __init__(self, instance_id: str) -> None:
        self._token = f"relaygate-{instance_id}".encode("latin-1")
        self.entry = f"1.1 relaygate-{instance_id}"

    @property
    def default_headers(self) -> dict[str, str]:
        """For the upstream session: `Via` with this gateway alone (a request that arrived without one)."""
        return {"Via": self.entry}

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
        _chained.set(f"{chain.decode('latin-1')}, {self.entry}")
        return False


def chained_via() -> str | None:
    """The `Via` an upstream call of the current request must carry instead of the session's default:
    the chain it arrived with, then this gateway. None when it arrived without one."""
    return _chained.get()
