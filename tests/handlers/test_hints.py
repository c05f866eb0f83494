"""Error hints for first-time users: a path missing its API prefix, an unknown model's closest names.

The standard stack: alice may call the open accounts and `team-only` (ml-team), bob also `restricted`,
the `ci-bot` virtual account only `openai-main/gpt-4o`. A hint never names a model the token may not call.
"""

from __future__ import annotations

import re

import openai
import pytest

from tests.conftest import Stack
from tests.helpers.error_shape import assert_error_shape


def _not_found_message(stack: Stack, method: str, path: str) -> str:
    result = stack.gateway.request(
        method, path, token=stack.alice, json={"model": "mock/echo", "messages": []} if method == "POST" else None
    )
    assert result.status == 404, result.body
    assert result.headers.get("x-request-id")
    error = assert_error_shape(result.json())
    assert error["code"] == "unknown_url"
    return str(error["message"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/chat/completions"),
        ("POST", "/embeddings"),
        ("GET", "/models"),
        ("POST", "/messages"),
        ("GET", "/models/mock/echo"),
        ("POST", "/responses"),
    ],
)
def test_an_api_path_without_its_prefix_says_which_path_was_meant(stack: Stack, method: str, path: str) -> None:
    message = _not_found_message(stack, method, path)
    assert f"no such endpoint: {method} {path}; did you mean /api/llm{path} (or /v1{path})?" in message, message


def test_an_unknown_path_gets_no_prefix_hint(stack: Stack) -> None:
    message = _not_found_message(stack, "GET", "/chat/complete")
    assert message == "no such endpoint: GET /chat/complete", message


def _suggested(message: str) -> list[str]:
    found = re.search(r"closest models your token may call: (.*)$", message)
    assert found, message
    return found.group(1).split(", ")


def _unknown_model(stack: Stack, token: str, model: str, kind: str = "chat") -> str:
    client = stack.gateway.client(token)
    with pytest.raises(openai.NotFoundError) as caught:
        if kind == "chat":
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        else:
            client.embeddings.create(model=model, input="hi")
    assert caught.value.code == "model_not_found"
    assert not stack.openai.requests
    return caught.value.message


def test_an_unknown_model_names_the_closest_models_the_token_may_call(stack: Stack) -> None:
    suggested = _suggested(_unknown_model(stack, stack.alice, "gpt-4o"))
    assert suggested[0] in ("openai-main/gpt-4o", "team-only/gpt-4o"), suggested
    assert {"openai-main/gpt-4o", "team-only/gpt-4o"} <= set(suggested)
    assert "restricted/gpt-4o" not in suggested  # bob's only
    assert len(suggested) <= 5


def test_unknown_model_hints_never_name_models_the_token_may_not_call(stack: Stack) -> None:
    assert "restricted/gpt-4o" in _suggested(_unknown_model(stack, stack.bob, "restricted/gpt4o"))
    assert "restricted/gpt-4o" not in _unknown_model(stack, stack.alice, "restricted/gpt4o")
    assert _suggested(_unknown_model(stack, stack.ci_bot, "openai-main/gpt4o")) == ["openai-main/gpt-4o"]


def test_unknown_model_hints_list_models_of_the_operations_type(stack: Stack) -> None:
    suggested = _suggested(_unknown_model(stack, stack.alice, "openai-main/embedding", kind="embeddings"))
    assert suggested[0] == "openai-main/embed", suggested
    assert "openai-main/gpt-4o" not in suggested  # a chat model cannot serve embeddings


def test_an_unknown_model_with_no_close_name_points_at_the_models_list(stack: Stack) -> None:
    message = _unknown_model(stack, stack.ci_bot, "zzzz")
    assert message.endswith("GET /api/llm/models lists the models your token may call"), message
