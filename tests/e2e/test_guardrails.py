"""Guardrails through a real `relaygate serve`, driven by the openai and anthropic SDKs.

Input: a secret blocks (400 guardrail_blocked naming the guardrail, nothing sent upstream); an email
is masked in what goes upstream and in the log row; an audit guardrail flags and never refuses; a
webhook that fails under `enforce` refuses with 503. Output: a blocked non-streaming answer is a 400;
a streamed one (buffer mode) ends with the dialect's error event and no terminator, and no byte of the
value reaches the client; window mode masks a value in flight. Reporting: `x-relaygate-guardrails`,
`x-tfy-applied-configurations.guardrails`, `server-timing` stages, the log row's verdicts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import openai
import orjson
import pytest

from tests.helpers.gateway import GatewayHandle, GatewayProcess, free_port, render
from tests.helpers.manifests import ALICE, AZURE_KEY, OPENAI_KEY, STANDARD
from tests.upstreams.openai_mock import OpenAIMock

SECRET = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "bob.smith@corp.example.com"

GUARDRAILS = """---
type: provider-account/guardrail-config-group
name: safety
integrations:
  - name: pii-mask
    type: integration/guardrail-config/pii
    operation: mutate
    config: {entities: [email], action: mask}
  - name: no-secrets
    type: integration/guardrail-config/secrets
    config: {kinds: [aws_access_key, openai_key]}
  - name: topics
    type: integration/guardrail-config/keywords
    config: {words: [forbidden-topic]}
  - name: watch
    type: integration/guardrail-config/keywords
    enforcing_strategy: audit
    config: {words: [watchlist]}
  - name: pii-out
    type: integration/guardrail-config/pii
    config: {entities: [email]}
  - name: pii-out-mask
    type: integration/guardrail-config/pii
    operation: mutate
    config: {entities: [email], action: mask}
  - name: hook
    type: integration/guardrail-config/webhook
    timeout_ms: 2000
    config: {url: "http://127.0.0.1:{hook_port}/check"}
  - name: judge
    type: integration/guardrail-config/llm_judge
    timeout_ms: 5000
    config: {model: judges/strict, policy: "No talk about judge-bad things."}
---
type: provider-account/self-hosted-model
name: judges
integrations:
  - name: strict
    type: integration/model/self-hosted-model
    hosted_model_name: judge-1
    url: "http://127.0.0.1:{hook_port}/v1"
    model_server: openai-compatible
    model_types: [chat]
---
type: gateway-guardrails-config
name: guardrails
rules:
  - id: input-checks
    when: {target: {operator: or, conditions: {model: {values: [openai-main/gpt-4o], condition: in}}}}
    llm_input_guardrails: [safety/pii-mask, safety/no-secrets, safety/topics, safety/watch]
  - id: output-block
    when: {models: [vllm-local/llama]}
    llm_output_guardrails: [safety/pii-out]
  - id: output-window
    when: {models: [openai-main/gpt-4o-priced]}
    llm_output_guardrails: [safety/pii-out-mask]
    stream_mode: window
  - id: webhook
    when: {models: [azure-main/gpt4o-deploy]}
    llm_input_guardrails: [safety/hook]
  - id: judged
    when: {models: [mock/echo]}
    llm_input_guardrails: [safety/judge]
"""


class _Webhook(BaseHTTPRequestHandler):
    """A guardrail webhook: blocks text containing `webhook-block`, fails (500) on `webhook-fail`."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.path.endswith("/chat/completions"):  # the judge model: says whether the text breaks the policy
            prompt = body["messages"][0]["content"]
            text_part = prompt.rsplit("Text:", 1)[-1]
            verdict = {"violation": "judge-bad" in text_part, "reason": "judged"}
            answer = {
                "id": "chatcmpl-judge",
                "object": "chat.completion",
                "created": 1,
                "model": "judge-1",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": orjson.dumps(verdict).decode()},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
            self._send(orjson.dumps(answer))
            return
        text = body["text"]
        if "slow-" in text:
            time.sleep(0.5)  # a slow verdict: the model call has answered by then
        if "webhook-fail" in text:
            self.send_response(500)
            self.end_headers()
            return
        blocked = "webhook-block" in text or "slow-block" in text
        verdict = {"verdict": "block", "reason": "webhook said no"} if blocked else {"verdict": "pass"}
        self._send(orjson.dumps(verdict))

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Served:
    gateway: GatewayHandle
    upstream: OpenAIMock
    vllm: OpenAIMock
    alice: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    upstream = OpenAIMock(OPENAI_KEY, AZURE_KEY).start_in_thread()
    vllm = OpenAIMock().start_in_thread()
    config = render(
        STANDARD + GUARDRAILS,
        port=upstream.port,
        vllm_port=vllm.port,
        closed_port=free_port(),
        hook_port=hook.server_address[1],
    )
    gateway = GatewayProcess(tmp_path_factory.mktemp("guardrails"), config).start()
    try:
        yield Served(gateway, upstream, vllm, gateway.create_token(user=ALICE))
    finally:
        gateway.stop()
        upstream.stop_thread()
        vllm.stop_thread()
        hook.shutdown()
        hook.server_close()


def _chat(served: Served, model: str, text: str, **headers: str) -> openai.types.chat.ChatCompletion:
    client = served.gateway.client(served.alice)
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], extra_headers=headers or None
    )


# -- input ------------------------------------------------------------------------------------------


def test_a_secret_in_the_prompt_is_blocked_before_the_model_is_called(served: Served) -> None:
    served.upstream.reset()
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(served, "openai-main/gpt-4o", f"here is my key {SECRET} please store it")
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "guardrail_blocked" and error["type"] == "guardrail_blocked"
    assert "safety/no-secrets" in error["message"]
    assert SECRET not in caught.value.response.text  # the found value is never echoed
    assert any(g["name"] == "safety/no-secrets" and g["result"] == "block" for g in error["guardrails"])
    assert served.upstream.requests == []  # nothing went upstream


def test_a_keyword_guardrail_blocks(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(served, "openai-main/gpt-4o", "tell me about the forbidden-topic today")
    assert "safety/topics" in str(caught.value)


def test_an_email_is_masked_upstream_in_the_log_and_reported(served: Served) -> None:
    served.upstream.reset()
    raw = served.gateway.client(served.alice).chat.completions.with_raw_response.create(
        model="openai-main/gpt-4o", messages=[{"role": "user", "content": f"mail {EMAIL} about it"}]
    )
    completion = raw.parse()
    sent = served.upstream.last("/chat/completions").json["messages"][0]["content"]
    assert sent == "mail [EMAIL_REDACTED] about it"
    assert EMAIL not in (completion.choices[0].message.content or "")
    assert "safety/pii-mask=mutate" in raw.headers["x-relaygate-guardrails"]
    applied = orjson.loads(raw.headers["x-tfy-applied-configurations"])
    assert applied["guardrails"]["rule"] == "input-checks"
    assert "safety/pii-mask:mutate" in applied["guardrails"]["input"]
    assert "input_guardrails;dur=" in raw.headers["server-timing"]
    row = served.gateway.wait_for_log(raw.headers["x-request-id"])
    assert EMAIL not in orjson.dumps(row).decode()
    verdicts = {g["name"]: g["result"] for g in row["extra"]["guardrails"]}
    assert verdicts["safety/pii-mask"] == "mutate" and verdicts["safety/no-secrets"] == "pass"


def test_an_audit_guardrail_flags_and_never_refuses(served: Served) -> None:
    raw = served.gateway.client(served.alice).chat.completions.with_raw_response.create(
        model="openai-main/gpt-4o", messages=[{"role": "user", "content": "the watchlist item"}]
    )
    assert raw.http_response.status_code == 200
    assert "safety/watch=flag" in raw.headers["x-relaygate-guardrails"]


def test_a_request_without_a_matching_rule_runs_no_guardrail(served: Served) -> None:
    raw = served.gateway.client(served.alice).chat.completions.with_raw_response.create(
        model="team-only/gpt-4o", messages=[{"role": "user", "content": f"key {SECRET}"}]
    )
    assert raw.http_response.status_code == 200
    assert "x-relaygate-guardrails" not in raw.headers


def test_a_webhook_verdict_blocks_and_its_failure_refuses_with_503(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as blocked:
        _chat(served, "azure-main/gpt4o-deploy", "please webhook-block this")
    assert "safety/hook" in str(blocked.value) and "webhook said no" in str(blocked.value)
    with pytest.raises(openai.InternalServerError) as failed:
        _chat(served, "azure-main/gpt4o-deploy", "please webhook-fail this")
    assert failed.value.status_code == 503
    body = failed.value.body
    assert isinstance(body, dict) and body["code"] == "guardrail_unavailable"
    assert _chat(served, "azure-main/gpt4o-deploy", "fine text").choices[0].message.content


def test_a_request_may_not_add_guardrails_unless_config_allows(served: Served) -> None:
    result = served.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=served.alice,
        json={"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-tfy-guardrails": '{"llm_input_guardrails": ["safety/topics"]}'},
    )
    assert result.status == 400
    assert "allow_request_guardrails" in result.json()["error"]["message"]


# -- output -----------------------------------------------------------------------------------------


def test_a_blocked_answer_is_a_400_naming_the_output_stage(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(served, "vllm-local/llama", f"repeat {EMAIL}")
    body = caught.value.body
    assert isinstance(body, dict) and "safety/pii-out" in body["message"]
    assert [g["stage"] for g in body["guardrails"] if g["result"] == "block"] == ["output"]
    assert EMAIL not in caught.value.response.text


def test_a_blocked_stream_ends_with_an_error_event_and_sends_no_byte_of_it(served: Served) -> None:
    stream = served.gateway.client(served.alice).chat.completions.create(
        model="vllm-local/llama", messages=[{"role": "user", "content": f"say {EMAIL} now"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "safety/pii-out" in str(caught.value)
    assert received == []  # buffer mode: nothing before the verdict, nothing after a block


def test_a_clean_stream_is_replayed_whole_after_the_check(served: Served) -> None:
    stream = served.gateway.client(served.alice).chat.completions.create(
        model="vllm-local/llama", messages=[{"role": "user", "content": "nothing personal here"}], stream=True
    )
    text = "".join(c.delta.content or "" for chunk in stream for c in chunk.choices)
    assert text == "echo: nothing personal here"


def test_a_blocked_completions_stream_ends_with_an_error_event(served: Served) -> None:
    stream = served.gateway.client(served.alice).completions.create(
        model="vllm-local/llama", prompt=f"say {EMAIL}", stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:  # noqa: PT012 (the error comes while iterating)
        for chunk in stream:
            received.extend(c.text for c in chunk.choices)
    assert "safety/pii-out" in str(caught.value)
    assert EMAIL not in "".join(received)


def test_window_mode_masks_a_value_in_flight(served: Served) -> None:
    stream = served.gateway.client(served.alice).chat.completions.create(
        model="openai-main/gpt-4o-priced", messages=[{"role": "user", "content": f"write to {EMAIL} soon"}], stream=True
    )
    text = "".join(c.delta.content or "" for chunk in stream for c in chunk.choices)
    assert text == "echo: write to [EMAIL_REDACTED] soon"


def test_anthropic_messages_stream_block_is_an_error_event(served: Served) -> None:
    client = anthropic.Anthropic(api_key=served.alice, base_url=served.gateway.url, max_retries=0)
    with pytest.raises(anthropic.APIError) as caught:  # noqa: PT012 (the error comes while iterating)
        with client.messages.stream(
            model="vllm-local/llama", max_tokens=64, messages=[{"role": "user", "content": f"say {EMAIL}"}]
        ) as stream:
            for _ in stream.text_stream:
                pass
    assert "safety/pii-out" in str(caught.value)
    client.close()


def test_an_llm_judge_on_this_gateway_blocks_and_its_call_is_logged(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(served, "mock/echo", "let us discuss judge-bad matters")
    assert "safety/judge" in str(caught.value)
    raw = served.gateway.client(served.alice).chat.completions.with_raw_response.create(
        model="mock/echo", messages=[{"role": "user", "content": "a harmless question"}]
    )
    assert raw.http_response.status_code == 200
    assert "safety/judge=pass" in raw.headers["x-relaygate-guardrails"]
    rows = served.gateway.wait_for_logs(
        1, model="judges/strict", metadata={"parent_request_id": raw.headers["x-request-id"]}
    )
    assert rows and rows[0]["status"] == 200  # the judge's call went through the gateway, as the caller


PARALLEL = """---
type: provider-account/guardrail-config-group
name: safety
integrations:
  - {name: hook, type: webhook, timeout_ms: 3000, config: {url: "http://127.0.0.1:{hook_port}/check"}}
  - {name: topics, type: keywords, config: {words: [forbidden-topic]}}
---
type: gateway-guardrails-config
name: guardrails
parallel_with_model: true
allow_request_guardrails: true
rules:
  - {id: all, when: {models: [openai-main/gpt-4o]}, llm_input_guardrails: [safety/hook]}
"""


def test_parallel_with_model_starts_the_call_but_sends_nothing_before_the_verdict(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    upstream = OpenAIMock(OPENAI_KEY, AZURE_KEY).start_in_thread()
    config = render(
        STANDARD + PARALLEL,
        port=upstream.port,
        vllm_port=free_port(),
        closed_port=free_port(),
        hook_port=hook.server_address[1],
    )
    gateway = GatewayProcess(tmp_path_factory.mktemp("parallel"), config).start()
    try:
        client = gateway.client(gateway.create_token(user=ALICE))
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="openai-main/gpt-4o", messages=[{"role": "user", "content": "a slow-block question"}]
            )
        assert "safety/hook" in str(caught.value)
        assert "echo:" not in caught.value.response.text
        assert len(upstream.requests) == 1  # the model call ran beside the slow validator
        with pytest.raises(openai.BadRequestError):  # a stream too: refused before its response started
            client.chat.completions.create(
                model="openai-main/gpt-4o", messages=[{"role": "user", "content": "a slow-block stream"}], stream=True
            )
        passed = client.chat.completions.create(
            model="openai-main/gpt-4o", messages=[{"role": "user", "content": "a slow-pass question"}]
        )
        assert passed.choices[0].message.content == "echo: a slow-pass question"
        # allow_request_guardrails: a request adds a declared guardrail (never removes one)
        added = {"x-tfy-guardrails": '{"llm_input_guardrails": ["safety/topics"]}'}
        with pytest.raises(openai.BadRequestError) as topic:
            client.chat.completions.create(
                model="openai-main/gpt-4o",
                messages=[{"role": "user", "content": "the forbidden-topic"}],
                extra_headers=added,
            )
        assert "safety/topics" in str(topic.value)
        unknown = {"x-tfy-guardrails": '{"llm_input_guardrails": ["safety/nope"]}'}
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="openai-main/gpt-4o", messages=[{"role": "user", "content": "hi"}], extra_headers=unknown
            )
    finally:
        gateway.stop()
        upstream.stop_thread()
        hook.shutdown()
        hook.server_close()


def test_anthropic_messages_non_stream_block_is_an_anthropic_400(served: Served) -> None:
    client = anthropic.Anthropic(api_key=served.alice, base_url=served.gateway.url, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="vllm-local/llama", max_tokens=64, messages=[{"role": "user", "content": EMAIL}])
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"  # the Messages API's own error shape
    assert "safety/pii-out" in body["error"]["message"]
    assert EMAIL not in caught.value.response.text
    client.close()
