"""The request log as `relaygate logs --json` shows it: one row per request, written asynchronously."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import Stack
from tests.helpers.gateway import token_id_of, token_secret_of
from tests.helpers.manifests import ALICE, BOB, COST_INPUT_PER_MILLION, COST_OUTPUT_PER_MILLION
from tests.helpers.sse import sse_events

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "log this request please"}]
LOG_FIELDS = {
    "request_id",
    "time",
    "subject",
    "token_id",
    "requested_model",
    "resolved_model",
    "provider",
    "status",
    "streaming",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cost_unknown",
    "latency_ms",
    "ttft_ms",
    "metadata",
    "error_type",
    "request_body",
    "response_body",
}


def call(
    stack: Stack,
    model: str = "openai-main/gpt-4o",
    token: str | None = None,
    metadata: dict[str, str] | None = None,
    **options: Any,
) -> tuple[str, Any]:
    """Make one chat call; return (x-request-id, parsed response or list of chunks).

    A stream is read to its end with a plain client: the sync SDK closes the connection as soon as it
    sees `[DONE]`, which can reach the gateway before its last (empty) chunk and then logs a 499."""
    headers = {"x-tfy-metadata": orjson.dumps(metadata).decode()} if metadata else None
    if options.get("stream"):
        body = {"model": model, "messages": MESSAGES, **options}
        answer = stack.gateway.request(
            "POST", "/api/llm/chat/completions", token=token or stack.alice, json=body, headers=headers
        )
        assert answer.status == 200, answer.body
        return str(answer.headers["x-request-id"]), sse_events(answer.body)
    raw = stack.gateway.client(token or stack.alice).chat.completions.with_raw_response.create(
        model=model,
        messages=MESSAGES,
        extra_headers=headers,
        **options,
    )
    parsed = raw.parse()
    result = list(parsed) if options.get("stream") else parsed
    return str(raw.headers["x-request-id"]), result


@pytest.fixture(scope="module")
def chat_row(standard_stack: Stack) -> tuple[dict[str, Any], Any, dict[str, int]]:
    """One plain chat call by alice with metadata, its log row, response and the usage the mock sent."""
    standard_stack.reset()
    request_id, completion = call(standard_stack, metadata={"app": "log-test", "env": "ci"})
    sent = standard_stack.openai.last("/chat/completions").usage
    assert sent is not None
    return standard_stack.gateway.wait_for_log(request_id), completion, sent


def test_log_row_has_every_documented_field(chat_row: tuple[dict[str, Any], Any, dict[str, int]]) -> None:
    row, _, _ = chat_row
    assert LOG_FIELDS <= set(row), LOG_FIELDS - set(row)


def test_log_row_identifies_caller_and_models(chat_row: tuple[dict[str, Any], Any, dict[str, int]]) -> None:
    row, _, _ = chat_row
    assert row["subject"] == f"user:{ALICE}"
    assert row["requested_model"] == "openai-main/gpt-4o"
    assert row["resolved_model"] == "openai-main/gpt-4o"
    assert row["provider"] == "openai"
    assert row["status"] == 200
    assert row["streaming"] is False
    assert row["error_type"] is None


def test_log_row_token_id_is_public_id_not_secret(
    standard_stack: Stack, chat_row: tuple[dict[str, Any], Any, dict[str, int]]
) -> None:
    row, _, _ = chat_row
    token = standard_stack.alice
    assert row["token_id"] in (token_id_of(token), f"rg-{token_id_of(token)}")
    assert token_secret_of(token) not in str(row)


def test_log_row_tokens_equal_upstream_usage(chat_row: tuple[dict[str, Any], Any, dict[str, int]]) -> None:
    row, completion, sent = chat_row
    assert row["input_tokens"] == sent["prompt_tokens"] == completion.usage.prompt_tokens
    assert row["output_tokens"] == sent["completion_tokens"] == completion.usage.completion_tokens


def test_log_row_cost_from_builtin_price_table(chat_row: tuple[dict[str, Any], Any, dict[str, int]]) -> None:
    row, _, _ = chat_row
    assert row["cost_unknown"] is False
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


def test_log_row_latency_and_metadata(chat_row: tuple[dict[str, Any], Any, dict[str, int]]) -> None:
    row, _, _ = chat_row
    assert row["latency_ms"] is not None and row["latency_ms"] > 0
    assert row["ttft_ms"] is None
    assert row["metadata"] == {"app": "log-test", "env": "ci"}


def test_log_row_for_stream_has_ttft_and_usage(stack: Stack) -> None:
    stack.openai.chunk_delay = 0.05
    request_id, _ = call(stack, stream=True)
    sent = stack.openai.last("/chat/completions").usage
    row = stack.gateway.wait_for_log(request_id)
    assert row["streaming"] is True
    assert row["status"] == 200
    assert sent is not None
    assert row["input_tokens"] == sent["prompt_tokens"]
    assert row["output_tokens"] == sent["completion_tokens"]
    assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] <= row["latency_ms"]
    assert row["latency_ms"] >= 200, "latency covers the whole paced stream"


def test_log_row_self_hosted_cost_unknown(stack: Stack) -> None:
    request_id, _ = call(stack, model="vllm-local/llama")
    row = stack.gateway.wait_for_log(request_id)
    assert row["provider"] == "self-hosted-model"
    assert row["cost_unknown"] is True
    assert not row["cost_usd"]


def test_log_row_cost_override_from_integration(stack: Stack) -> None:
    request_id, completion = call(stack, model="openai-main/gpt-4o-priced")
    row = stack.gateway.wait_for_log(request_id)
    expected = (
        completion.usage.prompt_tokens * COST_INPUT_PER_MILLION
        + completion.usage.completion_tokens * COST_OUTPUT_PER_MILLION
    ) / 1_000_000
    assert row["cost_unknown"] is False
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-6)


def test_log_row_for_embeddings_counts_input_tokens(stack: Stack) -> None:
    raw = stack.gateway.client(stack.alice).embeddings.with_raw_response.create(
        model="openai-main/embed", input=["one two", "three"]
    )
    row = stack.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    sent = stack.openai.last("/embeddings").usage
    assert sent is not None
    assert row["input_tokens"] == sent["prompt_tokens"]
    assert row["requested_model"] == "openai-main/embed"
    assert row["cost_unknown"] is False and row["cost_usd"] > 0


def test_log_row_for_virtual_account(stack: Stack) -> None:
    request_id, _ = call(stack, token=stack.ci_bot)
    row = stack.gateway.wait_for_log(request_id)
    assert row["subject"] in ("virtualaccount:ci-bot", "virtual-account:ci-bot")
    assert row["token_id"] in (token_id_of(stack.ci_bot), f"rg-{token_id_of(stack.ci_bot)}")


def test_log_row_for_upstream_error(stack: Stack) -> None:
    stack.openai.fail_next(429, count=10)
    result = stack.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=stack.alice,
        json={"model": "openai-main/gpt-4o", "messages": MESSAGES},
    )
    assert result.status == 429
    row = stack.gateway.wait_for_log(str(result.headers.get("x-request-id")))
    assert row["status"] == 429
    assert row["error_type"]


def test_log_row_for_rejected_token_has_no_subject(stack: Stack) -> None:
    result = stack.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token="rg-" + "b" * 12 + "-" + "c" * 43,
        json={"model": "openai-main/gpt-4o", "messages": MESSAGES},
    )
    assert result.status == 401
    request_id = str(result.headers.get("x-request-id"))
    rows = [r for r in stack.gateway.wait_for_logs(1, limit=1000) if r["request_id"] == request_id]
    for row in rows:  # logging refused requests is optional; if logged, no identity is made up
        assert row["status"] == 401
        assert not row["subject"]


# -- filters ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tagged_run(standard_stack: Stack) -> str:
    """Four calls tagged with a unique run id: alice x2 (gpt-4o, gpt-4o-priced), bob x1, alice stream."""
    run = uuid.uuid4().hex[:12]
    ids = [
        call(standard_stack, metadata={"run": run, "who": "alice"})[0],
        call(standard_stack, model="openai-main/gpt-4o-priced", metadata={"run": run, "who": "alice"})[0],
        call(standard_stack, token=standard_stack.bob, metadata={"run": run, "who": "bob"})[0],
        call(standard_stack, metadata={"run": run, "who": "alice"}, stream=True)[0],
    ]
    for request_id in ids:
        standard_stack.gateway.wait_for_log(request_id)
    return run


def test_logs_filter_by_metadata(stack: Stack, tagged_run: str) -> None:
    rows = stack.gateway.logs(metadata={"run": tagged_run})
    assert len(rows) == 4
    bob_rows = stack.gateway.logs(metadata={"run": tagged_run, "who": "bob"})
    assert [r["subject"] for r in bob_rows] == [f"user:{BOB}"]


def test_logs_filter_by_model(stack: Stack, tagged_run: str) -> None:
    rows = stack.gateway.logs(model="openai-main/gpt-4o-priced", metadata={"run": tagged_run})
    assert len(rows) == 1
    assert rows[0]["requested_model"] == "openai-main/gpt-4o-priced"
    everything = stack.gateway.logs(model="openai-main/gpt-4o-priced", limit=1000)
    assert everything and all(
        "openai-main/gpt-4o-priced" in (r["requested_model"], r["resolved_model"]) for r in everything
    )


def test_logs_filter_by_user(stack: Stack, tagged_run: str) -> None:
    rows = stack.gateway.logs(user=BOB, limit=1000)
    assert rows and all(r["subject"] == f"user:{BOB}" for r in rows)
    tagged = stack.gateway.logs(user=ALICE, metadata={"run": tagged_run})
    assert len(tagged) == 3


def test_logs_limit(stack: Stack, tagged_run: str) -> None:
    assert len(stack.gateway.logs(limit=2, metadata={"run": tagged_run})) == 2
    newest = stack.gateway.logs(limit=1, metadata={"run": tagged_run})
    assert len(newest) == 1 and newest[0]["streaming"] is True, "newest row first"
