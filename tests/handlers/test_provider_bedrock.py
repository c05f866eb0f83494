"""AWS Bedrock end to end: a real `relaygate serve` in front of the Bedrock mock, driven by the OpenAI SDK.

The mock verifies every SigV4 signature (or the Bedrock API key), so each passing call also proves the
gateway signed the exact bytes and URL it sent.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import render
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.aws_sigv4 import expected_signature, sdk_request_path
from tests.upstreams.bedrock_mock import (
    ACCESS_KEY_ID,
    API_KEY,
    REGION,
    SECRET_ACCESS_KEY,
    BedrockMock,
    input_tokens,
    tool_input,
)
from tests.upstreams.openai_mock import embedding_vector, png_image

USER = "carol@example.com"
WRONG_SECRET = "wrong-bedrock-secret-Qq7/Zz"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE//session+token=="
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
PROFILE_ARN = f"arn:aws:bedrock:{REGION}:123456789012:inference-profile/{PROFILE}"
CONFIG = """\
type: provider-account/aws-bedrock
name: bedrock
base_url: http://127.0.0.1:{port}
auth_data: {type: aws, access_key_id: {akid}, secret_access_key: "{secret}", region: {region}}
integrations:
  - {name: haiku, type: integration/model/aws-bedrock, model_id: "anthropic.claude-3-5-haiku-20241022-v1:0",
     model_types: [chat]}
  - {name: sonnet, type: integration/model/aws-bedrock, model_id: "{profile}", model_types: [chat]}
  - {name: sonnet-arn, type: integration/model/aws-bedrock, model_id: "{profile_arn}", model_types: [chat]}
  - {name: titan, type: integration/model/aws-bedrock, model_id: "amazon.titan-embed-text-v2:0",
     model_types: [embedding]}
  - {name: cohere, type: integration/model/aws-bedrock, model_id: "cohere.embed-english-v3", model_types: [embedding]}
---
type: provider-account/aws-bedrock
name: bedrock-key
base_url: http://127.0.0.1:{port}
region: {region}
auth_data: {type: api-key, api_key: {api_key}}
integrations:
  - {name: haiku, type: integration/model/aws-bedrock, model_id: "anthropic.claude-3-5-haiku-20241022-v1:0",
     model_types: [chat]}
---
type: provider-account/aws-bedrock
name: bedrock-wrong
base_url: http://127.0.0.1:{port}
auth_data: {type: aws, access_key_id: {akid}, secret_access_key: "{wrong}", region: {region}}
integrations:
  - {name: haiku, type: integration/model/aws-bedrock, model_id: "anthropic.claude-3-5-haiku-20241022-v1:0",
     model_types: [chat]}
"""
STS_CONFIG = """\
type: provider-account/aws-bedrock
name: bedrock-sts
base_url: http://127.0.0.1:{port}
region: {region}
auth_data: {type: aws, access_key_id: {akid}, secret_access_key: "{secret}", session_token: "{session_token}"}
integrations:
  - {name: sonnet, type: integration/model/aws-bedrock, model_id: "{profile}", model_types: [chat]}
"""
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello bedrock gateway"},
]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}},
}


@dataclass
class Bedrock:
    gateway: GatewayThread
    mock: BedrockMock
    token: str

    def client(self) -> openai.OpenAI:
        return self.gateway.client(self.token)


@pytest.fixture(scope="module")
def bedrock_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bedrock]:
    mock = BedrockMock().start_in_thread()
    config = render(
        CONFIG,
        port=mock.port,
        akid=ACCESS_KEY_ID,
        secret=SECRET_ACCESS_KEY,
        region=REGION,
        profile=PROFILE,
        profile_arn=PROFILE_ARN,
        api_key=API_KEY,
        wrong=WRONG_SECRET,
    )
    gateway = GatewayThread(Path(tmp_path_factory.mktemp("bedrock")), config)
    try:
        gateway.start()
        yield Bedrock(gateway, mock, gateway.create_token(user=USER))
    finally:
        gateway.stop()
        mock.stop_thread()


@pytest.fixture
def bedrock(bedrock_stack: Bedrock) -> Bedrock:
    bedrock_stack.mock.reset()
    return bedrock_stack


# -- chat -------------------------------------------------------------------------------------------


def test_chat_returns_converse_answer_with_usage(bedrock: Bedrock) -> None:
    completion = bedrock.client().chat.completions.create(model="bedrock/haiku", messages=MESSAGES)
    assert completion.choices[0].message.content == "echo: hello bedrock gateway"
    assert completion.choices[0].finish_reason == "stop"
    recorded = bedrock.mock.last("converse")
    assert recorded.action == "converse" and recorded.usage is not None
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == recorded.usage["inputTokens"] == input_tokens(recorded.json)
    assert completion.usage.completion_tokens == recorded.usage["outputTokens"]


def test_chat_request_is_translated_and_sigv4_signed(bedrock: Bedrock) -> None:
    bedrock.client().chat.completions.create(model="bedrock/haiku", messages=MESSAGES, max_tokens=50, temperature=0.2)
    recorded = bedrock.mock.last("converse")
    assert recorded.json == {
        "system": [{"text": "be brief"}],
        "messages": [{"role": "user", "content": [{"text": "hello bedrock gateway"}]}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.2},
    }
    scope = recorded.headers["Authorization"].split("Credential=")[1].split(",")[0].split("/")
    assert scope[0] == ACCESS_KEY_ID and scope[2:] == [REGION, "bedrock", "aws4_request"]
    assert recorded.path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse", "as boto3 sends it"


def test_chat_stream_relays_text_finish_and_usage(bedrock: Bedrock) -> None:
    chunks = list(
        bedrock.client().chat.completions.create(
            model="bedrock/haiku", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == "echo: hello bedrock gateway"
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    recorded = bedrock.mock.last("converse-stream")
    assert recorded.usage is not None and chunks[-1].usage.completion_tokens == recorded.usage["outputTokens"]
    assert len({c.id for c in chunks}) == 1


def test_stream_without_include_usage_hides_the_usage_chunk(bedrock: Bedrock) -> None:
    chunks = list(bedrock.client().chat.completions.create(model="bedrock/haiku", messages=MESSAGES, stream=True))
    assert chunks and all(c.choices and c.usage is None for c in chunks)


def test_max_tokens_cut_is_finish_reason_length(bedrock: Bedrock) -> None:
    completion = bedrock.client().chat.completions.create(model="bedrock/haiku", messages=MESSAGES, max_tokens=2)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "echo: hello "


@pytest.mark.parametrize("model", ["bedrock/sonnet", "bedrock/sonnet-arn"])
def test_inference_profile_ids_work_as_model_ids(bedrock: Bedrock, model: str) -> None:
    completion = bedrock.client().chat.completions.create(model=model, messages=MESSAGES)
    assert completion.choices[0].message.content == "echo: hello bedrock gateway"
    recorded = bedrock.mock.last("converse")
    assert recorded.model_id == (PROFILE if model == "bedrock/sonnet" else PROFILE_ARN)
    if model == "bedrock/sonnet-arn":
        assert "inference-profile%2F" in recorded.path, "the ARN's slash stays inside one path segment"


def _signature_fields(authorization: str) -> dict[str, str]:
    _, _, rest = authorization.partition(" ")
    return {k.strip(): v for k, _, v in (part.partition("=") for part in rest.split(","))}


@pytest.mark.parametrize(
    ("model", "model_id"), [("bedrock/haiku", HAIKU), ("bedrock/sonnet", PROFILE), ("bedrock/sonnet-arn", PROFILE_ARN)]
)
@pytest.mark.parametrize("stream", [False, True])
def test_model_id_is_escaped_and_signed_as_the_aws_sdk_does(
    bedrock: Bedrock, model: str, model_id: str, stream: bool
) -> None:
    answer = bedrock.client().chat.completions.create(model=model, messages=MESSAGES, stream=stream)
    if stream:
        list(answer)  # type: ignore[arg-type]
    recorded = bedrock.mock.last("converse")
    path = sdk_request_path(model_id, "converse-stream" if stream else "converse", REGION)
    assert recorded.path == path, "the path botocore sends for this model id"
    fields = _signature_fields(recorded.headers["Authorization"])
    signed = {name: recorded.headers[name] for name in fields["SignedHeaders"].split(";")}
    url = f"http://{recorded.headers['Host']}{path}"
    assert fields["Signature"] == expected_signature("POST", url, recorded.body, signed, SECRET_ACCESS_KEY, REGION)


def test_session_token_is_sent_and_signed_with_the_region_on_the_account(
    bedrock: Bedrock, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = render(
        STS_CONFIG,
        port=bedrock.mock.port,
        akid=ACCESS_KEY_ID,
        secret=SECRET_ACCESS_KEY,
        region=REGION,
        profile=PROFILE,
        session_token=SESSION_TOKEN,
    )
    gateway = GatewayThread(Path(tmp_path_factory.mktemp("bedrock-sts")), config)
    try:
        gateway.start()
        client = gateway.client(gateway.create_token(user=USER))
        completion = client.chat.completions.create(model="bedrock-sts/sonnet", messages=MESSAGES)
    finally:
        gateway.stop()
    assert completion.choices[0].message.content == "echo: hello bedrock gateway"
    recorded = bedrock.mock.last("converse")
    assert recorded.headers["X-Amz-Security-Token"] == SESSION_TOKEN
    fields = _signature_fields(recorded.headers["Authorization"])
    assert "x-amz-security-token" in fields["SignedHeaders"].split(";")
    assert fields["Credential"].split("/")[2] == REGION


def test_api_key_account_sends_bearer_key(bedrock: Bedrock) -> None:
    completion = bedrock.client().chat.completions.create(model="bedrock-key/haiku", messages=MESSAGES)
    assert completion.choices[0].message.content == "echo: hello bedrock gateway"
    assert bedrock.mock.last("converse").headers["Authorization"] == f"Bearer {API_KEY}"


# -- tools and images -------------------------------------------------------------------------------


def test_tool_call_non_stream(bedrock: Bedrock) -> None:
    text = "what is get_weather in Paris"
    completion = bedrock.client().chat.completions.create(
        model="bedrock/haiku", messages=[{"role": "user", "content": text}], tools=[WEATHER, TIME]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("tooluse_")
    assert orjson.loads(call.function.arguments) == tool_input(WEATHER["function"]["parameters"], text)
    sent = bedrock.mock.last("converse").json["toolConfig"]
    assert sent["tools"][0] == {
        "toolSpec": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "inputSchema": {"json": WEATHER["function"]["parameters"]},
        }
    }


def test_streamed_tool_calls_arrive_with_split_arguments(bedrock: Bedrock) -> None:
    text = "use get_weather and get_time please"
    chunks = list(
        bedrock.client().chat.completions.create(
            model="bedrock/haiku", messages=[{"role": "user", "content": text}], tools=[WEATHER, TIME], stream=True
        )
    )
    calls: dict[int, dict[str, Any]] = {}
    fragments: dict[int, int] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": call.id, "name": None, "arguments": ""})
            if call.function and call.function.name:
                entry["name"] = call.function.name
            if call.function and call.function.arguments:
                entry["arguments"] += call.function.arguments
                fragments[call.index] = fragments.get(call.index, 0) + 1
    assert sorted(calls) == [0, 1]
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert orjson.loads(calls[0]["arguments"]) == tool_input(WEATHER["function"]["parameters"], text)
    assert orjson.loads(calls[1]["arguments"]) == tool_input(TIME["function"]["parameters"], text)
    assert min(fragments.values()) > 1, "arguments must arrive split across chunks"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


def test_tool_result_round_trip(bedrock: Bedrock) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "what is get_weather in Paris"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "tooluse_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "tooluse_abc", "content": "sunny, 24C"},
    ]
    completion = bedrock.client().chat.completions.create(model="bedrock/haiku", messages=messages, tools=[WEATHER])
    assert completion.choices[0].message.content == "tool result: sunny, 24C"
    sent = bedrock.mock.last("converse").json["messages"]
    assert sent[1]["content"] == [
        {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}}
    ]
    assert sent[2] == {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "tooluse_abc", "content": [{"text": "sunny, 24C"}]}}],
    }


def test_image_data_url_reaches_bedrock_as_bytes(bedrock: Bedrock) -> None:
    image = png_image()
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    completion = bedrock.client().chat.completions.create(
        model="bedrock/haiku",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": url}}],
            }
        ],
    )
    assert completion.choices[0].message.content == f"echo: describe [image png {len(image)} bytes]"


def test_http_image_url_is_a_400_before_any_upstream_call(bedrock: Bedrock) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock.client().chat.completions.create(
            model="bedrock/haiku",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}],
                }
            ],
        )
    assert "data URL" in caught.value.message
    assert not bedrock.mock.requests


# -- embeddings -------------------------------------------------------------------------------------


def test_titan_embeddings_for_a_list_input(bedrock: Bedrock) -> None:
    texts = ["the first text", "second", "a third one here"]
    result = bedrock.client().embeddings.create(model="bedrock/titan", input=texts, dimensions=256)
    assert [d.embedding for d in result.data] == [embedding_vector(t, 256) for t in texts]
    assert result.usage.prompt_tokens == 3 + 1 + 4
    assert sorted(orjson.loads(r.body)["inputText"] for r in bedrock.mock.requests) == sorted(texts)


def test_titan_embeddings_float_format(bedrock: Bedrock) -> None:
    result = bedrock.client().embeddings.create(model="bedrock/titan", input="hello", encoding_format="float")
    assert result.data[0].embedding == embedding_vector("hello", 1024)


def test_cohere_embeddings_default_input_type_and_override(bedrock: Bedrock) -> None:
    client = bedrock.client()
    result = client.embeddings.create(model="bedrock/cohere", input=["alpha beta", "gamma"])
    assert result.data[1].embedding == embedding_vector("search_document:gamma", 1024)
    assert result.usage.prompt_tokens == 3
    client.embeddings.create(model="bedrock/cohere", input="q", extra_body={"input_type": "search_query"})
    assert bedrock.mock.last("invoke").json == {"texts": ["q"], "input_type": "search_query"}


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "status", "exception"),
    [
        ("ThrottlingException", 429, openai.RateLimitError),
        ("ValidationException", 400, openai.BadRequestError),
        ("AccessDeniedException", 403, openai.PermissionDeniedError),
        ("ResourceNotFoundException", 404, openai.NotFoundError),
        ("ServiceUnavailableException", 503, openai.InternalServerError),
        ("ModelTimeoutException", 504, openai.InternalServerError),
    ],
)
def test_bedrock_errors_map_to_openai_errors(
    bedrock: Bedrock, error_type: str, status: int, exception: type[openai.APIStatusError]
) -> None:
    bedrock.mock.fail_next(error_type, message=f"{error_type} from the mock", count=10)
    with pytest.raises(exception) as caught:
        bedrock.client().chat.completions.create(model="bedrock/haiku", messages=MESSAGES)
    assert caught.value.status_code == status
    error = assert_error_shape(caught.value.response.json())
    assert error["message"] == f"{error_type} from the mock" and error["code"] == error_type


def test_embeddings_error_maps_too(bedrock: Bedrock) -> None:
    bedrock.mock.fail_next("ThrottlingException", count=10)
    with pytest.raises(openai.RateLimitError):
        bedrock.client().embeddings.create(model="bedrock/titan", input=["a", "b"])


def test_exception_event_mid_stream_reaches_the_client_as_an_error(bedrock: Bedrock) -> None:
    bedrock.mock.fail_stream_after(3, "modelStreamErrorException", "the model broke mid-stream (mock)")
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in bedrock.client().chat.completions.create(model="bedrock/haiku", messages=MESSAGES, stream=True):
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "echo: hello ", "content sent before the failure reaches the client"
    assert "the model broke mid-stream (mock)" in str(caught.value)


@pytest.mark.parametrize(
    ("exception_type", "status", "exception"),
    [
        ("throttlingException", 429, openai.RateLimitError),
        ("validationException", 400, openai.BadRequestError),
        ("serviceUnavailableException", 503, openai.InternalServerError),
        ("modelStreamErrorException", 502, openai.InternalServerError),
    ],
)
def test_exception_event_before_content_is_the_http_error_it_stands_for(
    bedrock: Bedrock, exception_type: str, status: int, exception: type[openai.APIStatusError]
) -> None:
    bedrock.mock.fail_stream_after(1, exception_type, "refused mid-stream (mock)")
    with pytest.raises(exception) as caught:
        list(bedrock.client().chat.completions.create(model="bedrock/haiku", messages=MESSAGES, stream=True))
    assert caught.value.status_code == status
    error = assert_error_shape(caught.value.response.json())
    assert error["message"] == "refused mid-stream (mock)"
    assert error["code"] == exception_type[0].upper() + exception_type[1:]


def test_wrong_secret_key_is_rejected_and_mapped_without_leaking_it(bedrock: Bedrock) -> None:
    result = bedrock.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=bedrock.token,
        json={"model": "bedrock-wrong/haiku", "messages": MESSAGES},
    )
    assert result.status == 401, result.body
    error = assert_error_shape(result.json())
    assert error["code"] == "InvalidSignatureException" and error["type"] == "authentication_error"
    assert bedrock.mock.last().status == 403
    for secret in (WRONG_SECRET, SECRET_ACCESS_KEY):
        assert secret.encode() not in result.body
    output = bedrock.gateway.output()
    assert WRONG_SECRET not in output and SECRET_ACCESS_KEY not in output


# -- request log ------------------------------------------------------------------------------------


def test_usage_with_cache_tokens_lands_in_the_request_log(bedrock: Bedrock) -> None:
    bedrock.mock.cache_usage = (40, 7)
    raw = bedrock.client().chat.completions.with_raw_response.create(model="bedrock/haiku", messages=MESSAGES)
    completion = raw.parse()
    recorded = bedrock.mock.last("converse").usage
    assert recorded is not None and completion.usage is not None
    assert completion.usage.prompt_tokens == recorded["inputTokens"] + 47
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 40
    row = bedrock.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    assert row["provider"] == "aws-bedrock" and row["status"] == 200
    assert row["input_tokens"] == recorded["inputTokens"] + 47
    assert row["output_tokens"] == recorded["outputTokens"]


def test_stream_usage_lands_in_the_request_log(bedrock: Bedrock) -> None:
    raw = bedrock.client().chat.completions.with_raw_response.create(
        model="bedrock/haiku", messages=MESSAGES, stream=True
    )
    list(raw.parse())
    recorded = bedrock.mock.last("converse-stream").usage
    row = bedrock.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    assert recorded is not None and row["streaming"] is True
    assert (row["input_tokens"], row["output_tokens"]) == (recorded["inputTokens"], recorded["outputTokens"])


def test_embeddings_usage_lands_in_the_request_log(bedrock: Bedrock) -> None:
    raw = bedrock.client().embeddings.with_raw_response.create(model="bedrock/cohere", input=["one two three"])
    raw.parse()
    row = bedrock.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    assert row["input_tokens"] == 3
