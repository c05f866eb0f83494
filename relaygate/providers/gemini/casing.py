"""Google answers in either JSON name style: lowerCamelCase (what the REST APIs emit) or the proto field names.

Google's JSON mapping of protobuf accepts both `usageMetadata` and `usage_metadata`, and proxies, SDK
`model_dump()` output and recorded fixtures often carry the snake_case names. The translators read
camelCase only, so an answer is normalised once here: keys with an underscore are rewritten to
lowerCamelCase, except inside the values that are caller data rather than API fields (a function
call's `args`, a function response's `response`), which stay as the model wrote them.
"""

from __future__ import annotations

from typing import Any

# Values that are user data (JSON objects chosen by the model or the caller), never renamed inside.
OPAQUE = frozenset({"args", "response", "partialArgs"})


def camel_name(name: str) -> str:
    """`usage_metadata` -> `usageMetadata` (names without an underscore are returned as they are)."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_keys(value: Any) -> Any:
    """`value` with every API field name in lowerCamelCase (a new structure; `value` is not changed)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = camel_name(key) if isinstance(key, str) else key
            out[name] = item if name in OPAQUE else camel_keys(item)
        return out
    if isinstance(value, list):
        return [camel_keys(item) for item in value]
    return value
