"""One admin operation: its method, path, handler, required role and OpenAPI description.

The same `Operation` values dispatch requests (router.py) and document them (openapi.py), so the
document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from relaygate.admin.identity import Identity
    from relaygate.admin.params import Query
    from relaygate.admin.session import SessionSigner
    from relaygate.pipeline.call import Call

Access = Literal["none", "user", "viewer", "admin"]
Schema = dict[str, Any]


@dataclass(slots=True)
class AdminRequest:
    """What an admin handler reads: the call, the caller, the query and the parsed JSON body."""

    call: Call
    identity: Identity | None  # None only on operations open to anyone (login, the OpenAPI document)
    query: Query
    body: Any
    signer: SessionSigner

    @property
    def caller(self) -> Identity:
        assert self.identity is not None, "operation declared access 'none'"
        return self.identity


@dataclass(frozen=True, slots=True)
class Reply:
    """A JSON answer other than a plain 200, or with extra headers (`Set-Cookie`)."""

    payload: Any
    status: int = 200
    headers: tuple[tuple[bytes, bytes], ...] = ()


# A handler returns a payload (200 JSON), a `Reply`, or None after sending the answer itself (SSE, CSV).
Handler = Callable[[AdminRequest], Awaitable[Any]]


def param(name: str, description: str, schema: Schema | None = None, *, required: bool = False) -> Schema:
    """An OpenAPI query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


@dataclass(frozen=True, slots=True)
class Operation:
    method: Literal["GET", "POST", "DELETE"]
    path: str  # below /api/admin/v1, e.g. "/tokens"; ids travel in the query or body, never the path
    handler: Handler
    access: Access  # the least role that may call it ("user": any personal token)
    summary: str
    tag: str
    parameters: tuple[Schema, ...] = ()
    request: Schema | None = None  # JSON body schema
    response: Schema = field(default_factory=lambda: {"type": "object"})
    response_type: str = "application/json"  # text/event-stream, text/csv
    writes: bool = False  # state-changing: a cookie-authenticated call needs the CSRF header
    body_limit: int = 64 * 1024  # bytes; 0: sized by the gateway's --max-config-bytes (config bodies)
