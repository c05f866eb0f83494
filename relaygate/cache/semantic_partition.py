"""The semantic cache's partition (§4.6 point 13): which requests may share an answer by meaning.

A semantic hit needs two things. Every key part but the last user message must hash-equal: that
is the *partition*, built from `cache_key`'s own key object with the last user text masked. And the
last user text's embedding must lie close enough to one already stored in that partition (the
indexes of `vector_index` and `semantic_redis` keep the vectors). This module computes the
partition and the text to embed, the conversation length the caller checks before embedding
(`max_messages`), and the vector arithmetic and wire form both indexes use: unit float32 vectors,
base64-encoded for Redis. The caller embeds (through the gateway, so the embedding's cost is
logged), applies the similarity threshold, and keeps answers in the ordinary CacheStore under the
storage key the index returns.

Partitions are named `{namespace digest}:sem:{digest}`, so a partition's Redis keys
(`relaygate:cache:v1:{namespace digest}:sem:...`) fall under `namespace_prefix(namespace)` and a
purge of the namespace removes them too.
"""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from relaygate.cache.key import cache_key, canonical_json, namespace_digest

SEMANTIC_VERSION = 1
# Stands where the last user text was, so the partition hashes everything else. Not a string a client sends.
LAST_USER_TEXT_PLACEHOLDER = "\x00relaygate:semantic:last-user-text\x00"

# ---------------------------------------------------------------------------------------------------
# The partition and the text to embed.


def _is_text_part(part: Any) -> bool:
    """An OpenAI text content part or an Anthropic text block: `{"type": "text", "text": "..."}`."""
    return isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)


def _content_text(content: Any) -> str | None:
    """A message content's text: the string itself, or its text parts joined by newlines (None: not text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if _is_text_part(part))
    return None


def _masked_content(content: str | list[Any]) -> str | list[Any]:
    """The content with its text replaced by the placeholder; images and other parts stay (they key the partition)."""
    if isinstance(content, str):
        return LAST_USER_TEXT_PLACEHOLDER
    return [{**part, "text": LAST_USER_TEXT_PLACEHOLDER} if _is_text_part(part) else part for part in content]


def split_last_user_text(body: Mapping[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The body with the last user message's text masked, and that text; None when there is no user text.

    Chat (`messages`, OpenAI or Anthropic: a string content, or text parts/blocks joined by newlines)
    or legacy completions (a string `prompt`). Only the path to the masked text is copied; the rest
    shares the request's values.
    """
    messages = body.get("messages")
    if isinstance(messages, list):
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if not (isinstance(message, dict) and message.get("role") == "user"):
                continue
            content: Any = message.get("content")
            text = _content_text(content)
            if text is None or not text.strip():
                return None
            masked = list(messages)
            masked[index] = {**message, "content": _masked_content(content)}
            return {**body, "messages": masked}, text
        return None
    prompt = body.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        return {**body, "prompt": LAST_USER_TEXT_PLACEHOLDER}, prompt
    return None


def semantic_partition(
    *,
    api: str,
    model: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    scope: str,
    namespace: str,
    include_user: bool = False,
    embedding_model: str = "",
) -> tuple[str, str] | None:
    """(partition, text to embed) of a request, or None when it has no user text to embed.

    The partition digests `cache_key`'s key object of the body with the last user text masked (so
    transport fields, `n == 1` and headers are treated exactly as the exact-match key treats them),
    plus `embedding_model`: vectors of different models never meet. Arguments are `cache_key`'s.
    """
    split = split_last_user_text(body)
    if split is None:
        return None
    masked_body, text = split
    key = cache_key(
        api=api,
        model=model,
        body=masked_body,
        headers=headers,
        scope=scope,
        namespace=namespace,
        include_user=include_user,
    )
    partition_object = {"semantic": SEMANTIC_VERSION, "embedding_model": embedding_model, "key": key.key_object}
    digest = hashlib.sha256(canonical_json(partition_object)).hexdigest()
    return f"{namespace_digest(namespace)}:sem:{digest}", text


def partition_namespace_prefix(namespace: str) -> str:
    """Every partition of a namespace starts with this (what `purge_namespace` drops)."""
    return f"{namespace_digest(namespace)}:sem:"


def conversation_length(body: Mapping[str, Any]) -> int:
    """How many messages the request carries (a completions prompt is one), for the `max_messages` skip."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return len(messages)
    return 1 if "prompt" in body else 0


# ---------------------------------------------------------------------------------------------------
# Vectors.


def unit_vector(vector: Sequence[float]) -> array[float]:
    """`vector` scaled to length 1, as float32 (what Redis stores, so every replica scores alike).

    A zero-length or non-finite vector is a ValueError: it has no direction to compare.
    """
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0 or not math.isfinite(norm):
        raise ValueError("an embedding needs finite components and a non-zero length")
    return array("f", [x / norm for x in vector])


def encode_vector(vector: array[float]) -> str:
    """float32 little-endian, base64 (as OpenAI's `encoding_format: base64`), whatever the host's byte order."""
    little = array("f", vector)
    if sys.byteorder == "big":  # pragma: no cover - no big-endian host runs the tests
        little.byteswap()
    return base64.b64encode(little.tobytes()).decode()


def decode_vector(encoded: str) -> array[float]:
    """The inverse of `encode_vector`."""
    vector = array("f")
    vector.frombytes(base64.b64decode(encoded))
    if sys.byteorder == "big":  # pragma: no cover - no big-endian host runs the tests
        vector.byteswap()
    return vector
