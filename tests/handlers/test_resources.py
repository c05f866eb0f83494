"""Responses, Files and Batches through the gateway with the real OpenAI SDK, routed by account."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.manifests import ALICE
from tests.upstreams.openai_resources_mock import OpenAIResourcesMock, response_reply

KEY = "sk-resources-upstream-key-271828"
CONFIG = """\
type: provider-account/openai
name: openai-main
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-resources-upstream-key-271828}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat, responses],
     cost: {input_per_million_tokens: 1000000, output_per_million_tokens: 2000000}}
---
type: provider-account/openai
name: openai-other
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-resources-upstream-key-271828}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
collaborators:
  - {subject: "user:someone-else@example.com", role_id: provider-account-access}
---
type: provider-account/mock
name: mock-main
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat]}
"""
PROVIDER = {"x-tfy-provider-name": "openai-main"}


@dataclass
class ResourceStack:
    gateway: GatewayThread
    upstream: OpenAIResourcesMock
    client: openai.OpenAI


@pytest.fixture(scope="module")
def resources_upstream() -> Iterator[OpenAIResourcesMock]:
    with OpenAIResourcesMock(KEY).running() as mock:
        yield mock


@pytest.fixture
def stack(gateway_factory: GatewayFactory, resources_upstream: OpenAIResourcesMock) -> ResourceStack:
    resources_upstream.requests.clear()
    gateway = gateway_factory(CONFIG, port=resources_upstream.port)
    return ResourceStack(gateway, resources_upstream, gateway.client(gateway.create_token(user=ALICE)))


def test_responses_create_routes_by_model_and_rewrites_it(stack: ResourceStack) -> None:
    raw = stack.client.responses.with_raw_response.create(model="openai-main/gpt-4o", input="hello responses")
    response = raw.parse()
    assert response.output_text == response_reply("hello responses")
    sent = stack.upstream.requests[-1]
    assert sent.path == "/v1/responses" and sent.json["model"] == "gpt-4o"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    row = stack.gateway.wait_for_log(raw.headers["x-request-id"])
    assert (row["resolved_model"], row["input_tokens"], row["output_tokens"]) == ("openai-main/gpt-4o", 2, 3)
    assert row["extra"]["usage_details"] == {"cached_tokens": 2, "reasoning_tokens": 1}
    # 2 input tokens (2 of them cached, no cache price: input price) + 3 output tokens at $1/$2 per token.
    assert row["cost_usd"] == pytest.approx(2 * 1.0 + 3 * 2.0)


def test_responses_stream_relays_events_and_logs_usage(stack: ResourceStack) -> None:
    with stack.client.responses.with_streaming_response.create(
        model="openai-main/gpt-4o", input="stream me please", stream=True
    ) as raw:
        events = list(raw.parse())
        request_id = raw.headers["x-request-id"]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas.strip() == response_reply("stream me please")
    assert events[-1].type == "response.completed"
    row = stack.gateway.wait_for_log(request_id)
    assert (row["streaming"], row["input_tokens"], row["output_tokens"]) == (True, 3, 4)


def test_large_responses_stream_is_relayed_whole_and_its_usage_logged(stack: ResourceStack) -> None:
    """A multi-MiB stream whose `.done` and `response.completed` lines are longer than the SSE line cap
    (1 MiB): relayed byte for byte, usage still read from the completed event (its tail)."""
    repeat = 60_000  # "echo: big stream please" x 60,000: a 1.4 MiB text, in each of four `.done`/completed lines
    stack.upstream.reply_repeat = repeat
    try:
        with stack.client.responses.with_streaming_response.create(
            model="openai-main/gpt-4o", input="big stream please", stream=True
        ) as raw:
            body = b"".join(raw.iter_bytes())
            request_id = raw.headers["x-request-id"]
    finally:
        stack.upstream.reply_repeat = 1
    assert len(body) > 6 << 20
    completed = body.rstrip().rsplit(b"\n", 1)[-1]
    assert completed.startswith(b"data: ") and b'"type":"response.completed"' in completed
    row = stack.gateway.wait_for_log(request_id)
    assert (row["streaming"], row["input_tokens"], row["output_tokens"]) == (True, 3, 4 * repeat)
    assert row["extra"]["usage_details"] == {"cached_tokens": 2, "reasoning_tokens": 1}


def test_responses_retrieve_and_delete_by_provider_name(stack: ResourceStack) -> None:
    created = stack.client.responses.create(model="openai-main/gpt-4o", input="keep me")
    fetched = stack.client.responses.retrieve(created.id, extra_headers=PROVIDER)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    stack.client.responses.delete(created.id, extra_headers=PROVIDER)
    with pytest.raises(openai.NotFoundError):
        stack.client.responses.retrieve(created.id, extra_headers=PROVIDER)


def test_files_upload_list_content_and_delete(stack: ResourceStack) -> None:
    data = b'{"custom_id": "1", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'
    uploaded = stack.client.files.create(file=("batch.jsonl", data), purpose="batch", extra_headers=PROVIDER)
    assert uploaded.bytes == len(data) and uploaded.filename == "batch.jsonl"
    assert uploaded.id in [f.id for f in stack.client.files.list(extra_headers=PROVIDER)]
    assert stack.client.files.content(uploaded.id, extra_headers=PROVIDER).read() == data
    assert stack.client.files.delete(uploaded.id, extra_headers=PROVIDER).deleted is True
    sent = stack.upstream.requests[0]
    assert sent.path == "/v1/files" and sent.headers["Authorization"] == f"Bearer {KEY}"


def test_batches_create_retrieve_cancel(stack: ResourceStack) -> None:
    uploaded = stack.client.files.create(file=("in.jsonl", b"{}\n"), purpose="batch", extra_headers=PROVIDER)
    batch = stack.client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", extra_headers=PROVIDER
    )
    assert stack.client.batches.retrieve(batch.id, extra_headers=PROVIDER).status == "validating"
    assert stack.client.batches.cancel(batch.id, extra_headers=PROVIDER).status == "cancelling"
    assert batch.id in [b.id for b in stack.client.batches.list(extra_headers=PROVIDER)]


def test_provider_kind_with_two_accounts_is_ambiguous(stack: ResourceStack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.files.list(extra_headers={"x-tfy-provider-name": "openai"})
    assert "openai-main" in caught.value.message and "openai-other" in caught.value.message


def test_missing_provider_name_is_a_clear_400(stack: ResourceStack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.files.list()
    assert "x-tfy-provider-name" in caught.value.message
    assert stack.upstream.requests == []


def test_unknown_provider_account_is_404(stack: ResourceStack) -> None:
    with pytest.raises(openai.NotFoundError):
        stack.client.batches.list(extra_headers={"x-tfy-provider-name": "nope"})


def test_account_access_is_checked(stack: ResourceStack) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        stack.client.files.list(extra_headers={"x-tfy-provider-name": "openai-other"})
    assert stack.upstream.requests == []


def test_non_openai_shaped_account_is_refused(stack: ResourceStack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.files.list(extra_headers={"x-tfy-provider-name": "mock-main"})
    assert "OpenAI-shaped" in caught.value.message


def test_upstream_errors_pass_through_without_the_key(stack: ResourceStack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        stack.client.files.retrieve("file_missing", extra_headers=PROVIDER)
    assert KEY not in str(caught.value.body)


def test_responses_calls_count_against_rate_limits(
    gateway_factory: GatewayFactory, resources_upstream: OpenAIResourcesMock
) -> None:
    limits = """---
type: gateway-rate-limiting-config
name: limits
rules:
  - {id: responses-rpm, when: {models: [openai-main/gpt-4o]}, limit_to: 1, unit: requests_per_minute}
"""
    gateway = gateway_factory(CONFIG + limits, port=resources_upstream.port)
    client = gateway.client(gateway.create_token(user=ALICE))
    client.responses.create(model="openai-main/gpt-4o", input="one")
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="openai-main/gpt-4o", input="two")
    assert "responses-rpm" in caught.value.message
