"""The backend session id the gateway records for a legacy HTTP+SSE server: its key, and how to start over.

A legacy server issues no session id the gateway could keep (its session is the open connection), so
at `initialize` the gateway mints one: `l1.{connection id}.{client params}`. It travels sealed in the
gateway's own session token like any backend's id, so every replica reads the same one:
- the connection id (random, 128 bits) keys the process's table of open connections
  (`legacy_pool.LegacyConnections`), one per (gateway session, server);
- the client params are what the client said at `initialize` (its capabilities and clientInfo, as
  base64url JSON, at most `MAX_PARAMS_BYTES`: clientInfo, then capabilities, are left out of a larger
  one), so a replica that must initialize the server again does so as the client did, as far as known.
The id is visible ASCII, as the session codec requires, and stays well under its length cap.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from relaygate.wire_types import JSON

PREFIX = "l1"
MAX_PARAMS_BYTES = 256  # a virtual server with several legacy members carries one id per member
DEFAULT_CLIENT_INFO: JSON = {"name": "relaygate", "version": "0"}
_CONNECTION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class NotLegacy(ValueError):
    """The id was not minted for a legacy server (the server's transport changed since the session began)."""


def new_connection_id() -> str:
    return secrets.token_urlsafe(16)


def encode(connection_id: str, client_params: Mapping[str, object]) -> str:
    """The backend session id of a new legacy session."""
    return f"{PREFIX}.{connection_id}.{_packed(client_params)}"


def decode(session_id: str) -> tuple[str, JSON]:
    """(connection id, client params to initialize again with); `NotLegacy` when it is not such an id."""
    prefix, _, rest = session_id.partition(".")
    connection_id, _, packed = rest.partition(".")
    if prefix != PREFIX or not _CONNECTION_ID.fullmatch(connection_id):
        raise NotLegacy("not a legacy SSE session id")
    return connection_id, _unpacked(packed)


def _packed(client_params: Mapping[str, object]) -> str:
    known: dict[str, Any] = {
        key: client_params[key] for key in ("capabilities", "clientInfo") if isinstance(client_params.get(key), dict)
    }
    data = orjson.dumps(known)
    for drop in ("clientInfo", "capabilities"):
        if len(data) <= MAX_PARAMS_BYTES:
            break
        known.pop(drop, None)
        data = orjson.dumps(known)
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unpacked(packed: str) -> JSON:
    """The params an id carries, completed to what `initialize` needs (capabilities and clientInfo)."""
    params: JSON = {}
    if packed and len(packed) <= 2 * MAX_PARAMS_BYTES:
        try:
            value = orjson.loads(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
        except (binascii.Error, ValueError):
            value = None
        if isinstance(value, dict):
            params = value
    if not isinstance(params.get("capabilities"), dict):
        params["capabilities"] = {}
    if not isinstance(params.get("clientInfo"), dict):
        params["clientInfo"] = dict(DEFAULT_CLIENT_INFO)
    return params
