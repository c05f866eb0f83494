"""A `google-gemini` account end to end, on the wire details Google's references pin down: answers in proto field
names, Gemini 3 call ids, schema shapes Gemini refuses, and `RetryInfo` on quota errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionToolParam

from tests.handlers.test_provider_gemini import CONFIG, GEMINI_KEY, WEATHER_TOOL, Env, serving, tool_round, user
from tests.upstreams.gemini_mock import GeminiMock, call_id_for, reply_text, signature_for, token_logprob

NOTE_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "save_note",
        "parameters": {
            "type": "object",
            "properties": {
                "tags": {"type": "array"},
                "extra": {"type": "object", "additionalProperties": True},
                "text": {"type": "string"},
            },
            "required": ["text"],
        },
    },
}


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with serving(tmp_path_factory.mktemp("gemini-wire"), CONFIG, GeminiMock(GEMINI_KEY)) as env:
        yield env


@pytest.fixture
def env(module_env: Env) -> Env:
    module_env.mock.reset()
    return module_env


def test_snake_case_answer_is_translated(env: Env) -> None:
    _, completion = env.chat(messages=user("snake case please"), max_tokens=3)
    assert completion.choices[0].message.content == "echo: snake case "
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.prompt_tokens == 3 and completion.usage.completion_tokens == 3


def test_snake_case_stream_is_translated(env: Env) -> None:
    _, chunks = env.chat(messages=user("snake case stream"), stream=True, stream_options={"include_usage": True})
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply_text("snake case stream")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    sent = env.mock.last().usage
    assert sent is not None and chunks[-1].usage.completion_tokens == sent["completion_tokens"] > 0
    assert chunks[-1].usage.prompt_tokens == sent["prompt_tokens"] == 3


def test_gemini_3_call_ids_are_kept_and_echoed_in_the_function_response(env: Env) -> None:
    messages = user("use tool in parallel")
    _, first = env.chat(model="gemini-main/pro3", messages=messages, tools=[WEATHER_TOOL, NOTE_TOOL])
    ids = [c.id for c in first.choices[0].message.tool_calls]
    assert ids == [
        call_id_for("get_weather", 0) + "__thought__" + signature_for("get_weather"),
        call_id_for("save_note", 1),
    ]
    _, second = env.chat(
        model="gemini-main/pro3",
        messages=tool_round(first, messages, ["sunny", "saved"]),
        tools=[WEATHER_TOOL, NOTE_TOOL],
    )
    assert second.choices[0].message.content.startswith("result: ")
    responses = [p["functionResponse"] for p in env.mock.last().json["contents"][2]["parts"]]
    assert [(r["name"], r["id"]) for r in responses] == [
        ("get_weather", call_id_for("get_weather", 0)),
        ("save_note", call_id_for("save_note", 1)),
    ]


def test_free_form_tool_parameters_are_accepted(env: Env) -> None:
    _, completion = env.chat(messages=user("use tool to save this"), tools=[NOTE_TOOL])
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "save_note" and json.loads(call.function.arguments)["text"] == "text-value"
    declared = env.mock.last().json["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]
    assert declared["tags"] == {"type": "ARRAY", "items": {"type": "STRING"}} and declared["extra"] == {}


def test_retry_info_delay_paces_the_retry(env: Env) -> None:
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
    env.mock.fail_next(429, details=[retry_info])
    retry = json.dumps({"attempts": 1, "delay": 0, "onStatusCodes": [429], "useRetryAfterHeader": True})
    _, completion = env.chat(messages=user("after the quota"), extra_headers={"x-tfy-retry-config": retry})
    assert completion.choices[0].message.content == reply_text("after the quota")
    first, second = env.mock.requests_to(":generateContent")
    assert second.received_at - first.received_at >= 1.4


def test_tool_choice_auto_without_tools_is_accepted(env: Env) -> None:
    _, completion = env.chat(messages=user("no tools here"), tool_choice="auto")
    assert completion.choices[0].message.content == reply_text("no tools here")
    assert "toolConfig" not in env.mock.last().json


def test_logprobs_come_back_per_token_with_top_alternatives(env: Env) -> None:
    _, completion = env.chat(messages=user("rate this"), logprobs=True, top_logprobs=2)
    sent = env.mock.last().json["generationConfig"]
    assert sent["responseLogprobs"] is True and sent["logprobs"] == 2
    text = completion.choices[0].message.content
    content = completion.choices[0].logprobs.content
    assert [item.token for item in content] == text.split(" ")
    assert [item.logprob for item in content] == [token_logprob(t) for t in text.split(" ")]
    first = content[0]
    assert [alt.token for alt in first.top_logprobs] == [first.token, first.token + "~1"]
    assert first.bytes == list(first.token.encode())


def test_streamed_chunks_carry_their_logprobs(env: Env) -> None:
    _, chunks = env.chat(messages=user("rate this stream"), stream=True, logprobs=True)
    with_text = [c for c in chunks if c.choices and c.choices[0].delta.content]
    tokens = [item.token for c in with_text for item in c.choices[0].logprobs.content]
    assert " ".join(tokens).split() == reply_text("rate this stream").split()


def test_top_logprobs_without_logprobs_is_refused_before_google(env: Env) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        env.chat(messages=user("rate this"), top_logprobs=2)
    assert caught.value.body["param"] == "top_logprobs"  # type: ignore[index]
    assert env.mock.requests == []
