"""The LLM pipeline written once (pipeline/llm.py), driven in-process through both caller-facing APIs.

The steps are the same for the OpenAI and the Messages frontends; what differs (token, body, dialect,
what is counted) is each frontend's. `finish` writes one finished-request row per logged route.
"""

from __future__ import annotations

import re
from typing import Any

from relaygate.dialects.openai import OPENAI
from relaygate.handlers.llm import FRONTEND as OPENAI_FRONTEND
from relaygate.handlers.messages import FRONTEND as MESSAGES_FRONTEND
from relaygate.pipeline.llm import LLMRequest
from relaygate.pipeline.planning import NO_CONTROLS, parse_controls
from relaygate.providers.base import MESSAGES, MESSAGES_COUNT_TOKENS, OPERATIONS
from tests.helpers.inprocess import MESSAGES as CHAT_MESSAGES
from tests.helpers.inprocess import Rig

CHAT = next(op for op in OPERATIONS if op.name == "chat")
EMBEDDINGS = next(op for op in OPERATIONS if op.name == "embeddings")
SPEECH = next(op for op in OPERATIONS if op.name == "audio_speech")


async def test_a_chat_request_leaves_one_row_built_by_the_finish_step(rig: Rig) -> None:
    answer = await rig.driver.request(
        "POST",
        "/v1/chat/completions",
        token=rig.alice,
        json={"model": "openai-main/gpt-4o", "messages": CHAT_MESSAGES},
        headers={"x-request-id": "one-row", "x-tfy-metadata": '{"team": "a"}'},
    )
    assert answer.status == 200, answer.body
    (row,) = await rig.log_rows_of("one-row")
    assert row["status"] == 200
    assert row["requested_model"] == row["resolved_model"] == "openai-main/gpt-4o"
    assert row["model_type"] == "chat"
    assert row["input_tokens"] and row["output_tokens"] is not None
    assert row["metadata"] == {"team": "a"}


async def test_a_refused_request_is_finished_too_and_rendered_in_its_api_shape(rig: Rig) -> None:
    body: dict[str, Any] = {"model": "openai-main/no-such", "messages": CHAT_MESSAGES, "max_tokens": 5}
    openai_404 = await rig.driver.request(
        "POST", "/v1/chat/completions", token=rig.alice, json=body, headers={"x-request-id": "r-openai"}
    )
    messages_404 = await rig.driver.request(
        "POST", "/v1/messages", token=rig.alice, json=body, headers={"x-request-id": "r-messages"}
    )
    assert openai_404.status == messages_404.status == 404
    assert openai_404.json()["error"]["code"] == "model_not_found"
    assert messages_404.json()["type"] == "error" and messages_404.json()["error"]["type"] == "not_found_error"
    assert messages_404.header("request-id") == "r-messages"  # Anthropic's SDKs read it there
    assert [r["status"] for r in await rig.log_rows_of("r-openai")] == [404]
    assert [r["status"] for r in await rig.log_rows_of("r-messages")] == [404]
    assert rig.openai.requests == []


async def test_meta_routes_write_no_row(rig: Rig) -> None:
    for path in ("/health", "/ready", "/v1/models"):
        answer = await rig.driver.request("GET", path, token=rig.alice, headers={"x-request-id": f"meta{path}"})
        assert answer.status == 200, (path, answer.body)
    chat = await rig.driver.request(
        "POST",
        "/v1/chat/completions",
        token=rig.alice,
        json={"model": "openai-main/gpt-4o", "messages": CHAT_MESSAGES},
        headers={"x-request-id": "after-meta"},
    )
    assert chat.status == 200
    assert len(await rig.log_rows_of("after-meta")) == 1  # written, so the meta rows would be too
    for path in ("/health", "/ready", "/v1/models"):
        assert await rig.log_rows_of(f"meta{path}", timeout=0) == []


async def test_request_ids_are_24_hex_digits_and_differ_unless_the_caller_sends_one(rig: Rig) -> None:
    ids = [(await rig.driver.request("GET", "/health")).header("x-request-id") for _ in range(20)]
    assert all(i is not None and re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert len(set(ids)) == 20
    kept = await rig.driver.request("GET", "/health", headers={"x-request-id": "mine-1"})
    assert kept.header("x-request-id") == "mine-1"


def _request(operation: Any, payload: dict[str, Any] | None) -> LLMRequest:
    return LLMRequest(operation, "m", payload, b"")


def test_each_frontend_says_what_is_counted_and_where_usage_is() -> None:
    assert OPENAI_FRONTEND.reserves(_request(CHAT, {}))
    assert OPENAI_FRONTEND.usage_reader(_request(EMBEDDINGS, {})) is OPENAI.read_usage
    assert OPENAI_FRONTEND.usage_reader(_request(SPEECH, {})) is None  # audio bytes carry no usage
    assert MESSAGES_FRONTEND.reserves(_request(MESSAGES, {}))
    assert not MESSAGES_FRONTEND.reserves(_request(MESSAGES_COUNT_TOKENS, {}))  # counting is free
    assert MESSAGES_FRONTEND.usage_reader(_request(MESSAGES_COUNT_TOKENS, {})) is None


def test_a_request_without_routing_headers_shares_one_controls_object() -> None:
    assert parse_controls({"headers": [(b"content-type", b"application/json")]}) is NO_CONTROLS
    controls = parse_controls({"headers": [(b"x-tfy-request-timeout", b"1500")]})
    assert controls is not NO_CONTROLS and controls.caller_timeout == 1.5
