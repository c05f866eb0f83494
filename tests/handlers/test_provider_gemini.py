"""A `google-gemini` account end to end: the real `openai` SDK -> `relaygate serve` -> the Gemini API mock."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import render
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.gemini_mock import THOUGHT_TOKENS, GeminiMock, reply_text, sample_args, signature_for
from tests.upstreams.openai_mock import embedding_base64, embedding_vector, png_image

GEMINI_KEY = "AIza-gemini-secret-0042"
CONFIG = """\
type: provider-account/google-gemini
name: gemini-main
base_url: http://127.0.0.1:{port}
auth_data: {type: api-key, api_key: AIza-gemini-secret-0042}
integrations:
  - {name: flash, type: integration/model/google-gemini, model_id: gemini-2.5-flash, model_types: [chat]}
  - {name: pro3, type: integration/model/google-gemini, model_id: gemini-3-pro-preview, model_types: [chat]}
  - {name: embed, type: integration/model/google-gemini, model_id: gemini-embedding-001, model_types: [embedding]}
  - {name: missing, type: integration/model/google-gemini, model_id: missing-model, model_types: [chat]}
---
type: provider-account/google-gemini
name: gemini-badkey
base_url: http://127.0.0.1:{port}
auth_data: {type: api-key, api_key: AIza-wrong-key-0000}
integrations:
  - {name: flash, type: integration/model/google-gemini, model_id: gemini-2.5-flash, model_types: [chat]}
"""
FLASH = "gemini-main/flash"
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
TIME_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": ["string", "null"]}}},
    },
}


class Env:
    """One gateway in front of one Gemini mock, and a caller token."""

    def __init__(self, gateway: GatewayThread, mock: GeminiMock, token: str) -> None:
        self.gateway = gateway
        self.mock = mock
        self.token = token

    def client(self, **options: Any) -> openai.OpenAI:
        return self.gateway.client(self.token, **options)

    def chat(self, model: str = FLASH, **options: Any) -> Any:
        """A chat call; returns (x-request-id, parsed completion or list of chunks)."""
        raw = self.client().chat.completions.with_raw_response.create(model=model, **options)
        parsed = raw.parse()
        return str(raw.headers["x-request-id"]), list(parsed) if options.get("stream") else parsed


@contextmanager
def serving(
    root: Path, config: str, mock: GeminiMock, placeholders: Callable[[GeminiMock], dict[str, Any]] | None = None
) -> Iterator[Env]:
    """`mock` (started here, from a thread) behind a gateway serving `config`, with a caller token; both are
    stopped on exit. `placeholders` fills the config's own placeholders once the mock is up."""
    with mock.running():
        values = placeholders(mock) if placeholders is not None else {}
        gateway = GatewayThread(root, render(config, port=mock.port, **values)).start()
        try:
            yield Env(gateway, mock, gateway.create_token(user="alice@example.com"))
        finally:
            gateway.stop()


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with serving(tmp_path_factory.mktemp("gemini"), CONFIG, GeminiMock(GEMINI_KEY)) as env:
        yield env


@pytest.fixture
def env(module_env: Env) -> Env:
    module_env.mock.reset()
    return module_env


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def tool_round(first: Any, messages: list[Any], results: list[str]) -> list[Any]:
    """The conversation after the model's tool calls, with one result per call."""
    calls = first.choices[0].message.tool_calls
    follow = [*messages, first.choices[0].message.model_dump(exclude_none=True)]
    follow += [{"role": "tool", "tool_call_id": c.id, "content": r} for c, r in zip(calls, results, strict=True)]
    return follow


# -- chat -------------------------------------------------------------------------------------------


def test_chat_answer_and_usage(env: Env) -> None:
    _, completion = env.chat(messages=[{"role": "system", "content": "be brief"}, *user("hello gemini")])
    assert completion.choices[0].message.content == reply_text("hello gemini")
    assert completion.choices[0].finish_reason == "stop"
    sent = env.mock.last(":generateContent").usage
    assert sent is not None and sent["prompt_tokens"] == 4, "system and user words"
    assert completion.usage.prompt_tokens == 4 and completion.usage.completion_tokens == 3


def test_upstream_gets_gemini_request_and_key_not_caller_token(env: Env) -> None:
    env.chat(messages=[{"role": "system", "content": "be brief"}, *user("hello gemini")], max_tokens=50)
    recorded = env.mock.last(":generateContent")
    assert recorded.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert recorded.header("x-goog-api-key") == GEMINI_KEY
    assert recorded.header("Authorization") is None and env.token.encode() not in recorded.body
    assert recorded.json == {
        "contents": [{"role": "user", "parts": [{"text": "hello gemini"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"maxOutputTokens": 50},
    }


def test_stream_relays_text_finish_and_usage(env: Env) -> None:
    _, chunks = env.chat(
        messages=user("stream these words please"), stream=True, stream_options={"include_usage": True}
    )
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == reply_text("stream these words please")
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert env.mock.last().path.endswith(":streamGenerateContent") and env.mock.last().query == {"alt": "sse"}


def test_stream_without_include_usage_hides_the_usage_chunk(env: Env) -> None:
    _, chunks = env.chat(messages=user("no usage for me"), stream=True)
    assert all(c.choices and c.usage is None for c in chunks)


def test_max_tokens_ends_with_length(env: Env) -> None:
    _, completion = env.chat(messages=user("a long answer here"), max_tokens=2)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "echo: a "


def test_n_returns_several_choices(env: Env) -> None:
    _, completion = env.chat(messages=user("pick one"), n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert env.mock.last().json["generationConfig"]["candidateCount"] == 2


def test_json_response_format(env: Env) -> None:
    _, completion = env.chat(
        messages=user("as json"),
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "echo",
                "schema": {"type": "object", "additionalProperties": False, "properties": {"echo": {"type": "string"}}},
            },
        },
    )
    assert json.loads(completion.choices[0].message.content) == {"echo": "as json"}
    config = env.mock.last().json["generationConfig"]
    assert config["responseSchema"] == {"type": "OBJECT", "properties": {"echo": {"type": "STRING"}}}


# -- reasoning --------------------------------------------------------------------------------------


def test_reasoning_tokens_are_output_tokens(env: Env) -> None:
    request_id, completion = env.chat(messages=user("think about it"))
    usage = completion.usage
    assert usage.completion_tokens_details.reasoning_tokens == THOUGHT_TOKENS
    assert usage.completion_tokens == 4 + THOUGHT_TOKENS
    row = env.gateway.wait_for_log(request_id)
    assert row["input_tokens"] == usage.prompt_tokens and row["output_tokens"] == 4 + THOUGHT_TOKENS
    assert row["provider"] == "google-gemini" and row["status"] == 200
    assert row["cost_unknown"] is False and row["cost_usd"] > 0


def test_stream_reasoning_tokens_land_in_the_log(env: Env) -> None:
    request_id, chunks = env.chat(messages=user("think while streaming"), stream=True)
    row = env.gateway.wait_for_log(request_id)
    assert row["streaming"] is True and row["output_tokens"] == 4 + THOUGHT_TOKENS
    sent = env.mock.last().usage
    assert sent is not None and row["input_tokens"] == sent["prompt_tokens"] == 3


def test_thoughts_become_reasoning_content_when_not_strict(env: Env) -> None:
    _, completion = env.chat(
        messages=user("plan it"), reasoning_effort="low", extra_headers={"x-tfy-strict-openai": "false"}
    )
    message = completion.choices[0].message
    assert message.model_extra["reasoning_content"] == "Thinking it over."
    assert env.mock.last().json["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 1024,
        "includeThoughts": True,
    }
    _, strict = env.chat(messages=user("plan it"), reasoning_effort="low")
    assert "reasoning_content" not in (strict.choices[0].message.model_extra or {})


# -- tools ------------------------------------------------------------------------------------------


def test_tool_call_and_result_round_trip(env: Env) -> None:
    messages = user("what is the weather in Paris")
    _, first = env.chat(messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}
    declared = env.mock.last().json["tools"][0]["functionDeclarations"][0]["parameters"]
    assert "additionalProperties" not in declared and "$schema" not in declared
    _, second = env.chat(messages=tool_round(first, messages, ['{"temp": 21}']), tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == 'result: [{"name":"get_weather","response":{"temp":21}}]'


def test_parallel_tool_calls_stream_and_round_trip(env: Env) -> None:
    messages = user("use tool in parallel please")
    _, chunks = env.chat(messages=messages, tools=[WEATHER_TOOL, TIME_TOOL], stream=True)
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += delta.id or ""
            slot["name"] += delta.function.name or ""
            slot["arguments"] += delta.function.arguments or ""
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[1]["arguments"]) == sample_args({"properties": {"zone": {"type": "STRING"}}})
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assistant = {
        "role": "assistant",
        "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in (calls[0], calls[1])
        ],
    }
    follow = [
        *messages,
        assistant,
        *({"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in (calls[0], calls[1])),
    ]
    _, answer = env.chat(messages=follow, tools=[WEATHER_TOOL, TIME_TOOL])
    assert answer.choices[0].message.content.startswith("result: ")
    parts = env.mock.last().json["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == signature_for("get_weather") and "thoughtSignature" not in parts[1]


def test_gemini_3_thought_signature_survives_the_round_trip(env: Env) -> None:
    messages = user("weather in Paris")
    _, first = env.chat(model="gemini-main/pro3", messages=messages, tools=[WEATHER_TOOL])
    assert first.choices[0].message.tool_calls[0].id.endswith("__thought__" + signature_for("get_weather"))
    _, second = env.chat(
        model="gemini-main/pro3", messages=tool_round(first, messages, ["sunny"]), tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content.startswith("result: ")


def test_gemini_3_refuses_tool_history_without_signature(env: Env) -> None:
    history = [
        *user("weather"),
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_plain", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_plain", "content": "sunny"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        env.chat(model="gemini-main/pro3", messages=history, tools=[WEATHER_TOOL])
    assert "thought_signature" in caught.value.message


def test_tool_choice_none_and_named(env: Env) -> None:
    _, plain = env.chat(messages=user("weather in Paris"), tools=[WEATHER_TOOL], tool_choice="none")
    assert plain.choices[0].message.tool_calls is None
    _, forced = env.chat(
        messages=user("just chatting"),
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in forced.choices[0].message.tool_calls] == ["get_time"]
    assert env.mock.last().json["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    }


# -- images -----------------------------------------------------------------------------------------


def test_base64_image_reaches_gemini_inline(env: Env) -> None:
    png = png_image()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    _, completion = env.chat(
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": url}}],
            }
        ]
    )
    assert completion.choices[0].message.content == reply_text("what is this", [f"image/png {len(png)} bytes"])
    assert env.mock.last().json["contents"][0]["parts"][1] == {
        "inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}
    }


def test_https_image_is_passed_as_file_data(env: Env) -> None:
    url = "https://example.com/cat.png"
    _, completion = env.chat(
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "and this"}, {"type": "image_url", "image_url": {"url": url}}],
            }
        ]
    )
    assert completion.choices[0].message.content == reply_text("and this", [f"image/png {url}"])


def test_gcs_image_is_a_clear_400_on_the_gemini_api(env: Env) -> None:
    before = len(env.mock.requests)
    result = env.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=env.token,
        json={
            "model": FLASH,
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "gs://bucket/cat.png"}}]}
            ],
        },
    )
    assert result.status == 400
    error = assert_error_shape(result.json())
    assert error["param"] == "messages[0].content[0].image_url.url" and "Files API" in error["message"]
    assert len(env.mock.requests) == before, "refused before reaching Google"


# -- embeddings -------------------------------------------------------------------------------------


def test_embeddings_float_and_usage(env: Env) -> None:
    raw = env.client().embeddings.with_raw_response.create(
        model="gemini-main/embed", input=["one two", "three"], dimensions=8
    )
    result = raw.parse()
    assert [d.embedding for d in result.data] == [embedding_vector("one two"), embedding_vector("three")]
    assert result.usage.prompt_tokens == 3 and result.usage.total_tokens == 3
    recorded = env.mock.last(":batchEmbedContents")
    assert recorded.json["requests"][0] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "one two"}]},
        "outputDimensionality": 8,
    }
    row = env.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    assert row["input_tokens"] == 3


def test_embeddings_base64(env: Env) -> None:
    result = env.gateway.request(
        "POST",
        "/api/llm/embeddings",
        token=env.token,
        json={"model": "gemini-main/embed", "input": "hello", "encoding_format": "base64"},
    )
    assert result.status == 200
    assert result.json()["data"][0]["embedding"] == embedding_base64(embedding_vector("hello"))


# -- safety -----------------------------------------------------------------------------------------


def test_unsafe_output_is_content_filter(env: Env) -> None:
    _, completion = env.chat(messages=user("something unsafe"))
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content is None


def test_blocked_prompt_is_content_filter_with_prompt_tokens(env: Env) -> None:
    request_id, completion = env.chat(messages=user("a blocked prompt here"))
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content is None
    assert completion.usage.prompt_tokens == 4 and completion.usage.completion_tokens == 0
    assert env.gateway.wait_for_log(request_id)["input_tokens"] == 4


def test_blocked_prompt_in_a_stream(env: Env) -> None:
    _, chunks = env.chat(messages=user("a blocked prompt again"), stream=True)
    assert [c.choices[0].finish_reason for c in chunks] == [None, "content_filter"]


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, openai.BadRequestError),
        (403, openai.PermissionDeniedError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_upstream_errors_keep_status_and_google_message(
    env: Env, status: int, error_class: type[openai.APIStatusError]
) -> None:
    env.mock.fail_next(status, message=f"Google says {status} (mock)", count=10)
    with pytest.raises(error_class) as caught:
        env.chat(messages=user("fail please"))
    assert caught.value.status_code == status and f"Google says {status} (mock)" in caught.value.message
    assert isinstance(caught.value.body, dict) and caught.value.body["message"] == f"Google says {status} (mock)"


def test_upstream_error_body_is_openai_shaped(env: Env) -> None:
    env.mock.fail_next(429, count=10)
    result = env.gateway.request(
        "POST", "/api/llm/chat/completions", token=env.token, json={"model": FLASH, "messages": user("x")}
    )
    assert result.status == 429
    error = assert_error_shape(result.json())
    assert error == {
        "message": "Resource has been exhausted (e.g. check quota).",
        "type": "rate_limit_exceeded",
        "code": "resource_exhausted",
        "param": None,
    }
    row = env.gateway.wait_for_log(str(result.headers.get("x-request-id")))
    assert row["status"] == 429 and row["error_type"]


def test_unknown_model_is_404(env: Env) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        env.chat(model="gemini-main/missing", messages=user("x"))
    assert "models/missing-model is not found" in caught.value.message


def test_rejected_api_key_is_401_without_leaking_it(env: Env) -> None:
    result = env.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=env.token,
        json={"model": "gemini-badkey/flash", "messages": user("x")},
    )
    assert result.status == 401
    error = assert_error_shape(result.json())
    assert error["message"] == "API key not valid. Please pass a valid API key." and error["code"] == "api_key_invalid"
    assert b"AIza-wrong-key" not in result.body


def test_error_event_mid_stream_ends_without_done(env: Env) -> None:
    env.mock.fail_stream_after(2, status=503)
    result = env.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=env.token,
        json={"model": FLASH, "messages": user("one two three four five"), "stream": True},
    )
    assert result.status == 200
    body = result.body.decode()
    assert '"content":"echo: "' in body and "[DONE]" not in body
    assert '"message":"The model is overloaded. Please try again later."' in body


def test_invalid_request_is_refused_before_google(env: Env) -> None:
    before = len(env.mock.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        env.chat(messages=[*user("x"), {"role": "tool", "tool_call_id": "call_unknown", "content": "1"}])
    assert "tool_call_id" in caught.value.message and len(env.mock.requests) == before


# -- the Anthropic Messages API in front ------------------------------------------------------------


def test_messages_api_caller_reaches_gemini(env: Env) -> None:
    client: Any = anthropic.Anthropic(
        api_key=env.token, base_url=env.gateway.url + "/api/llm", max_retries=0, timeout=30.0
    )
    message = client.messages.create(
        model=FLASH, max_tokens=64, system="be brief", messages=[{"role": "user", "content": "hello from claude code"}]
    )
    assert message.content[0].text == reply_text("hello from claude code")
    assert message.usage.input_tokens == 6 and message.usage.output_tokens == 5
    recorded = env.mock.last(":generateContent")
    assert recorded.json["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert recorded.json["generationConfig"]["maxOutputTokens"] == 64


def test_messages_api_tool_use_reaches_gemini(env: Env) -> None:
    client: Any = anthropic.Anthropic(
        api_key=env.token, base_url=env.gateway.url + "/api/llm", max_retries=0, timeout=30.0
    )
    tool = {
        "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    message = client.messages.create(
        model=FLASH, max_tokens=64, tools=[tool], messages=[{"role": "user", "content": "weather in Paris"}]
    )
    assert message.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in message.content] == [("tool_use", "get_weather", {"city": "Paris"})]
