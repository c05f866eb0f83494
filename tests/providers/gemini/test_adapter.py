"""The two adapters as config compile and the router use them: URLs, auth, and one exchange each way."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import orjson
import pytest

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_text
from relaygate.config.problems import ConfigError
from relaygate.errors import UnsupportedModelType
from relaygate.providers.base import OPERATIONS, UpstreamCall
from relaygate.providers.registry import ADAPTERS, default_base_url
from relaygate.runtime.targets import Target
from tests.upstreams.gemini_mock import GeminiMock, reply_text, service_account_key

OPS = {op.name: op for op in OPERATIONS}
GEMINI = """
type: provider-account/google-gemini
name: gemini-main
{base}
auth_data: {type: api-key, api_key: gm-key-123}
integrations:
  - {name: flash, type: integration/model/google-gemini, model_id: gemini-2.5-flash, model_types: [chat]}
  - {name: tuned, type: integration/model/google-gemini, model_id: tunedModels/my-model, model_types: [chat]}
  - {name: embed, type: integration/model/google-gemini, model_id: gemini-embedding-001, model_types: [embedding]}
"""
VERTEX = """
type: provider-account/google-vertex
name: vertex-main
{base}
{extra}
auth_data: {auth}
integrations:
  - {name: flash, type: integration/model/google-vertex, model_id: gemini-2.5-flash, model_types: [chat]}
  - {name: endpoint, type: integration/model/google-vertex, model_id: projects/p9/locations/europe-west4/endpoints/123,
     model_types: [chat]}
  - {name: embed, type: integration/model/google-vertex, model_id: text-embedding-005, model_types: [embedding]}
"""


def compile_text(text: str) -> dict[str, Target]:
    return compile_manifests(load_text(text)).models


def vertex(auth: str, base: str = "", extra: str = "") -> dict[str, Target]:
    return compile_text(VERTEX.replace("{base}", base).replace("{extra}", extra).replace("{auth}", auth))


def key_auth(info: dict[str, Any]) -> str:
    return "{type: gcp-service-account, key_json: " + orjson.dumps(json.dumps(info)).decode() + "}"


def test_adapters_serve_chat_and_embeddings_only() -> None:
    for kind in ("google-gemini", "google-vertex"):
        assert ADAPTERS[kind].operations == frozenset({"chat", "embeddings"})  # type: ignore[attr-defined]


def test_default_base_urls() -> None:
    assert default_base_url("google-gemini") == "https://generativelanguage.googleapis.com"
    assert default_base_url("google-vertex") == "https://us-central1-aiplatform.googleapis.com"

    class Account:
        region = "europe-west4"

    assert default_base_url("google-vertex", Account()) == "https://europe-west4-aiplatform.googleapis.com"
    Account.region = "global"
    assert default_base_url("google-vertex", Account()) == "https://aiplatform.googleapis.com"


def test_gemini_target_sends_the_key_in_x_goog_api_key() -> None:
    target = compile_text(GEMINI.replace("{base}", ""))["gemini-main/flash"]
    assert target.base_url == "https://generativelanguage.googleapis.com"
    assert dict(target.headers) == {"x-goog-api-key": "gm-key-123"}
    assert b"gm-key-123" in target.secrets


def test_gemini_urls() -> None:
    models = compile_text(GEMINI.replace("{base}", ""))
    adapter = ADAPTERS["google-gemini"]
    assert adapter.model_url(models["gemini-main/flash"], "generateContent") == (  # type: ignore[attr-defined]
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert adapter.model_url(models["gemini-main/tuned"], "generateContent") == (  # type: ignore[attr-defined]
        "https://generativelanguage.googleapis.com/v1beta/tunedModels/my-model:generateContent"
    )


def test_vertex_project_defaults_to_the_key_and_urls_use_region() -> None:
    info, _ = service_account_key("http://x/token", "keyproj")
    models = vertex(key_auth(info), extra="region: europe-west4")
    flash, endpoint = models["vertex-main/flash"], models["vertex-main/endpoint"]
    assert flash.options["project"] == "keyproj" and flash.options["region"] == "europe-west4"
    assert flash.headers == ()
    adapter = ADAPTERS["google-vertex"]
    assert adapter.model_url(flash, "streamGenerateContent") == (  # type: ignore[attr-defined]
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/keyproj/locations/europe-west4/publishers/google/"
        "models/gemini-2.5-flash:streamGenerateContent"
    )
    assert adapter.model_url(endpoint, "generateContent") == (  # type: ignore[attr-defined]
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p9/locations/europe-west4/endpoints/123"
        ":generateContent"
    )


def test_models_of_one_vertex_account_share_one_token_source() -> None:
    info, _ = service_account_key("http://x/token", "keyproj")
    models = vertex(key_auth(info))
    assert models["vertex-main/flash"].options["tokens"] is models["vertex-main/embed"].options["tokens"]
    again = vertex(key_auth(info))  # another compile (a reload): its own source
    assert again["vertex-main/flash"].options["tokens"] is not models["vertex-main/flash"].options["tokens"]


def test_vertex_account_project_overrides_the_key() -> None:
    info, _ = service_account_key("http://x/token", "keyproj")
    assert vertex(key_auth(info), extra="project_id: other")["vertex-main/flash"].options["project"] == "other"


def test_vertex_bearer_auth_needs_a_project() -> None:
    with pytest.raises(ConfigError) as caught:
        vertex("{type: bearer-auth, bearer_token: tok}")
    assert "project_id" in str(caught.value)
    target = vertex("{type: bearer-auth, bearer_token: tok}", extra="project_id: p1")["vertex-main/flash"]
    assert dict(target.headers) == {"Authorization": "Bearer tok"}


def test_vertex_unusable_key_is_a_config_problem_at_auth_data() -> None:
    with pytest.raises(ConfigError) as caught:
        vertex('{type: gcp-service-account, key_json: "{\\"type\\": \\"service_account\\"}"}')
    problem = caught.value.problems[0]
    assert problem.field == "auth_data" and "lacks client_email, private_key, token_uri" in str(problem)


def test_unserved_model_type_is_refused_at_compile() -> None:
    text = GEMINI.replace("{base}", "").replace("model_types: [embedding]", "model_types: [rerank]")
    with pytest.raises(ConfigError, match="does not serve rerank"):
        compile_text(text)


def call(target: Target, operation: str, payload: dict[str, Any], stream: bool = False) -> UpstreamCall:
    return UpstreamCall(target, OPS[operation], {**payload, "model": target.model_id}, b"", None, stream, 10.0, "r1")


async def test_gemini_chat_exchange() -> None:
    async with GeminiMock("gm-key-123") as mock, aiohttp.ClientSession() as session:
        target = compile_text(GEMINI.replace("{base}", f"base_url: {mock.url}"))["gemini-main/flash"]
        response = await target.adapter.open(
            session, call(target, "chat", {"messages": [{"role": "user", "content": "hello adapter"}]})
        )
        body = orjson.loads(await response.read())
        response.close()
        assert response.status == 200 and body["choices"][0]["message"]["content"] == reply_text("hello adapter")
        recorded = mock.last(":generateContent")
        assert recorded.header("x-goog-api-key") == "gm-key-123"
        assert recorded.json == {"contents": [{"role": "user", "parts": [{"text": "hello adapter"}]}]}


async def test_gemini_stream_exchange_asks_for_sse() -> None:
    async with GeminiMock("gm-key-123") as mock, aiohttp.ClientSession() as session:
        target = compile_text(GEMINI.replace("{base}", f"base_url: {mock.url}"))["gemini-main/flash"]
        response = await target.adapter.open(
            session,
            call(target, "chat", {"messages": [{"role": "user", "content": "one two"}], "stream": True}, stream=True),
        )
        raw = b"".join([chunk async for chunk in response.iter_chunks()])
        response.close()
        assert response.content_type == "text/event-stream" and raw.endswith(b"data: [DONE]\n\n")
        assert mock.last().query == {"alt": "sse"}


async def test_vertex_embeddings_exchange_uses_predict_with_a_bearer_token() -> None:
    async with GeminiMock() as mock, aiohttp.ClientSession() as session:
        models = vertex(key_auth(mock.new_service_account()), base=f"base_url: {mock.url}")
        target = models["vertex-main/embed"]
        response = await target.adapter.open(session, call(target, "embeddings", {"input": ["a b c", "d"]}))
        body = orjson.loads(await response.read())
        response.close()
        assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4} and len(body["data"]) == 2
        recorded = mock.last(":predict")
        assert recorded.header("Authorization") == f"Bearer {mock.issued_tokens[0]}"


async def test_errors_come_back_openai_shaped_with_the_mapped_status() -> None:
    async with GeminiMock("gm-key-123") as mock, aiohttp.ClientSession() as session:
        target = compile_text(GEMINI.replace("{base}", f"base_url: {mock.url}"))["gemini-main/flash"]
        mock.fail_next(503)
        response = await target.adapter.open(
            session, call(target, "chat", {"messages": [{"role": "user", "content": "x"}]})
        )
        body = orjson.loads(await response.read())
        response.close()
        assert response.status == 503 and body["error"]["type"] == "service_unavailable"
        assert body["error"]["message"] == "The model is overloaded. Please try again later."


async def test_operations_outside_chat_and_embeddings_are_refused() -> None:
    target = compile_text(GEMINI.replace("{base}", ""))["gemini-main/flash"]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UnsupportedModelType):
            await target.adapter.open(session, call(target, "moderations", {"input": "x"}))
