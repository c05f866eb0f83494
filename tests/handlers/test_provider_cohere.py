"""A real `relaygate serve` in front of the Cohere mock (v2 wire format), driven by the `openai` SDK.

One gateway and one mock per module; each test resets the mock. Models:
`cohere-main/command` (chat, priced by the integration's cost), `cohere-main/vision` (chat),
`cohere-main/embed` (embedding), `cohere-main/rerank` (rerank).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import http_request, render, token_secret_of
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.cohere_mock import CohereMock, chat_reply, quantized, tool_arguments
from tests.upstreams.openai_mock import embedding_vector, png_image, rerank_score

COHERE_KEY = "co-upstream-secret-987"
USER = "carol@example.com"
INPUT_PRICE, OUTPUT_PRICE = 1000.0, 2000.0
CONFIG = """\
type: provider-account/cohere
name: cohere-main
base_url: http://127.0.0.1:{port}
auth_data: {type: api-key, api_key: co-upstream-secret-987}
integrations:
  - name: command
    type: integration/model/cohere
    model_id: command-a-03-2025
    model_types: [chat]
    cost: {input_per_million_tokens: 1000, output_per_million_tokens: 2000}
  - {name: vision, type: integration/model/cohere, model_id: command-a-vision-07-2025, model_types: [chat]}
  - {name: embed, type: integration/model/cohere, model_id: embed-v4.0, model_types: [embedding]}
  - {name: rerank, type: integration/model/cohere, model_id: rerank-v3.5, model_types: [rerank]}
"""
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello cohere gateway"},
]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
TIME: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


@dataclass
class CohereStack:
    gateway: GatewayThread
    mock: CohereMock
    token: str

    def client(self) -> openai.OpenAI:
        return self.gateway.client(self.token)


@pytest.fixture(scope="module")
def cohere_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CohereStack]:
    mock = CohereMock(COHERE_KEY).start_in_thread()
    gateway = GatewayThread(Path(tmp_path_factory.mktemp("cohere")), render(CONFIG, port=mock.port))
    try:
        gateway.start()
        yield CohereStack(gateway, mock, gateway.create_token(user=USER))
    finally:
        gateway.stop()
        mock.stop_thread()


@pytest.fixture
def stack(cohere_stack: CohereStack) -> CohereStack:
    cohere_stack.mock.reset()
    return cohere_stack


def _billed(stack: CohereStack) -> dict[str, int]:
    usage = stack.mock.last("/v2/chat").usage
    assert usage is not None
    return usage["billed_units"]


# -- chat ------------------------------------------------------------------------------------------


def test_chat_returns_cohere_answer_openai_shaped(stack: CohereStack) -> None:
    raw = stack.client().chat.completions.with_raw_response.create(model="cohere-main/command", messages=MESSAGES)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == "cohere-main/command"  # the name the caller used
    assert raw.headers["x-tfy-provider-model"] == "command-a-03-2025"
    assert completion.choices[0].message.content == chat_reply(list(MESSAGES))  # type: ignore[arg-type]
    assert completion.choices[0].finish_reason == "stop"
    billed = _billed(stack)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        billed["input_tokens"],
        billed["output_tokens"],
    )


def test_upstream_gets_cohere_v2_request_with_provider_key(stack: CohereStack) -> None:
    stack.client().chat.completions.create(
        model="cohere-main/command", messages=MESSAGES, top_p=0.5, stop=["zzz"], max_tokens=50
    )
    recorded = stack.mock.last("/v2/chat")
    assert recorded.headers["Authorization"] == f"Bearer {COHERE_KEY}"
    assert stack.token not in recorded.body.decode() and token_secret_of(stack.token) not in str(recorded.headers)
    assert recorded.json == {
        "model": "command-a-03-2025",
        "messages": MESSAGES,
        "max_tokens": 50,
        "p": 0.5,
        "stop_sequences": ["zzz"],
        "stream": False,
    }


def test_max_tokens_finish_is_length(stack: CohereStack) -> None:
    completion = stack.client().chat.completions.create(model="cohere-main/command", messages=MESSAGES, max_tokens=2)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "echo: hello "


def test_chat_stream_relays_content_and_usage(stack: CohereStack) -> None:
    chunks = list(
        stack.client().chat.completions.create(
            model="cohere-main/command", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == chat_reply(list(MESSAGES))  # type: ignore[arg-type]
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1
    billed = _billed(stack)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == billed["input_tokens"]
    assert chunks[-1].usage.completion_tokens == billed["output_tokens"]
    assert stack.mock.last("/v2/chat").json["stream"] is True


def test_stream_without_include_usage_hides_usage_chunk(stack: CohereStack) -> None:
    chunks = list(stack.client().chat.completions.create(model="cohere-main/command", messages=MESSAGES, stream=True))
    assert all(c.choices and c.usage is None for c in chunks)


# -- tools -----------------------------------------------------------------------------------------


def test_tool_calls_come_back_as_openai_tool_calls(stack: CohereStack) -> None:
    completion = stack.client().chat.completions.create(
        model="cohere-main/command",
        messages=[{"role": "user", "content": "Madrid"}],
        tools=[WEATHER, TIME],
        tool_choice="required",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I will call get_weather, get_time."
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"location": "Madrid"}  # type: ignore[union-attr]
    assert stack.mock.last("/v2/chat").json["tool_choice"] == "REQUIRED"


def test_tool_without_parameters_reaches_cohere_with_an_empty_schema(stack: CohereStack) -> None:
    now: ChatCompletionToolParam = {"type": "function", "function": {"name": "get_now"}}
    completion = stack.client().chat.completions.create(
        model="cohere-main/command", messages=[{"role": "user", "content": "what time"}], tools=[now]
    )
    calls = completion.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_now"]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {}  # type: ignore[union-attr]
    sent = stack.mock.last("/v2/chat").json["tools"]
    assert sent == [
        {"type": "function", "function": {"name": "get_now", "parameters": {"type": "object", "properties": {}}}}
    ]


def test_streamed_tool_call_arguments_arrive_in_fragments_per_index(stack: CohereStack) -> None:
    chunks = list(
        stack.client().chat.completions.create(
            model="cohere-main/command",
            messages=[{"role": "user", "content": "Brasilia"}],
            tools=[WEATHER, TIME],
            stream=True,
        )
    )
    starts: dict[int, Any] = {}
    fragments: dict[int, list[str]] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if call.id is not None:
                starts[call.index] = call
                assert call.function is not None and call.function.arguments == ""
            elif call.function is not None and call.function.arguments:
                fragments.setdefault(call.index, []).append(call.function.arguments)
    assert sorted(starts) == [0, 1]
    assert [starts[i].function.name for i in (0, 1)] == ["get_weather", "get_time"]
    for index, tool in enumerate((WEATHER, TIME)):
        assert len(fragments[index]) > 1, "arguments should be split across several chunks"
        assert "".join(fragments[index]) == tool_arguments(dict(tool), "Brasilia")
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "tool_calls"


def test_tool_results_round_trip_to_cohere(stack: CohereStack) -> None:
    arguments = '{"location": "Madrid"}'
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Madrid"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": "get_weather_1", "content": "24 degrees"},
    ]
    completion = stack.client().chat.completions.create(model="cohere-main/command", messages=messages, tools=[WEATHER])
    assert completion.choices[0].message.content == "result: 24 degrees"
    sent = stack.mock.last("/v2/chat").json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "tool_plan": "Checking.",
        "tool_calls": [
            {"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
        ],
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "get_weather_1", "content": "24 degrees"}


def test_image_parts_reach_cohere_as_image_url(stack: CohereStack) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(png_image()).decode()
    completion = stack.client().chat.completions.create(
        model="cohere-main/vision",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": data_uri, "detail": "high"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "echo: what is this [1 image]"
    part = stack.mock.last("/v2/chat").json["messages"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": data_uri, "detail": "high"}}


# -- embeddings and rerank -------------------------------------------------------------------------


def test_embeddings_float(stack: CohereStack) -> None:
    result = stack.client().embeddings.create(
        model="cohere-main/embed", input=["red fox", "blue whale"], encoding_format="float"
    )
    assert [d.embedding for d in result.data] == [embedding_vector("red fox"), embedding_vector("blue whale")]
    assert result.usage.prompt_tokens == result.usage.total_tokens == 4
    sent = stack.mock.last("/v2/embed").json
    assert sent == {
        "model": "embed-v4.0",
        "texts": ["red fox", "blue whale"],
        "input_type": "search_document",
        "embedding_types": ["float"],
    }


def test_embeddings_int8_type_comes_back_as_integer_vectors(stack: CohereStack) -> None:
    result = stack.client().embeddings.create(
        model="cohere-main/embed", input=["red fox"], extra_body={"embedding_types": ["int8"]}
    )
    assert result.data[0].embedding == quantized(embedding_vector("red fox"), "int8")
    assert stack.mock.last("/v2/embed").json["embedding_types"] == ["int8"]


def test_embeddings_base64_is_float32_of_the_floats(stack: CohereStack) -> None:
    raw = stack.client().embeddings.with_raw_response.create(
        model="cohere-main/embed", input="red fox", encoding_format="base64", extra_body={"input_type": "search_query"}
    )
    encoded = orjson.loads(raw.content)["data"][0]["embedding"]
    vector = embedding_vector("red fox")
    assert base64.b64decode(encoded) == struct.pack(f"<{len(vector)}f", *vector)
    assert stack.mock.last("/v2/embed").json["input_type"] == "search_query"


def test_embeddings_sdk_default_base64_decodes_to_the_floats(stack: CohereStack) -> None:
    result = stack.client().embeddings.create(model="cohere-main/embed", input="blue whale")  # SDK asks for base64
    assert result.data[0].embedding == embedding_vector("blue whale")


def test_rerank_over_plain_http(stack: CohereStack) -> None:
    documents = ["a blue whale", {"text": "the red fox jumps"}, "fox"]
    result = http_request(
        "POST",
        f"{stack.gateway.api_url}/rerank",
        headers={"Authorization": f"Bearer {stack.token}"},
        json={"model": "cohere-main/rerank", "query": "red fox", "documents": documents, "top_n": 2},
    )
    assert result.status == 200, result.body
    payload = result.json()
    assert [r["index"] for r in payload["results"]] == [1, 2]
    assert payload["results"][0] == {
        "index": 1,
        "relevance_score": rerank_score("red fox", "the red fox jumps"),
        "document": {"text": "the red fox jumps"},
    }
    assert payload["usage"] == {"search_units": 1}
    assert stack.mock.last("/v2/rerank").json == {
        "model": "rerank-v3.5",
        "query": "red fox",
        "top_n": 2,
        "documents": ["a blue whale", "the red fox jumps", "fox"],
    }


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "expected", "sdk_error"),
    [
        (
            429,
            "You are past the per minute request limit, please wait and try again later.",
            429,
            openai.RateLimitError,
        ),
        (401, "invalid api token", 401, openai.AuthenticationError),
        (498, "blocked output", 400, openai.BadRequestError),
        (500, "internal server error", 500, openai.InternalServerError),
    ],
)
def test_upstream_errors_map_to_openai_errors(
    stack: CohereStack, status: int, message: str, expected: int, sdk_error: type[openai.APIStatusError]
) -> None:
    stack.mock.fail_next(status, message=message)
    with pytest.raises(sdk_error) as raised:
        stack.client().chat.completions.create(model="cohere-main/command", messages=MESSAGES)
    assert raised.value.status_code == expected
    error = assert_error_shape(raised.value.response.json())
    assert error["message"] == message
    assert COHERE_KEY not in raised.value.response.text


def test_untranslatable_request_is_400_naming_the_field(stack: CohereStack) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        stack.client().chat.completions.create(model="cohere-main/command", messages=MESSAGES, n=2)
    assert assert_error_shape(raised.value.response.json())["param"] == "n"
    assert stack.mock.requests == []


def test_generation_error_mid_stream_ends_with_error_event(stack: CohereStack) -> None:
    stack.mock.fail_stream("ERROR", after=4, error="internal error")
    raw = http_request(
        "POST",
        f"{stack.gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {stack.token}"},
        json={"model": "cohere-main/command", "messages": MESSAGES, "stream": True},
    )
    assert raw.status == 200
    assert b'"content":"echo: "' in raw.body
    assert b"[DONE]" not in raw.body
    last = raw.body.strip().split(b"\n\n")[-1]
    error = assert_error_shape(orjson.loads(last.removeprefix(b"data: ")))
    assert error["message"] == "Cohere ended the generation with finish_reason ERROR: internal error"


def test_sdk_raises_on_mid_stream_error(stack: CohereStack) -> None:
    stack.mock.fail_stream("TIMEOUT", after=3)
    with pytest.raises(openai.APIError):
        list(stack.client().chat.completions.create(model="cohere-main/command", messages=MESSAGES, stream=True))


# -- request log -----------------------------------------------------------------------------------


def test_usage_and_cost_land_in_the_request_log(stack: CohereStack) -> None:
    raw = stack.client().chat.completions.with_raw_response.create(model="cohere-main/command", messages=MESSAGES)
    row = stack.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    billed = _billed(stack)
    assert row["provider"] == "cohere"
    assert (row["input_tokens"], row["output_tokens"]) == (billed["input_tokens"], billed["output_tokens"])
    expected_cost = (billed["input_tokens"] * INPUT_PRICE + billed["output_tokens"] * OUTPUT_PRICE) / 1_000_000
    assert row["cost_usd"] == pytest.approx(expected_cost)


def test_stream_usage_lands_in_the_request_log(stack: CohereStack) -> None:
    raw = stack.client().chat.completions.with_raw_response.create(
        model="cohere-main/command", messages=MESSAGES, stream=True
    )
    list(raw.parse())
    row = stack.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    billed = _billed(stack)
    assert row["streaming"] is True
    assert (row["input_tokens"], row["output_tokens"]) == (billed["input_tokens"], billed["output_tokens"])


def test_embedding_usage_lands_in_the_request_log(stack: CohereStack) -> None:
    raw = stack.client().embeddings.with_raw_response.create(model="cohere-main/embed", input="one two three")
    row = stack.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    assert (row["input_tokens"], row["output_tokens"]) == (3, 0)
