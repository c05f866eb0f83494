"""Manifests and diff text made safe to show: every credential masked, by schema and by value.

Two independent nets, so a credential in a place the schema does not know still never shows:
- by schema: every value under `auth_data` (except `type` and `region`, which name rather than prove),
  every credential field (`credentials.SECRET_FIELDS`) wherever it appears, header values whose name
  marks a credential (`credentials.CREDENTIAL_HEADER`, also in `headers_override.set`), and the
  `value` of ai-gateway `api_keys`. A value that is purely a secret reference (`${NAME}`,
  `tfy-secret://...`) stays readable: it names where the secret lives, not the secret.
- by value: every string containing a known secret (a value resolved from the environment, or a
  compiled credential of a target, custom endpoint or ai-gateway provider) has it replaced by `***`.

Shown manifests are also made JSON-safe (YAML dates as ISO text, sets as lists, bytes masked).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from relaygate.config.credentials import CREDENTIAL_HEADER, SECRET_FIELDS, TFY_SECRET_PREFIX

if TYPE_CHECKING:
    from relaygate.runtime.snapshot import Snapshot

MASK = "***"
MIN_SCANNED = 4  # shorter values would mask ordinary words and digits (the loader scrubs the same way)
_PURE_REFERENCE = re.compile(r"^(\$\{[^}]*\})+$")
_VISIBLE_IN_AUTH = frozenset({"type", "region"})


def _reference_only(value: str) -> bool:
    stripped = value.strip()
    return bool(_PURE_REFERENCE.match(stripped)) or stripped.startswith(TFY_SECRET_PREFIX)


class Masker:
    """Masks manifests and text against one set of known secret values (longest first)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= MIN_SCANNED}, key=len, reverse=True))

    def text(self, value: str) -> str:
        """`value` with every known secret replaced by `***`."""
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def manifest(self, data: Any) -> Any:
        """A manifest (as written) with credentials masked by schema and by value; JSON-safe."""
        return self._walk(data, secret=False, parent=None)

    def _walk(self, value: Any, *, secret: bool, parent: str | None) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for raw_key, child in value.items():
                key = str(raw_key)
                if secret:
                    child_secret = key not in _VISIBLE_IN_AUTH or not isinstance(child, str)
                elif key in SECRET_FIELDS or key == "auth_data":
                    child_secret = True
                elif (key == "headers" or (key == "set" and parent == "headers_override")) and isinstance(
                    child, Mapping
                ):
                    out[key] = {
                        str(h): self._walk(hv, secret=bool(CREDENTIAL_HEADER.search(str(h))), parent=None)
                        for h, hv in child.items()
                    }
                    continue
                elif key == "api_keys" and isinstance(child, list):
                    out[key] = [
                        {
                            str(k): self._walk(v, secret=k == "value", parent=None)
                            for k, v in (item.items() if isinstance(item, Mapping) else ())
                        }
                        if isinstance(item, Mapping)
                        else self._walk(item, secret=True, parent=None)
                        for item in child
                    ]
                    continue
                else:
                    child_secret = False
                out[key] = self._walk(child, secret=child_secret, parent=key)
            return out
        if isinstance(value, list | tuple | set | frozenset):
            items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            return [self._walk(v, secret=secret, parent=parent) for v in items]
        if isinstance(value, str):
            if secret and value.strip() and not _reference_only(value):
                return MASK
            return self.text(value)
        if isinstance(value, bytes | bytearray):
            return MASK
        if isinstance(value, datetime.date | datetime.datetime):
            return value.isoformat()
        if value is None or isinstance(value, bool | int | float):
            if secret and not isinstance(value, bool) and value is not None:
                return MASK  # a numeric credential (a PIN) written unquoted
            return value
        return self.text(str(value))


def snapshot_secrets(snapshot: Snapshot) -> set[str]:
    """Every secret value a compiled config knows: resolved environment values and the credentials
    compiled into targets, custom endpoints, ai-gateway providers and MCP servers."""
    found: set[str] = set(snapshot.served.resolved)
    values: list[bytes] = []
    for target in snapshot.models.values():
        values += target.secrets
    for account in snapshot.proxies.values():
        values += account.secrets
    if snapshot.ngrok is not None:
        for upstream in snapshot.ngrok.providers.values():
            values += upstream.secrets
    for server in snapshot.mcp.servers.values():
        values += server.secrets
    for raw in values:
        found.add(raw.decode("utf-8", "replace"))
    return found
