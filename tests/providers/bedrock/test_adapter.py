"""The Bedrock adapter against the mock in-process: config hooks, signing, URLs, embeddings fan-out, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_text
from relaygate.config.problems import ConfigError
from relaygate.errors import BadGateway, BadRequest, UnsupportedModelType
from relaygate.providers.base import OPERATIONS, UpstreamCall
from relaygate.providers.bedrock.adapter import BedrockAdapter, model_url
from relaygate.providers.bedrock.signing import SigV4Signer
from relaygate.runtime.targets import Target
from tests.upstreams.bedrock_mock import ACCESS_KEY_ID, API_KEY, REGION, SECRET_ACCESS_KEY, BedrockMock
from tests.upstreams.openai_mock import embedding_vector

OPS = {op.name: op for op in OPERATIONS}
ADAPTER = BedrockAdapter()
MANIFEST = """
type: provider-account/aws-bedrock
name: bedrock-aws
auth_data: {type: aws, access_key_id: AKIDEXAMPLE, secret_access_key: "${SECRET}", region: eu-west-1}
integrations:
  - {name: claude, type: integration/model/aws-bedrock, model_id: "anthropic.claude-3-5-haiku-20241022-v1:0",
     model_types: [chat]}
  - {name: titan, type: integration/model/aws-bedrock, model_id: "amazon.titan-embed-text-v2:0",
     model_types: [embedding]}
---
type: provider-account/aws-bedrock
name: bedrock-key
region: ap-south-1
auth_data: {type: api-key, api_key: "${API_KEY}"}
integrations:
  - {name: claude, type: integration/model/aws-bedrock, model_id: "anthropic.claude-3-5-haiku-20241022-v1:0",
     model_types: [chat]}
"""


def test_compiled_aws_target_signs_and_defaults_to_the_regional_endpoint() -> None:
    snapshot = compile_manifests(load_text(MANIFEST, env={"SECRET": "s3cr3t-value", "API_KEY": "bedrock-key-1"}))
    target = snapshot.models["bedrock-aws/claude"]
    assert target.base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert isinstance(target.options["signer"], SigV4Signer) and target.options["region"] == "eu-west-1"
    assert dict(target.headers) == {}
    assert b"s3cr3t-value" in target.secrets
    assert "s3cr3t-value" not in repr(target.options)


def test_compiled_api_key_target_sends_bearer_and_uses_account_region() -> None:
    snapshot = compile_manifests(load_text(MANIFEST, env={"SECRET": "s", "API_KEY": "bedrock-key-1"}))
    target = snapshot.models["bedrock-key/claude"]
    assert target.base_url == "https://bedrock-runtime.ap-south-1.amazonaws.com"
    assert dict(target.headers) == {"Authorization": "Bearer bedrock-key-1"}
    assert "signer" not in target.options


def test_rerank_integration_is_refused_at_compile() -> None:
    text = MANIFEST.replace("model_types: [embedding]", "model_types: [rerank]")
    with pytest.raises(ConfigError) as caught:
        compile_manifests(load_text(text, env={"SECRET": "s", "API_KEY": "k"}))
    assert "does not serve rerank" in str(caught.value)


def test_header_auth_is_a_config_error() -> None:
    class Auth:
        type = "header"

    with pytest.raises(ValueError, match="aws"):
        ADAPTER.configure(type("Account", (), {"region": "us-east-1"})(), Auth())


def test_account_region_wins_over_credential_region() -> None:
    auth = type("Auth", (), {"type": "aws", "region": "us-east-1"})()
    assert ADAPTER.default_base_url(type("A", (), {"region": "eu-central-1", "auth_data": auth})()) == (
        "https://bedrock-runtime.eu-central-1.amazonaws.com"
    )
    assert ADAPTER.default_base_url(type("A", (), {"region": None, "auth_data": auth})()) == (
        "https://bedrock-runtime.us-east-1.amazonaws.com"
    )


@pytest.mark.parametrize(
    ("model_id", "path"),
    [  # exactly what boto3 sends for these model ids
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
            "us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse",
        ),
    ],
)
def test_model_url_escapes_the_model_id_as_one_path_segment(model_id: str, path: str) -> None:
    assert model_url("https://bedrock-runtime.us-east-1.amazonaws.com", model_id, "converse") == (
        "https://bedrock-runtime.us-east-1.amazonaws.com" + path
    )


def test_signer_adds_sigv4_headers_scoped_to_region_and_bedrock() -> None:
    signer = SigV4Signer("AKIDEXAMPLE", "secret", "session-token-1", "eu-west-1")
    headers = signer.sign(
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/m/converse", b"{}", {"Content-Type": "application/json"}
    )
    credential = headers["Authorization"].split("Credential=")[1].split(",")[0]
    assert credential.split("/")[0] == "AKIDEXAMPLE" and credential.split("/")[2:] == [
        "eu-west-1",
        "bedrock",
        "aws4_request",
    ]
    assert "x-amz-security-token" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "session-token-1" and headers["X-Amz-Date"]
    assert "secret" not in repr(signer)


def test_signature_covers_the_body() -> None:
    signer = SigV4Signer("AKIDEXAMPLE", "secret", None, "eu-west-1")
    url = "https://bedrock-runtime.eu-west-1.amazonaws.com/model/m/converse"
    first = signer.sign(url, b'{"a":1}', {})["Authorization"]
    assert signer.sign(url, b'{"a":2}', {})["Authorization"] != first


# -- against the mock -------------------------------------------------------------------------------


@pytest.fixture
async def mock() -> AsyncIterator[BedrockMock]:
    async with BedrockMock() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def target(
    base_url: str,
    model_id: str,
    *,
    secret: str = SECRET_ACCESS_KEY,
    region: str = REGION,
    token: str | None = None,
    api_key: str | None = None,
) -> Target:
    if api_key is not None:
        auth: Any = type("Auth", (), {"type": "api-key", "api_key": api_key})()
    else:
        auth = type(
            "Auth",
            (),
            {
                "type": "aws",
                "access_key_id": ACCESS_KEY_ID,
                "secret_access_key": secret,
                "region": region,
                "session_token": token,
            },
        )()
    headers, options = ADAPTER.configure(type("Account", (), {"region": region})(), auth)
    return Target(
        name="bedrock/test",
        account="bedrock",
        integration="test",
        provider="aws-bedrock",
        model_id=model_id,
        model_types=frozenset({"chat", "embedding"}),
        adapter=ADAPTER,
        base_url=base_url,
        headers=tuple(headers.items()),
        options=options,
    )


def call(t: Target, payload: dict[str, Any], operation: str = "chat", stream: bool = False) -> UpstreamCall:
    return UpstreamCall(t, OPS[operation], {"model": t.model_id, **payload}, b"", None, stream, 10.0, "req-1")


HELLO = {"messages": [{"role": "user", "content": "hello bedrock"}]}


async def test_arn_model_id_reaches_the_mock_as_one_segment(mock: BedrockMock, session: aiohttp.ClientSession) -> None:
    arn = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0"
    response = await ADAPTER.open(session, call(target(mock.url, arn), HELLO))
    body = orjson.loads(await response.read())
    assert response.status == 200 and body["choices"][0]["message"]["content"] == "echo: hello bedrock"
    assert mock.last().model_id == arn


async def test_session_token_is_sent_and_signed(mock: BedrockMock, session: aiohttp.ClientSession) -> None:
    response = await ADAPTER.open(session, call(target(mock.url, "m.model", token="tok-123"), HELLO))
    assert response.status == 200
    recorded = mock.last()
    assert recorded.headers["X-Amz-Security-Token"] == "tok-123"
    assert "x-amz-security-token" in recorded.headers["Authorization"]


async def test_api_key_is_sent_as_bearer(mock: BedrockMock, session: aiohttp.ClientSession) -> None:
    response = await ADAPTER.open(session, call(target(mock.url, "m.model", api_key=API_KEY), HELLO))
    assert response.status == 200
    assert mock.last().headers["Authorization"] == f"Bearer {API_KEY}"


async def test_wrong_region_is_rejected_by_the_mock_as_401(mock: BedrockMock, session: aiohttp.ClientSession) -> None:
    response = await ADAPTER.open(session, call(target(mock.url, "m.model", region="eu-west-3"), HELLO))
    assert response.status == 401
    error = orjson.loads(await response.read())["error"]
    assert error["code"] == "InvalidSignatureException" and "region" in error["message"]


async def test_tampered_body_fails_the_mock_signature_check(mock: BedrockMock, session: aiohttp.ClientSession) -> None:
    t = target(mock.url, "m.model")
    url = model_url(mock.url, "m.model", "converse")
    headers = t.options["signer"].sign(url, b'{"messages":[]}', {"Content-Type": "application/json"})
    async with session.post(
        url, data=orjson.dumps({"messages": [{"role": "user", "content": [{"text": "x"}]}]}), headers=headers
    ) as response:
        assert response.status == 403
        assert response.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")


async def test_unknown_access_key_is_unrecognized_client(mock: BedrockMock, session: aiohttp.ClientSession) -> None:
    mock.access_keys = {"AKIDSOMEONEELSE": SECRET_ACCESS_KEY}
    response = await ADAPTER.open(session, call(target(mock.url, "m.model"), HELLO))
    assert response.status == 401
    assert orjson.loads(await response.read())["error"]["code"] == "UnrecognizedClientException"


async def test_stale_signature_is_rejected(mock: BedrockMock, session: aiohttp.ClientSession) -> None:
    t = target(mock.url, "m.model")
    url = model_url(mock.url, "m.model", "converse")
    body = orjson.dumps({"messages": [{"role": "user", "content": [{"text": "x"}]}]})
    headers = t.options["signer"].sign(url, body, {"Content-Type": "application/json"})
    stale = "20200101T000000Z"
    headers["Authorization"] = headers["Authorization"].replace(headers["X-Amz-Date"][:8], stale[:8])
    headers["X-Amz-Date"] = stale
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 403
        assert "Signature expired" in (await response.json())["message"]


async def test_titan_list_input_makes_one_call_per_text_in_order(
    mock: BedrockMock, session: aiohttp.ClientSession
) -> None:
    texts = [f"text number {i}" for i in range(12)]
    t = target(mock.url, "amazon.titan-embed-text-v2:0")
    response = await ADAPTER.open(session, call(t, {"input": texts, "dimensions": 256}, "embeddings"))
    body = orjson.loads(await response.read())
    assert [d["embedding"] for d in body["data"]] == [embedding_vector(x, 256) for x in texts]
    assert [d["index"] for d in body["data"]] == list(range(12))
    assert body["usage"] == {"prompt_tokens": 36, "total_tokens": 36}
    assert sorted(orjson.loads(r.body)["inputText"] for r in mock.requests) == sorted(texts)


async def test_titan_first_error_answers_for_the_whole_request(
    mock: BedrockMock, session: aiohttp.ClientSession
) -> None:
    mock.fail_next("ThrottlingException", count=1)
    t = target(mock.url, "amazon.titan-embed-text-v1")
    response = await ADAPTER.open(session, call(t, {"input": ["a", "b", "c"]}, "embeddings"))
    assert response.status == 429
    assert orjson.loads(await response.read())["error"]["code"] == "ThrottlingException"
    response.close()


async def test_embeddings_for_a_chat_model_id_is_400(mock: BedrockMock, session: aiohttp.ClientSession) -> None:
    with pytest.raises(BadRequest) as caught:
        await ADAPTER.open(session, call(target(mock.url, "anthropic.claude-v2"), {"input": "x"}, "embeddings"))
    assert caught.value.param == "model" and not mock.requests


async def test_unserved_operation_is_refused(mock: BedrockMock, session: aiohttp.ClientSession) -> None:
    with pytest.raises(UnsupportedModelType):
        await ADAPTER.open(session, call(target(mock.url, "m.model"), {"input": "x"}, "moderations"))


async def test_malformed_converse_answer_is_a_502(session: aiohttp.ClientSession) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(text="this is not json", content_type="application/json")

    app = web.Application()
    app.router.add_post("/model/{model}/converse", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        response = await ADAPTER.open(session, call(target(f"http://127.0.0.1:{port}", "m.model"), HELLO))
        with pytest.raises(BadGateway):
            await response.read()
    finally:
        await runner.cleanup()
