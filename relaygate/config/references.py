"""Secret references in manifest string values, resolved from the environment after YAML parsing.

Forms: `${NAME}`, `${NAME:-default}`, `${secrets.get('group','key')}` (environment variable GROUP_KEY),
`$${` for a literal `${`, and TrueFoundry's `tfy-secret://<tenant>:<group>:<key>` as a whole value (read
exactly like `secrets.get('group','key')`). Only string values are touched, so a secret's text can never
change the document's structure; what was read is remembered so problems can be scrubbed of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relaygate.config.credentials import TFY_SECRET_PREFIX
from relaygate.config.problems import Loc

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_SECRET_REF = re.compile(r"""^secrets\.get\(\s*(['"])(.*?)\1\s*,\s*(['"])(.*?)\3\s*\)$""")
_TFY_SECRET = re.compile(r"^tfy-secret://([^:\s]+):([^:\s]+):(\S+)$")
REFERENCE_FORMS = "${NAME}, ${NAME:-default} or ${secrets.get('group','key')} ($${ for a literal ${)"


def secret_env_name(group: str, key: str) -> str:
    """`secrets.get('my-provider','api-key')` reads `MY_PROVIDER_API_KEY`."""
    return re.sub(r"[^A-Z0-9]", "_", f"{group}_{key}".upper())


MAX_VALUES_PER_MANIFEST = 100_000


class TooLarge(Exception):
    """YAML aliases can make a small file expand into a huge tree ("billion laughs")."""


@dataclass(slots=True)
class Interpolation:
    env: Mapping[str, str]
    problems: list[tuple[Loc, str]] = field(default_factory=list)
    resolved: set[str] = field(default_factory=set)  # values read from the environment
    budget: int = MAX_VALUES_PER_MANIFEST

    def walk(self, value: Any, loc: Loc) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise TooLarge
        if isinstance(value, str):
            if value.startswith(TFY_SECRET_PREFIX):
                return self.tfy_secret(value, loc)
            return self.string(value, loc) if "$" in value else value
        if isinstance(value, dict):
            return {k: self.walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*loc, i)) for i, v in enumerate(value)]
        return value

    def string(self, value: str, loc: Loc) -> str:
        failed = False

        def replace(match: re.Match[str]) -> str:
            nonlocal failed
            if match.group(0) == "$${":
                return "${"
            inner = match.group(1)
            resolved = None if inner is None else self.lookup(inner.strip(), loc)
            if resolved is None:
                failed = True
                return match.group(0)
            return resolved

        out = _REFERENCE.sub(replace, value)
        return value if failed else out

    def tfy_secret(self, value: str, loc: Loc) -> str:
        """`tfy-secret://<tenant>:<group>:<key>` (the whole value) reads like `secrets.get('group','key')`:
        environment variable GROUP_KEY. The tenant only names where TrueFoundry keeps the secret."""
        m = _TFY_SECRET.match(value.strip())
        if m is None:
            self.problems.append((loc, "has a malformed tfy-secret reference; use tfy-secret://<tenant>:<group>:<key>"))
            return value
        group, key = m.group(2), m.group(3)
        name = secret_env_name(group, key)
        resolved = self.env.get(name)
        if resolved is None:
            self.problems.append(
                (
                    loc,
                    f"references tfy-secret://{m.group(1)}:{group}:{key} (environment variable "
                    f"{name}), which is not set",
                )
            )
            return value
        self.resolved.add(resolved)
        return resolved

    def lookup(self, ref: str, loc: Loc) -> str | None:
        if (m := _SECRET_REF.match(ref)) is not None:
            name = secret_env_name(m.group(2), m.group(4))
            shown, default = f"secrets.get({m.group(2)!r}, {m.group(4)!r}) (environment variable {name})", None
        elif (m := _ENV_REF.match(ref)) is not None:
            name, default = m.group(1), m.group(2)
            shown = f"${{{name}}}"
        else:
            self.problems.append((loc, f"has a malformed reference; use {REFERENCE_FORMS}"))
            return None
        value = self.env.get(name)
        if value:
            self.resolved.add(value)
            return value
        if default is not None:
            return default
        if value is None:
            self.problems.append((loc, f"references {shown}, which is not set"))
            return None
        self.resolved.add(value)
        return value
