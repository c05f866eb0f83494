"""The OpenAPI 3.1 document of the admin API, built from the operation table that serves it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relaygate.admin.router import PREFIX
from relaygate.observe.metrics import build_version

if TYPE_CHECKING:
    from collections.abc import Iterable

    from relaygate.admin.operation import Operation

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": ["string", "null"]},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}
_ERRORS = {
    "400": "Bad input (the message names the parameter)",
    "401": "No valid token or session",
    "403": "The caller's role does not allow this (or a virtual-account token, or a missing CSRF header)",
    "404": "Unknown id or path",
}


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": f"{op.method.lower()}_{op.path.strip('/').replace('/', '_').replace('.', '_') or 'root'}",
        "summary": op.summary,
        "tags": [op.tag],
        "description": f"Needs role: {op.access}." if op.access != "none" else "Open: no token needed.",
        "responses": {
            "200": {"description": "OK", "content": {op.response_type: {"schema": op.response}}},
            **{
                code: {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
                for code, text in _ERRORS.items()
                if op.access != "none" or code in ("400", "404")
            },
        },
    }
    if op.access == "none":
        out["security"] = []
    if op.parameters:
        out["parameters"] = list(op.parameters)
    if op.request is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.request}}}
    return out


def openapi_document(operations: Iterable[Operation]) -> dict[str, Any]:
    """The whole document; served at `/api/admin/v1/openapi.json`."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Relaygate admin API",
            "version": build_version(),
            "description": "Tokens, models, config, request logs, usage and limits of one Relaygate gateway. "
            "Authenticate with a personal Relaygate token (`Authorization: Bearer rg-...`), "
            "RELAYGATE_ADMIN_TOKEN, or the dashboard's session cookie (writes then need `x-relaygate-csrf`). "
            "Errors use the OpenAI error shape.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "relaygate_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }
