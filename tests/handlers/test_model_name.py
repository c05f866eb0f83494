"""The OpenAI path answers `model` as the name the caller used; the provider's own id is kept in
`x-tfy-provider-model` and the log row (`extra.provider_model`)."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import Stack
from tests.helpers.gateway import HttpResult

HELLO = [{"role": "user", "content": "name me"}]


def _sse_payloads(body: bytes) -> list[dict[str, object]]:
    return [
        orjson.loads(line[5:])
        for line in body.split(b"\n")
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]"
    ]


def _post(stack: Stack, path: str, body: dict[str, object], prefix: str = "/api/llm") -> HttpResult:
    result = stack.gateway.request("POST", f"{prefix}/{path}", token=stack.alice, json=body)
    assert result.status == 200, result.body
    return result


@pytest.mark.parametrize("prefix", ["/api/llm", "/api/llm/v1", "/v1"])
def test_chat_answer_names_the_model_as_the_caller_did(stack: Stack, prefix: str) -> None:
    raw = stack.gateway.client(stack.alice, prefix=prefix).chat.completions.with_raw_response.create(
        model="openai-main/gpt-4o", messages=HELLO
    )  # type: ignore[arg-type]
    assert raw.parse().model == "openai-main/gpt-4o"
    assert raw.headers["x-tfy-provider-model"] == "gpt-4o"  # what the upstream answered
    assert stack.openai.last("/chat/completions").json["model"] == "gpt-4o"  # the provider's id went upstream


def test_every_stream_chunk_names_the_model_as_the_caller_did(stack: Stack) -> None:
    result = _post(
        stack,
        "chat/completions",
        {"model": "openai-main/gpt-4o", "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}},
    )
    chunks = _sse_payloads(result.body)
    assert len(chunks) > 3 and chunks[-1]["usage"]  # role, content pieces, finish and the usage chunk
    assert {chunk["model"] for chunk in chunks} == {"openai-main/gpt-4o"}
    assert result.headers.get("x-tfy-provider-model") == "gpt-4o"


def test_an_azure_stream_with_its_prompt_filter_chunk_is_renamed_throughout(stack: Stack) -> None:
    result = _post(stack, "chat/completions", {"model": "azure-main/gpt4o-deploy", "messages": HELLO, "stream": True})
    chunks = _sse_payloads(result.body)
    assert chunks[0]["prompt_filter_results"]  # Azure's leading chunk, whose own model is ""
    assert {chunk["model"] for chunk in chunks} == {"azure-main/gpt4o-deploy"}
    assert result.headers.get("x-tfy-provider-model")  # the first non-empty model the stream named


def test_the_sdk_stream_sees_the_callers_name(stack: Stack) -> None:
    stream = stack.gateway.client(stack.alice).chat.completions.create(
        model="vllm-local/llama", messages=HELLO, stream=True
    )  # type: ignore[arg-type]
    assert {chunk.model for chunk in stream} == {"vllm-local/llama"}


def test_other_operations_name_the_model_as_the_caller_did(stack: Stack) -> None:
    client = stack.gateway.client(stack.alice)
    assert client.embeddings.create(model="openai-main/embed", input="x").model == "openai-main/embed"
    assert client.completions.create(model="openai-main/instruct", prompt="x").model == "openai-main/instruct"
    completions = _post(stack, "completions", {"model": "openai-main/instruct", "prompt": "a b", "stream": True})
    assert {chunk["model"] for chunk in _sse_payloads(completions.body)} == {"openai-main/instruct"}


def test_the_mock_model_names_itself_as_the_caller_did(stack: Stack) -> None:
    client = stack.gateway.client(stack.alice)
    assert client.chat.completions.create(model="mock/echo", messages=HELLO).model == "mock/echo"  # type: ignore[arg-type]
    stream = client.chat.completions.create(model="mock/echo", messages=HELLO, stream=True)  # type: ignore[arg-type]
    assert {chunk.model for chunk in stream} == {"mock/echo"}


def test_the_rest_of_the_answer_is_relayed_as_the_upstream_sent_it(stack: Stack) -> None:
    body = _post(stack, "chat/completions", {"model": "openai-main/gpt-4o", "messages": HELLO}).json()
    assert body["system_fingerprint"] == "fp_mock0001" and body["choices"][0]["message"]["annotations"] == []
    assert body["service_tier"] == "default"


def test_the_log_row_keeps_the_provider_model_id(stack: Stack) -> None:
    result = _post(stack, "chat/completions", {"model": "openai-main/gpt-4o", "messages": HELLO})
    row = stack.gateway.wait_for_log(result.headers["x-request-id"])
    assert row["requested_model"] == "openai-main/gpt-4o" and row["resolved_model"] == "openai-main/gpt-4o"
    assert row["extra"]["provider_model"] == "gpt-4o"
    assert orjson.loads(row["response_body"])["model"] == "openai-main/gpt-4o"  # the log keeps what the caller got
