"""`server-timing` reports what each stage really took; `logging` is the log row built before the header."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Stack
from tests.helpers.gateway import HttpResult

STAGES = ["auth", "ratelimit", "budget", "loadbalance", "model", "logging", "total"]
CHAT = {"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "time me " * 200}]}


def _timed(
    stack: Stack, body: dict[str, object], path: str = "chat/completions"
) -> tuple[HttpResult, dict[str, float]]:
    result = stack.gateway.request("POST", f"/api/llm/{path}", token=stack.alice, json=body)
    assert result.status == 200, result.body
    header = result.headers.get("server-timing")
    assert header, "server-timing missing"
    entries = re.findall(r"([a-z_-]+);dur=([0-9.]+)", header)
    assert [name for name, _ in entries] == STAGES, header
    return result, {name: float(value) for name, value in entries}


@pytest.mark.parametrize("model", ["openai-main/gpt-4o", "mock/echo"])
def test_logging_stage_is_measured_not_a_fixed_zero(stack: Stack, model: str) -> None:
    for _ in range(3):  # never 0.000: building the row (clipping two bodies, pricing) takes microseconds
        _, timing = _timed(stack, {**CHAT, "model": model})
        assert 0 < timing["logging"] < timing["total"], timing


def test_logging_stage_is_there_for_embeddings_too(stack: Stack) -> None:
    _, timing = _timed(stack, {"model": "openai-main/embed", "input": "time me"}, "embeddings")
    assert timing["logging"] > 0, timing


def test_the_log_row_latency_covers_the_whole_request(stack: Stack) -> None:
    result, timing = _timed(stack, CHAT)
    row = stack.gateway.wait_for_log(result.headers["x-request-id"])
    assert row["latency_ms"] >= timing["total"]  # the row was built early, its latency set when queued
    assert row["status"] == 200 and row["input_tokens"] and row["output_tokens"]
    assert row["response_body"] and row["request_body"]
