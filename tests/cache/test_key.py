"""The cache key: what makes two requests the same request, and the storage key layout."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from relaygate.cache.key import CacheKey, cache_key, namespace_prefix, request_index_key

BODY: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "hi", "name": "a"}],
    "temperature": 0.2,
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"b": 1, "a": 2}}},
}


def key(body: dict[str, Any] | None = None, **overrides: Any) -> CacheKey:
    args: dict[str, Any] = {
        "api": "openai:/v1/chat/completions",
        "model": "openai-main/gpt-4o",
        "body": BODY if body is None else body,
        "headers": {},
        "scope": "user:alice@example.com",
        "namespace": "",
    }
    args.update(overrides)
    return cache_key(**args)


def test_key_object_digest_and_storage_key_layout() -> None:
    k = key(headers={"Anthropic-Version": "2023-06-01"}, namespace="team-a")
    assert k.key_object == {
        "v": 1,
        "api": "openai:/v1/chat/completions",
        "model": "openai-main/gpt-4o",
        "body": BODY,
        "hdr": {"anthropic-version": "2023-06-01"},
        "scope": "user:alice@example.com",
        "ns": "team-a",
    }
    canonical = orjson.dumps(k.key_object, option=orjson.OPT_SORT_KEYS)
    assert canonical.index(b'"a":2') < canonical.index(b'"b":1')  # nested keys sorted too
    assert k.digest == hashlib.sha256(canonical).hexdigest()
    assert k.namespace_digest == hashlib.sha256(b"team-a").hexdigest()[:16]
    assert k.storage_key == f"relaygate:cache:v1:{k.namespace_digest}:{k.digest}"
    assert k.storage_key.startswith(namespace_prefix("team-a"))
    assert k.short == k.digest[:12]


def test_key_order_does_not_matter_at_any_depth() -> None:
    reordered = {
        "response_format": {"json_schema": {"schema": {"a": 2, "b": 1}, "name": "x"}, "type": "json_schema"},
        "temperature": 0.2,
        "messages": [{"name": "a", "content": "hi", "role": "user"}],
        "model": "gpt-4o",
    }
    assert key(reordered) == key()
    assert key(reordered).digest == key().digest


def test_list_order_does_matter() -> None:
    two = {**BODY, "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    swapped = {**BODY, "messages": [{"role": "user", "content": "b"}, {"role": "user", "content": "a"}]}
    assert key(two).digest != key(swapped).digest


def test_transport_fields_are_not_part_of_the_key() -> None:
    noisy = {
        **BODY,
        "stream": True,
        "stream_options": {"include_usage": True},
        "metadata": {"trace": "x"},
        "store": False,
        "service_tier": "flex",
        "user": "end-user-7",
    }
    assert key(noisy).digest == key().digest
    assert key(noisy).key_object["body"] == BODY


def test_n_is_dropped_only_when_it_is_the_default() -> None:
    assert key({**BODY, "n": 1}).digest == key().digest
    assert key({**BODY, "n": 2}).digest != key().digest
    assert key({**BODY, "n": 2}).key_object["body"]["n"] == 2
    assert key({**BODY, "n": True}).digest != key().digest  # a bool is not the number 1


def test_user_is_keyed_only_when_asked() -> None:
    alice, bob = {**BODY, "user": "alice"}, {**BODY, "user": "bob"}
    assert key(alice).digest == key(bob).digest == key().digest
    assert key(alice, include_user=True).digest != key(bob, include_user=True).digest
    assert key(alice, include_user=True).key_object["body"]["user"] == "alice"


def test_only_output_changing_headers_are_keyed_case_insensitively() -> None:
    headers = {
        "Authorization": "Bearer secret",
        "X-Request-Id": "r-1",
        "x-tfy-metadata": '{"a": 1}',
        "X-TFY-Provider-Name": "openai-main",
        "x-tfy-strict-openai": "true",
        "Anthropic-Version": "2023-06-01",
        "anthropic-beta": "prompt-caching-2024-07-31",
    }
    k = key(headers=headers)
    assert k.key_object["hdr"] == {
        "x-tfy-provider-name": "openai-main",
        "x-tfy-strict-openai": "true",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "prompt-caching-2024-07-31",
    }
    unkeyed_only = {"Authorization": "Bearer other", "X-Request-Id": "r-2"}
    assert key(headers=unkeyed_only).digest == key().digest
    assert key(headers={"anthropic-beta": "x"}).digest != key(headers={"anthropic-beta": "y"}).digest
    assert key(headers={"ANTHROPIC-BETA": "x"}).digest == key(headers={"anthropic-beta": "x"}).digest


@pytest.mark.parametrize(
    "change",
    [
        {"api": "anthropic:/v1/messages"},
        {"model": "openai-main/gpt-4o-mini"},
        {"scope": "team:search"},
        {"namespace": "team-a"},
        {"body": {**BODY, "temperature": 0.3}},
        {"headers": {"x-tfy-provider-name": "azure-main"}},
    ],
)
def test_every_key_component_changes_the_digest(change: dict[str, Any]) -> None:
    assert key(**change).digest != key().digest


def test_namespaces_prefix_storage_keys_and_keys_are_hashable() -> None:
    a, b = key(namespace="team-a"), key(namespace="team-b")
    assert a.storage_key.startswith(namespace_prefix("team-a"))
    assert not b.storage_key.startswith(namespace_prefix("team-a"))
    assert len({key(), key(), a}) == 2  # the key object is left out of equality and hashing


def test_request_index_key_never_falls_under_a_namespace_prefix() -> None:
    index_key = request_index_key("req-123")
    assert index_key == "relaygate:cache:v1:req:req-123"
    assert not any(index_key.startswith(namespace_prefix(ns)) for ns in ("", "req", "team-a"))


def test_the_request_body_is_not_mutated() -> None:
    body = {**BODY, "stream": True, "n": 1}
    key(body)
    assert body == {**BODY, "stream": True, "n": 1}
