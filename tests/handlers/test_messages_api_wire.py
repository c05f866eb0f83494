"""The inbound Messages API's error statuses, headers and usage details as Anthropic's SDK reads them.

Same rig as test_messages_api.py (tests/dialects/anthropic_messages/messages_rig.py); the tests that
cool a target down (429 with retry-after) use the rig's dedicated `-limited` / `-errors` integrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.dialects.anthropic_messages.messages_rig import Rig, running_rig
from tests.dialects.anthropic_messages.tool_upstream import USAGE, Script

HELLO: list[Any] = [{"role": "user", "content": "hello wire"}]
NATIVE = "claude/sonnet-errors"
REASONING_USAGE: dict[str, Any] = {**USAGE, "completion_tokens_details": {"reasoning_tokens": 7}}


@pytest.fixture(scope="module")
def rig_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    yield from running_rig(tmp_path_factory.mktemp("messages-wire"))


@pytest.fixture
def rig(rig_module: Rig) -> Rig:
    return rig_module.reset()


def create(rig: Rig, model: str, **options: Any) -> Any:
    return rig.client().messages.create(model=model, max_tokens=64, messages=HELLO, **options)


def test_native_overloaded_reaches_the_caller_as_529(rig: Rig) -> None:
    rig.claude.fail_next(529)
    with pytest.raises(anthropic.OverloadedError) as caught:
        create(rig, NATIVE)
    assert caught.value.status_code == 529
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": caught.value.response.headers["x-request-id"],
    }


def test_error_request_id_is_where_the_sdk_reads_it(rig: Rig) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        create(rig, "nope/nothing")
    assert caught.value.request_id == caught.value.response.headers["x-request-id"]
    assert caught.value.request_id == caught.value.body["request_id"]  # type: ignore[index]


def test_native_stream_overloaded_before_content_is_a_529(rig: Rig) -> None:
    rig.claude.fail_stream_after(1)  # message_start, then an overloaded_error event
    with pytest.raises(anthropic.OverloadedError) as caught:
        list(create(rig, NATIVE, stream=True))
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_translated_503_keeps_its_status(rig: Rig) -> None:
    rig.openai.fail_next(503)
    with pytest.raises(anthropic.ServiceUnavailableError) as caught:
        create(rig, "oai/gpt-4o-limited")
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_native_rate_limit_keeps_the_upstreams_retry_after(rig: Rig) -> None:
    rig.claude.fail_next(429, headers={"retry-after": "7"})
    with pytest.raises(anthropic.RateLimitError) as caught:
        create(rig, NATIVE)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_translated_rate_limit_keeps_the_upstreams_retry_after(rig: Rig) -> None:
    rig.openai.fail_next(429, headers={"retry-after": "3"})
    with pytest.raises(anthropic.RateLimitError) as caught:
        create(rig, "oai/gpt-4o-limited")
    assert caught.value.response.headers["retry-after"] == "3"


def test_reasoning_tokens_become_thinking_tokens(rig: Rig) -> None:
    rig.tools.reset(Script("thought it over", usage=REASONING_USAGE))
    raw = rig.client().messages.with_raw_response.create(model="tools/gpt-4o", max_tokens=64, messages=HELLO)
    message = raw.parse()
    assert message.usage.output_tokens == USAGE["completion_tokens"]
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 7
    row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
    assert row["extra"]["usage_details"]["reasoning_tokens"] == 7


def test_streamed_reasoning_tokens_reach_the_final_message(rig: Rig) -> None:
    rig.tools.reset(Script("thought it over", usage=REASONING_USAGE))
    with rig.client().messages.stream(model="tools/gpt-4o", max_tokens=64, messages=HELLO) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens_details is not None
    assert final.usage.output_tokens_details.thinking_tokens == 7


@pytest.mark.parametrize("token_in", ["x-api-key", "authorization"])
def test_relaygate_token_is_found_beside_an_anthropic_credential(rig: Rig, token_in: str) -> None:
    # Claude Code with both ANTHROPIC_API_KEY and ANTHROPIC_AUTH_TOKEN set sends both headers.
    other = "sk-ant-api03-not-a-relaygate-token"
    headers = (
        {"x-api-key": rig.token, "Authorization": f"Bearer {other}"}
        if token_in == "x-api-key"
        else {"x-api-key": other, "Authorization": f"Bearer {rig.token}"}
    )
    result = rig.gateway.request(
        "POST",
        "/v1/messages?beta=true",
        headers=headers,
        json={"model": "mock/echo", "max_tokens": 16, "messages": HELLO},
    )
    assert result.status == 200 and result.json()["content"][0]["text"] == "hello wire"
