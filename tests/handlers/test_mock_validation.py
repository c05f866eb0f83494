"""The built-in `mock` model refuses what the OpenAI API refuses: 400 in OpenAI's shape, with `param`."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.conftest import Stack
from tests.helpers.error_shape import assert_error_shape

HELLO = [{"role": "user", "content": "hello mock"}]


def _refused(stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    result = stack.gateway.request("POST", f"/api/llm/{path}", token=stack.alice, json=body)
    assert result.status == 400, (body, result.status, result.body)
    assert result.headers.get("x-request-id")
    error = assert_error_shape(result.json())
    assert error["type"] == "invalid_request_error", error
    return error


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "messages", "missing_required_parameter"),
        ({"messages": "hello"}, "messages", "invalid_type"),
        ({"messages": {"role": "user", "content": "hi"}}, "messages", "invalid_type"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": ["hello"]}, "messages[0]", "invalid_type"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role", "missing_required_parameter"),
        ({"messages": [*HELLO, {"role": "robot", "content": "hi"}]}, "messages[1].role", "invalid_value"),
        ({"messages": HELLO, "n": 2}, "n", "unsupported_value"),
        ({"messages": HELLO, "n": 0}, "n", "integer_below_min_value"),
        ({"messages": HELLO, "n": "2"}, "n", "invalid_type"),
        ({"messages": HELLO, "n": 3, "stream": True}, "n", "unsupported_value"),
    ],
)
def test_mock_chat_refuses_what_openai_refuses(stack: Stack, body: dict[str, Any], param: str, code: str) -> None:
    error = _refused(stack, "chat/completions", {"model": "mock/echo", **body})
    assert (error["param"], error["code"]) == (param, code), error
    if code != "invalid_value":  # OpenAI names the bad value there, the parameter only in `param`
        assert f"'{param.split('[')[0]}" in error["message"], error


def test_missing_messages_reads_like_openais_message(stack: Stack) -> None:
    error = _refused(stack, "chat/completions", {"model": "mock/echo"})
    assert error["message"] == "Missing required parameter: 'messages'."


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "missing_required_parameter"),
        ({"input": ""}, "string_too_short"),
        ({"input": []}, "empty_array"),
        ({"input": 42}, "invalid_type"),
    ],
)
def test_mock_embeddings_need_input(stack: Stack, body: dict[str, Any], code: str) -> None:
    error = _refused(stack, "embeddings", {"model": "mock/echo", **body})
    assert (error["param"], error["code"]) == ("input", code), error


def test_mock_completions_refuse_n_above_one(stack: Stack) -> None:
    error = _refused(stack, "completions", {"model": "mock/echo", "prompt": "hi", "n": 2})
    assert error["param"] == "n"


def test_the_sdk_sees_a_bad_request_error_with_param(stack: Stack) -> None:
    client = stack.gateway.client(stack.alice)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="mock/echo", messages=HELLO, n=2)  # type: ignore[arg-type]
    assert caught.value.param == "n" and caught.value.code == "unsupported_value"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="mock/echo", messages=HELLO, n=2, stream=True)  # type: ignore[arg-type]
    assert caught.value.param == "n"


def test_valid_mock_requests_still_answer(stack: Stack) -> None:
    client = stack.gateway.client(stack.alice)
    completion = client.chat.completions.create(model="mock/echo", messages=HELLO, n=1)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "hello mock"
    assert len(client.embeddings.create(model="mock/echo", input=["a", "b"]).data) == 2
    messages = [{"role": "developer", "content": "be terse"}, *HELLO]
    assert client.chat.completions.create(model="mock/echo", messages=messages).choices  # type: ignore[arg-type]
