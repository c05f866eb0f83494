"""The cache key (next-capabilities §4.6 point 4): what makes two requests "the same request".

The key object names everything that changes the answer (dialect, requested model, the body minus
transport-only fields, the few headers that steer output, the tenant scope and the namespace) and
nothing else, so one entry serves both the streaming and non-streaming shape of a request. The
digest is sha256 over the canonical JSON (orjson, keys sorted at every depth). Storage keys carry a
hash of the namespace as a prefix, so purging a namespace is one prefix scan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

KEY_VERSION = 1
KEY_PREFIX = "relaygate:cache:v1:"
REQUEST_INDEX_PREFIX = KEY_PREFIX + "req:"  # never collides with a namespace prefix: "req" is not 16 hex digits

# Body fields that change how an answer is delivered, billed or logged, but not what it says.
_TRANSPORT_FIELDS = frozenset({"stream", "stream_options", "metadata", "store", "service_tier"})
# Request headers that change the answer; compared lower-cased.
KEYED_HEADERS = frozenset({"x-tfy-provider-name", "x-tfy-strict-openai", "anthropic-version", "anthropic-beta"})


@dataclass(frozen=True, slots=True)
class CacheKey:
    """A request's cache identity; equal and hashable by its digests (the key object is for `explain`)."""

    digest: str  # sha256 hex of the canonical key object
    namespace_digest: str  # first 16 hex of sha256(namespace): the purge-by-namespace prefix
    storage_key: str  # relaygate:cache:v1:{namespace_digest}:{digest}
    short: str  # first 12 hex of the digest, for logs and the `extra.cache.key_prefix` field
    key_object: dict[str, Any] = field(compare=False)  # shares nested values with the request body


def namespace_digest(namespace: str) -> str:
    """The namespace's storage prefix component (also what purge-by-namespace scans for)."""
    return hashlib.sha256(namespace.encode()).hexdigest()[:16]


def namespace_prefix(namespace: str) -> str:
    """Every storage key of a namespace starts with this: pass it to a store's `purge`."""
    return f"{KEY_PREFIX}{namespace_digest(namespace)}:"


def request_index_key(request_id: str) -> str:
    """Where a store records which entry a request produced (for drop-by-request-id)."""
    return REQUEST_INDEX_PREFIX + request_id


def keyed_body(body: Mapping[str, Any], *, include_user: bool) -> dict[str, Any]:
    """The body fields that change the answer: transport fields and the `n == 1` default removed."""
    kept: dict[str, Any] = {}
    for name, value in body.items():
        if name in _TRANSPORT_FIELDS or (name == "user" and not include_user):
            continue
        if name == "n" and value == 1 and not isinstance(value, bool):
            continue
        kept[name] = value
    return kept


def keyed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Only the headers that change the answer, with lower-cased names."""
    return {name.lower(): value for name, value in headers.items() if name.lower() in KEYED_HEADERS}


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: orjson with keys sorted at every depth (same input, same bytes)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def cache_key(
    *,
    api: str,
    model: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    scope: str,
    namespace: str,
    include_user: bool = False,
) -> CacheKey:
    """Build the key of a request: `api` is the inbound dialect and path template, `model` the requested name."""
    key_object: dict[str, Any] = {
        "v": KEY_VERSION,
        "api": api,
        "model": model,
        "body": keyed_body(body, include_user=include_user),
        "hdr": keyed_headers(headers),
        "scope": scope,
        "ns": namespace,
    }
    digest = hashlib.sha256(canonical_json(key_object)).hexdigest()
    ns_digest = namespace_digest(namespace)
    return CacheKey(
        digest=digest,
        namespace_digest=ns_digest,
        storage_key=f"{KEY_PREFIX}{ns_digest}:{digest}",
        short=digest[:12],
        key_object=key_object,
    )
