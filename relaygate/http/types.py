"""The ASGI contract the gateway speaks, in one place (no framework on the hot path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

# Key of the lifespan state (`scope["state"]`) under which the app leaves a callable the server
# protocol calls when a graceful shutdown begins: long-lived answers (the admin API's live tail)
# end then instead of holding the drain until its deadline.
STOPPING_HOOK = "relaygate.stopping"
