"""A `google-vertex` account end to end: the `openai` SDK -> `relaygate serve` -> the Vertex AI mock, authenticated
with a real service-account key (RSA, signed JWT exchanged at the mock's token endpoint)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest

from tests.handlers.test_provider_gemini import WEATHER_TOOL, Env, serving, tool_round, user
from tests.helpers.error_shape import assert_error_shape
from tests.upstreams.gemini_mock import THOUGHT_TOKENS, GeminiMock, reply_text, service_account_key
from tests.upstreams.openai_mock import count_tokens, embedding_vector

STATIC_BEARER = "ya29.static-bearer-0077"
CONFIG = """\
type: provider-account/google-vertex
name: vertex-main
base_url: http://127.0.0.1:{port}
auth_data: {type: gcp-service-account, key_json: {key_json}}
integrations:
  - {name: flash, type: integration/model/google-vertex, model_id: gemini-2.5-flash, model_types: [chat]}
  - {name: embed, type: integration/model/google-vertex, model_id: text-embedding-005, model_types: [embedding]}
---
type: provider-account/google-vertex
name: vertex-bearer
base_url: http://127.0.0.1:{port}
project_id: mock-project
auth_data: {type: bearer-auth, bearer_token: ya29.static-bearer-0077}
integrations:
  - {name: flash, type: integration/model/google-vertex, model_id: gemini-2.5-flash, model_types: [chat]}
---
type: provider-account/google-vertex
name: vertex-elsewhere
base_url: http://127.0.0.1:{port}
project_id: someone-elses-project
auth_data: {type: gcp-service-account, key_json: {key_json}}
integrations:
  - {name: flash, type: integration/model/google-vertex, model_id: gemini-2.5-flash, model_types: [chat]}
---
type: provider-account/google-vertex
name: vertex-inline
base_url: http://127.0.0.1:{port}
auth_data:
  type: gcp-service-account
  key_json: {inline_key}
integrations:
  - {name: flash, type: integration/model/google-vertex, model_id: gemini-2.5-flash, model_types: [chat]}
---
type: provider-account/google-vertex
name: vertex-revoked
base_url: http://127.0.0.1:{port}
auth_data: {type: gcp-service-account, key_json: {revoked_key_json}}
integrations:
  - {name: flash, type: integration/model/google-vertex, model_id: gemini-2.5-flash, model_types: [chat]}
"""
FLASH = "vertex-main/flash"
PREFIX = "/v1/projects/mock-project/locations/us-central1/publishers/google/models"


def yaml_json(info: dict[str, Any]) -> str:
    """A key file as a YAML scalar (a JSON string literal is valid YAML)."""
    return orjson.dumps(json.dumps(info)).decode()


def service_account_keys(mock: GeminiMock) -> dict[str, Any]:
    """The config's key files: two registered with the mock (one written inline as a mapping), one it never heard of
    (its token endpoint refuses it)."""
    revoked, _ = service_account_key(mock.token_uri)
    return {
        "key_json": yaml_json(mock.new_service_account()),
        "revoked_key_json": yaml_json(revoked),
        "inline_key": json.dumps(mock.new_service_account()),
    }  # JSON is a YAML flow mapping


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    mock = GeminiMock(static_bearer=STATIC_BEARER)
    with serving(tmp_path_factory.mktemp("vertex"), CONFIG, mock, service_account_keys) as env:
        yield env


@pytest.fixture
def env(module_env: Env) -> Env:
    module_env.mock.reset()
    return module_env


def test_chat_with_a_service_account_token(env: Env) -> None:
    _, completion = env.chat(model=FLASH, messages=[{"role": "system", "content": "be brief"}, *user("hello vertex")])
    assert completion.choices[0].message.content == reply_text("hello vertex")
    recorded = env.mock.last(":generateContent")
    assert recorded.path == f"{PREFIX}/gemini-2.5-flash:generateContent"
    assert recorded.header("Authorization") in {f"Bearer {t}" for t in env.mock.issued_tokens}
    assert recorded.header("x-goog-api-key") is None and env.token.encode() not in recorded.body


def test_the_access_token_is_cached_across_requests(env: Env) -> None:
    env.chat(model=FLASH, messages=user("warm up"))
    exchanges = len(env.mock.requests_to("/token"))
    assert exchanges <= 1, "at most one exchange (none when an earlier test already fetched the token)"
    for _ in range(3):
        env.chat(model=FLASH, messages=user("again"))
    authorizations = {r.header("Authorization") for r in env.mock.requests_to(":generateContent")}
    assert len(authorizations) == 1 and len(env.mock.requests_to("/token")) == exchanges


def test_stream_with_usage_and_reasoning(env: Env) -> None:
    request_id, chunks = env.chat(
        model=FLASH, messages=user("think in a stream"), stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply_text("think in a stream")
    usage = chunks[-1].usage
    assert usage.completion_tokens == 5 + THOUGHT_TOKENS and usage.completion_tokens_details.reasoning_tokens == 7
    row = env.gateway.wait_for_log(request_id)
    assert row["provider"] == "google-vertex" and row["output_tokens"] == 5 + THOUGHT_TOKENS
    assert row["input_tokens"] == usage.prompt_tokens


def test_tool_call_round_trip(env: Env) -> None:
    messages = user("weather in Paris")
    _, first = env.chat(model=FLASH, messages=messages, tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    _, second = env.chat(model=FLASH, messages=tool_round(first, messages, ["21C"]), tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == 'result: [{"name":"get_weather","response":{"output":"21C"}}]'


def test_gcs_image_is_read_by_vertex(env: Env) -> None:
    _, completion = env.chat(
        model=FLASH,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": "gs://b/cat.jpg"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == reply_text("describe", ["image/jpeg gs://b/cat.jpg"])


def test_embeddings_through_predict(env: Env) -> None:
    raw = env.client().embeddings.with_raw_response.create(
        model="vertex-main/embed", input=["a b c", "d"], dimensions=4
    )
    result = raw.parse()
    assert [d.embedding for d in result.data] == [embedding_vector("a b c", 4), embedding_vector("d", 4)]
    assert result.usage.prompt_tokens == count_tokens("a b c") + count_tokens("d")
    recorded = env.mock.last(":predict")
    assert recorded.path == f"{PREFIX}/text-embedding-005:predict"
    assert recorded.json == {
        "instances": [{"content": "a b c"}, {"content": "d"}],
        "parameters": {"outputDimensionality": 4},
    }
    assert env.gateway.wait_for_log(str(raw.headers["x-request-id"]))["input_tokens"] == 4


def test_safety_block_is_content_filter(env: Env) -> None:
    _, completion = env.chat(model=FLASH, messages=user("tell me something unsafe"))
    assert completion.choices[0].finish_reason == "content_filter" and completion.choices[0].message.content is None


def test_fixed_bearer_token_account(env: Env) -> None:
    _, completion = env.chat(model="vertex-bearer/flash", messages=user("bearer here"))
    assert completion.choices[0].message.content == reply_text("bearer here")
    assert env.mock.last().header("Authorization") == f"Bearer {STATIC_BEARER}"


def test_wrong_project_is_403_with_googles_message(env: Env) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        env.chat(model="vertex-elsewhere/flash", messages=user("x"))
    assert "someone-elses-project" in caught.value.message
    assert "/projects/someone-elses-project/" in env.mock.last().path


def test_refused_service_account_is_a_502_naming_the_model(env: Env) -> None:
    result = env.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=env.token,
        json={"model": "vertex-revoked/flash", "messages": user("x")},
    )
    assert result.status == 502
    error = assert_error_shape(result.json())
    assert "vertex-revoked/flash" in error["message"] and "invalid_grant" in error["message"]
    assert b"PRIVATE KEY" not in result.body
    assert env.mock.requests_to(":generateContent") == [], "no model call without a token"


def test_expired_or_foreign_token_is_401(env: Env) -> None:
    env.mock.fail_next(401, message="Request had invalid authentication credentials. (mock)", count=10)
    with pytest.raises(openai.AuthenticationError) as caught:
        env.chat(model=FLASH, messages=user("x"))
    assert caught.value.status_code == 401 and "invalid authentication credentials" in caught.value.message


def test_revoked_access_token_is_replaced_and_the_call_retried(env: Env) -> None:
    env.chat(model=FLASH, messages=user("warm up"))
    stale = env.mock.last(":generateContent").header("Authorization")
    env.mock.revoke_tokens()
    _, completion = env.chat(model=FLASH, messages=user("after revocation"))
    assert completion.choices[0].message.content == reply_text("after revocation")
    refused, retried = env.mock.requests_to(":generateContent")[-2:]
    assert refused.status == 401 and refused.header("Authorization") == stale
    assert retried.status == 200 and retried.header("Authorization") not in (None, stale)
    assert env.mock.requests_to("/token")[-1].received_at < retried.received_at


def test_key_json_written_inline_as_a_mapping(env: Env) -> None:
    _, completion = env.chat(model="vertex-inline/flash", messages=user("inline key"))
    assert completion.choices[0].message.content == reply_text("inline key")
    assert env.mock.last().header("Authorization") in {f"Bearer {t}" for t in env.mock.issued_tokens}


def test_models_of_one_account_share_one_access_token(env: Env) -> None:
    env.chat(model=FLASH, messages=user("chat first"))
    exchanges = len(env.mock.requests_to("/token"))
    env.client().embeddings.create(model="vertex-main/embed", input="then embed")
    assert len(env.mock.requests_to("/token")) == exchanges
    chat_auth = env.mock.last(":generateContent").header("Authorization")
    assert env.mock.last(":predict").header("Authorization") == chat_auth
