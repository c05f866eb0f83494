"""Credentials written as literals in a manifest, found by field path so they can be warned about.

docs/SCHEMAS.md: secrets are references, never literals in shared files. A literal still works (a
local test config may well use one), so it is a warning, not a problem: `check` prints it and
`serve` logs it at start-up and on reload. Only the field path is reported, never the value.
"""

from __future__ import annotations

import re
from typing import Any

from relaygate.config.problems import Loc

# Fields that hold a credential wherever they appear (auth_data of every kind).
SECRET_FIELDS = frozenset({"api_key", "bearer_token", "secret_access_key", "session_token", "key_json"})
# Header names whose values are credentials (outside auth_data, whose headers all are).
CREDENTIAL_HEADER = re.compile(
    r"authorization|api[-_]?key|token|secret|passw(or)?d|credential|cookie|signature|(^|[-_])key$",
    re.IGNORECASE,
)
TFY_SECRET_PREFIX = "tfy-secret://"
LITERAL_RULE = (
    "is a literal credential; write a reference instead (${ENV_VAR}, ${secrets.get('group','key')} or "
    "tfy-secret://<tenant>:<group>:<key>) so the secret stays out of files, diffs and the database"
)


def is_reference(value: str) -> bool:
    """True when the value reads (part of) its text from the environment rather than holding it."""
    stripped = value.strip()
    return stripped.startswith(TFY_SECRET_PREFIX) or "${" in stripped.replace("$${", "")


def _literal(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip()) and not is_reference(value)
    if isinstance(value, dict):  # key_json written inline: its private key is the credential
        return _literal(value.get("private_key"))
    return False


def literal_credentials(data: Any, loc: Loc = ()) -> list[Loc]:
    """Paths of credential values written as literals in a manifest as written (before resolution)."""
    out: list[Loc] = []
    if isinstance(data, list):
        for i, item in enumerate(data):
            out += literal_credentials(item, (*loc, i))
        return out
    if not isinstance(data, dict):
        return out
    in_auth = bool(loc) and loc[-1] == "auth_data"
    for key, value in data.items():
        path: Loc = (*loc, key)
        if key in SECRET_FIELDS:
            if _literal(value):
                out.append(path)
        elif (key == "headers" or (key == "set" and loc[-1:] == ("headers_override",))) and isinstance(value, dict):
            out += [
                (*path, name)
                for name, header in value.items()
                if (in_auth or CREDENTIAL_HEADER.search(str(name))) and _literal(header)
            ]
        elif key == "api_keys" and isinstance(value, list):  # ngrok providers: [{value: ...}]
            out += [
                (*path, i, "value")
                for i, item in enumerate(value)
                if isinstance(item, dict) and _literal(item.get("value"))
            ]
        elif isinstance(value, dict | list):
            out += literal_credentials(value, path)
    return out
