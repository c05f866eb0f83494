"""Credential text for adapters' load-time `configure` hooks, without importing the config schema.

`configure(account, auth)` is handed the validated `auth_data`; its secret fields are `SecretStr`s
(or plain text in tests), read by duck typing so `providers/` never imports `relaygate.config`.
"""

from __future__ import annotations

from typing import Any


def secret_value(value: Any) -> str:
    """The plain text of a credential field (`SecretStr` or an already plain string)."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
