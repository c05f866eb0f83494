"""The response cache through a real `relaygate serve`, driven by the openai and anthropic SDKs.

A repeated request is answered from the cache (`x-tfy-cache-status: hit`, the original request id,
`age`), with no upstream call, at no cost; one caller never receives another's entry; a stream is
recorded and replayed event for event, and either shape is served from the other; header controls
may only narrow a rule; a broken Redis is a miss, never a failed request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import orjson
import pytest

from tests.helpers.gateway import GatewayHandle, GatewayProcess, free_port, render
from tests.helpers.manifests import ALICE, AZURE_KEY, BOB, OPENAI_KEY, STANDARD
from tests.upstreams.openai_mock import OpenAIMock

CACHE = """---
type: gateway-cache-config
name: cache
rules:
  - id: embeddings
    when: {models: [openai-main/embed]}
    ttl: 600
  - id: opt-in-chat
    when: {models: [vllm-local/llama]}
    mode: opt_in
    ttl: 300
    allow_client_controls: [ttl, namespace]
---
type: gateway-rate-limiting-config
name: limits
rules:
  - {id: four-requests, when: {models: [openai-main/gpt-4o-priced]}, limit_to: 4, unit: requests_per_minute}
  - {id: few-tokens, when: {models: [openai-main/instruct]}, limit_to: 60, unit: tokens_per_minute}
"""
EXACT = '{"type": "exact-match", "ttl": 600}'


@dataclass
class Served:
    gateway: GatewayHandle
    upstream: OpenAIMock
    vllm: OpenAIMock
    alice: str
    bob: str

    def chat_raw(self, token: str, text: str, model: str = "openai-main/gpt-4o", **extra: Any) -> Any:
        client = self.gateway.client(token)
        headers = extra.pop("headers", {"x-tfy-cache-config": EXACT})
        return client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}], extra_headers=headers, **extra
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    upstream = OpenAIMock(OPENAI_KEY, AZURE_KEY).start_in_thread()
    vllm = OpenAIMock().start_in_thread()
    config = render(STANDARD + CACHE, port=upstream.port, vllm_port=vllm.port, closed_port=free_port())
    gateway = GatewayProcess(tmp_path_factory.mktemp("cache"), config).start()
    try:
        yield Served(gateway, upstream, vllm, gateway.create_token(user=ALICE), gateway.create_token(user=BOB))
    finally:
        gateway.stop()
        upstream.stop_thread()
        vllm.stop_thread()


def _calls(mock: OpenAIMock, suffix: str = "/chat/completions") -> int:
    return sum(1 for r in mock.requests if r.path.endswith(suffix))


def test_a_repeated_request_is_a_hit_with_no_upstream_call_and_no_cost(served: Served) -> None:
    served.upstream.reset()
    first = served.chat_raw(served.alice, "cache me once")
    assert first.headers["x-tfy-cache-status"] == "miss"
    second = served.chat_raw(served.alice, "cache me once")
    assert second.headers["x-tfy-cache-status"] == "hit"
    assert second.headers["x-tfy-cached-trace-id"] == first.headers["x-request-id"]
    assert int(second.headers["age"]) >= 0
    assert _calls(served.upstream) == 1
    one, two = first.parse(), second.parse()
    assert two.choices[0].message.content == one.choices[0].message.content
    assert two.id != one.id  # a fresh id per answer
    assert two.usage is not None and one.usage is not None
    assert two.usage.total_tokens == one.usage.total_tokens  # usage as first reported
    row = served.gateway.wait_for_log(second.headers["x-request-id"])
    assert row["extra"]["cache"]["status"] == "hit"
    assert row["extra"]["cache"]["original_request_id"] == first.headers["x-request-id"]
    assert not row["cost_usd"]


def test_one_user_never_receives_another_users_entry(served: Served) -> None:
    served.upstream.reset()
    assert served.chat_raw(served.alice, "private question").headers["x-tfy-cache-status"] == "miss"
    assert served.chat_raw(served.bob, "private question").headers["x-tfy-cache-status"] == "miss"
    assert _calls(served.upstream) == 2
    assert served.chat_raw(served.bob, "private question").headers["x-tfy-cache-status"] == "hit"


def test_namespace_and_body_are_part_of_the_key(served: Served) -> None:
    served.chat_raw(served.alice, "namespaced")
    other = served.chat_raw(
        served.alice, "namespaced", headers={"x-tfy-cache-config": '{"type": "exact-match", "namespace": "n2"}'}
    )
    assert other.headers["x-tfy-cache-status"] == "miss"
    assert served.chat_raw(served.alice, "namespaced", temperature=0.5).headers["x-tfy-cache-status"] == "miss"


def test_a_stream_is_recorded_and_replayed_and_serves_both_shapes(served: Served) -> None:
    client = served.gateway.client(served.alice)
    headers = {"x-tfy-cache-config": EXACT}
    messages: Any = [{"role": "user", "content": "stream me please"}]

    def streamed() -> tuple[str, str]:
        raw = client.chat.completions.with_raw_response.create(
            model="openai-main/gpt-4o", messages=messages, stream=True, extra_headers=headers
        )
        text = "".join(c.delta.content or "" for chunk in raw.parse() for c in chunk.choices)
        return raw.headers["x-tfy-cache-status"], text

    first_status, first_text = streamed()
    second_status, second_text = streamed()
    assert (first_status, second_status) == ("miss", "hit")
    assert second_text == first_text == "echo: stream me please"
    whole = client.chat.completions.with_raw_response.create(
        model="openai-main/gpt-4o", messages=messages, extra_headers=headers
    )
    assert whole.headers["x-tfy-cache-status"] == "hit"
    assert whole.parse().choices[0].message.content == first_text


def test_a_json_entry_replays_as_a_stream(served: Served) -> None:
    client = served.gateway.client(served.alice)
    messages: Any = [{"role": "user", "content": "first json then stream"}]
    client.chat.completions.create(
        model="openai-main/gpt-4o", messages=messages, extra_headers={"x-tfy-cache-config": EXACT}
    )
    raw = client.chat.completions.with_raw_response.create(
        model="openai-main/gpt-4o",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-tfy-cache-config": EXACT},
    )
    chunks = list(raw.parse())
    assert raw.headers["x-tfy-cache-status"] == "hit"
    assert "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices) == "echo: first json then stream"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_anthropic_messages_hit_replays_the_stream(served: Served) -> None:
    client = anthropic.Anthropic(
        api_key=served.alice,
        base_url=served.gateway.url,
        max_retries=0,
        default_headers={"x-tfy-cache-config": EXACT},
    )
    texts = []
    for _ in range(2):
        with client.messages.stream(
            model="vllm-local/llama", max_tokens=64, messages=[{"role": "user", "content": "anthropic cached"}]
        ) as stream:
            texts.append("".join(stream.text_stream))
            texts.append(stream.response.headers["x-tfy-cache-status"])  # type: ignore[attr-defined]
    client.close()
    assert texts[0] == texts[2] and texts[0].endswith("anthropic cached")
    assert (texts[1], texts[3]) == ("miss", "hit")


def test_a_default_on_rule_caches_without_a_header(served: Served) -> None:
    served.upstream.reset()
    client = served.gateway.client(served.alice)
    for _ in range(2):
        client.embeddings.create(model="openai-main/embed", input="vectorise me", extra_headers={})
    assert _calls(served.upstream, "/embeddings") == 1


def test_an_opt_in_rule_needs_the_header_and_caps_its_ttl(served: Served) -> None:
    served.vllm.reset()
    for _ in range(2):
        served.chat_raw(served.alice, "no header no cache", model="vllm-local/llama", headers={})
    assert _calls(served.vllm) == 2
    long_ttl = served.chat_raw(
        served.alice, "opted in", model="vllm-local/llama", headers={"x-tfy-cache-config": '{"ttl": 999999}'}
    )
    assert long_ttl.headers["x-tfy-cache-status"] == "miss"  # accepted, cut to the rule's 300 s


def test_a_control_the_rule_does_not_allow_is_refused(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        served.chat_raw(
            served.alice, "x", model="vllm-local/llama", headers={"x-tfy-cache-config": '{"force_refresh": true}'}
        )
    assert "force_refresh" in str(caught.value)


def test_force_refresh_and_no_store(served: Served) -> None:
    served.upstream.reset()
    served.chat_raw(served.alice, "refresh me")
    refreshed = served.chat_raw(
        served.alice, "refresh me", headers={"x-tfy-cache-config": '{"type": "exact-match", "force_refresh": true}'}
    )
    assert refreshed.headers["x-tfy-cache-status"] == "miss"
    assert _calls(served.upstream) == 2
    no_store = '{"type": "exact-match", "no_store": true}'
    served.chat_raw(served.alice, "do not keep", headers={"x-tfy-cache-config": no_store})
    assert served.chat_raw(served.alice, "do not keep").headers["x-tfy-cache-status"] == "miss"


def test_bad_headers_are_clear_400s(served: Served) -> None:
    for value, text in (
        ("not json", "JSON object"),
        ('{"scope": "global"}', "unknown field"),
        ('{"type": "semantic"}', "semantic"),
    ):
        result = served.gateway.request(
            "POST",
            "/api/llm/chat/completions",
            token=served.alice,
            json={"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-tfy-cache-config": value},
        )
        assert result.status == 400, value
        assert text in result.json()["error"]["message"]


def test_concurrent_identical_misses_make_one_upstream_call(served: Served) -> None:
    served.upstream.reset()
    client = served.gateway.client(served.alice)

    def ask(_: int) -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="openai-main/gpt-4o",
            messages=[{"role": "user", "content": "all at once"}],
            extra_headers={"x-tfy-cache-config": EXACT},
        )
        return str(raw.headers["x-tfy-cache-status"])

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(ask, range(8)))
    assert _calls(served.upstream) == 1, statuses  # one leader; the others waited for its answer
    assert statuses.count("miss") == 1 and statuses.count("hit") == 7


def test_hits_count_against_request_limits_but_not_token_limits(served: Served) -> None:
    client = served.gateway.client(served.alice)
    statuses = []
    for _ in range(5):
        try:
            served.chat_raw(served.alice, "limited and cached", model="openai-main/gpt-4o-priced")
            statuses.append(200)
        except openai.RateLimitError:
            statuses.append(429)
    assert statuses == [200, 200, 200, 200, 429]  # request limits still count hits
    for _ in range(20):  # ~10 tokens per answer against 60 a minute: only the first call is charged
        completion = client.completions.create(
            model="openai-main/instruct",
            prompt="tokens once",
            max_tokens=5,
            extra_headers={"x-tfy-cache-config": EXACT},
        )
        assert completion.choices[0].text


def test_metrics_count_hits_and_savings(served: Served) -> None:
    served.chat_raw(served.alice, "metric me")
    served.chat_raw(served.alice, "metric me")
    text = served.gateway.request("GET", "/metrics").body.decode()
    assert 'relaygate_cache_requests_total{status="hit",type="exact-match"}' in text
    assert "relaygate_cache_saved_usd_total " in text


def test_a_broken_redis_is_a_miss_never_a_failure(tmp_path_factory: pytest.TempPathFactory) -> None:
    upstream = OpenAIMock(OPENAI_KEY, AZURE_KEY).start_in_thread()
    config = render(
        STANDARD + "---\ntype: gateway-cache-config\nname: cache\nbackend: redis\n",
        port=upstream.port,
        vllm_port=free_port(),
        closed_port=free_port(),
    )
    gateway = GatewayProcess(
        tmp_path_factory.mktemp("cache-redis"),
        config,
        env={"RELAYGATE_CACHE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
    ).start()
    try:
        token = gateway.create_token(user=ALICE)
        raw = gateway.client(token).chat.completions.with_raw_response.create(
            model="openai-main/gpt-4o",
            messages=[{"role": "user", "content": "redis is down"}],
            extra_headers={"x-tfy-cache-config": EXACT},
        )
        assert raw.http_response.status_code == 200
        assert raw.headers["x-tfy-cache-status"] == "error"
        assert raw.parse().choices[0].message.content == "echo: redis is down"
    finally:
        gateway.stop()
        upstream.stop_thread()


def test_two_replicas_share_entries_through_redis(tmp_path_factory: pytest.TempPathFactory) -> None:
    upstream = OpenAIMock(OPENAI_KEY, AZURE_KEY).start_in_thread()
    namespace = f"replicas-{uuid.uuid4().hex}"  # Redis outlives test runs: a fresh namespace each time
    config = render(
        STANDARD + "---\ntype: gateway-cache-config\nname: cache\nbackend: redis\n",
        port=upstream.port,
        vllm_port=free_port(),
        closed_port=free_port(),
    )
    env = {"RELAYGATE_CACHE_REDIS_URL": "redis://127.0.0.1:6379/0"}
    base = tmp_path_factory.mktemp("cache-replicas")
    one = GatewayProcess(base / "one", config, env=env).start()
    two = GatewayProcess(base / "two", config, env=env).start()
    try:
        token, other_token = one.create_token(user=ALICE), two.create_token(user=ALICE)  # one user, two stores
        header = {"x-tfy-cache-config": orjson.dumps({"type": "exact-match", "namespace": namespace}).decode()}
        messages: Any = [{"role": "user", "content": "shared across replicas"}]
        first = one.client(token).chat.completions.with_raw_response.create(
            model="openai-main/gpt-4o", messages=messages, extra_headers=header
        )
        assert first.headers["x-tfy-cache-status"] == "miss"
        for _ in range(50):  # the write is in the background
            second = two.client(other_token).chat.completions.with_raw_response.create(
                model="openai-main/gpt-4o", messages=messages, extra_headers=header
            )
            if second.headers["x-tfy-cache-status"] == "hit":
                break
        assert second.headers["x-tfy-cache-status"] == "hit"
    finally:
        one.stop()
        two.stop()
        upstream.stop_thread()


SEMANTIC = """---
type: provider-account/self-hosted-model
name: local-embed
integrations:
  - name: minilm
    type: integration/model/self-hosted-model
    hosted_model_name: all-MiniLM-L6-v2
    url: "http://127.0.0.1:{embed_port}/v1"
    model_server: openai-compatible
    model_types: [embedding]
---
type: gateway-cache-config
name: cache
rules:
  - id: similar-questions
    when: {models: [openai-main/gpt-4o]}
    type: semantic
    embedding_model: local-embed/minilm
    similarity_threshold: 0.8
    ttl: 600
"""


def test_semantic_cache_with_a_real_embedding_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A paraphrase hits (with its similarity score), an unrelated question misses; the embedding calls
    go through the gateway as the caller, so they are logged."""
    pytest.importorskip("sentence_transformers", reason="the semantic test serves a real local model")
    from tests.upstreams.embedding_server import EmbeddingServer

    upstream = OpenAIMock(OPENAI_KEY, AZURE_KEY).start_in_thread()
    with EmbeddingServer().running() as embedder:
        config = render(
            STANDARD + SEMANTIC,
            port=upstream.port,
            vllm_port=free_port(),
            closed_port=free_port(),
            embed_port=embedder.port,
        )
        gateway = GatewayProcess(tmp_path_factory.mktemp("semantic"), config).start()
        try:
            client = gateway.client(gateway.create_token(user=ALICE))

            def ask(text: str, **control: Any) -> Any:
                headers = {"x-tfy-cache-config": orjson.dumps({"type": "semantic", **control}).decode()}
                return client.chat.completions.with_raw_response.create(
                    model="openai-main/gpt-4o", messages=[{"role": "user", "content": text}], extra_headers=headers
                )

            first = ask("How do I reset my password?")
            assert first.headers["x-tfy-cache-status"] == "miss"
            for _ in range(50):  # the entry is written (and indexed) in the background
                paraphrase = ask("What's the way to change my forgotten password?", no_store=True)
                if paraphrase.headers["x-tfy-cache-status"] == "hit":
                    break
            assert paraphrase.headers["x-tfy-cache-status"] == "hit"
            assert float(paraphrase.headers["x-tfy-cache-similarity-score"]) >= 0.8
            assert paraphrase.parse().choices[0].message.content == "echo: How do I reset my password?"
            unrelated = ask("What is the capital of France?")
            assert unrelated.headers["x-tfy-cache-status"] == "miss"
            assert unrelated.parse().choices[0].message.content == "echo: What is the capital of France?"
            embeddings = gateway.wait_for_logs(3, model="local-embed/minilm")
            assert len(embeddings) >= 3 and all(row["status"] == 200 for row in embeddings)
        finally:
            gateway.stop()
            upstream.stop_thread()
