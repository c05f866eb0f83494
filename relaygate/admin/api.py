"""Every admin operation, in the order the OpenAPI document lists them, and the document itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relaygate.admin import cache, config, guardrails, limits, logs, models, sessions, tokens, usage
from relaygate.admin.openapi import openapi_document
from relaygate.admin.operation import Operation
from relaygate.admin.router import AdminRouter
from relaygate.admin.session import SessionSigner

if TYPE_CHECKING:
    from relaygate.admin.operation import AdminRequest

_FEATURE_OPERATIONS: tuple[Operation, ...] = (
    *sessions.OPERATIONS,
    *tokens.OPERATIONS,
    *logs.OPERATIONS,
    *usage.OPERATIONS,
    *models.OPERATIONS,
    *limits.OPERATIONS,
    *config.OPERATIONS,
    *cache.OPERATIONS,
    *guardrails.OPERATIONS,
)


async def _openapi(request: AdminRequest) -> dict[str, Any]:
    return openapi_document(OPERATIONS)


OPERATIONS: tuple[Operation, ...] = (
    *_FEATURE_OPERATIONS,
    Operation("GET", "/openapi.json", _openapi, "none", "This document (OpenAPI 3.1)", "meta"),
)


def admin_router(session_secret: str | None) -> AdminRouter:
    """The router for one app; sessions signed with `session_secret` (random when None)."""
    return AdminRouter(OPERATIONS, SessionSigner(session_secret))
