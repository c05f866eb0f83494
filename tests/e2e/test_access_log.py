"""The access log of a real `relaygate serve`: one stdout line per request, text or JSON or none, and
never a token, an upstream key or a body in anything the process prints."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from relaygate.observe.access_format import FIELDS
from tests.helpers.gateway import GatewayProcess, free_port, render, token_secret_of
from tests.helpers.manifests import ALICE, AZURE_KEY, OPENAI_KEY, STANDARD
from tests.upstreams.openai_mock import OpenAIMock

BODY_TEXT = "access-log body text that must stay out of stdout"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": BODY_TEXT}]
CHAT_ROUTE = "/api/llm/chat/completions"
PROXY_ROUTE = "/proxy-api/{account}/{endpoint}/{path}"
CONFIG = (
    STANDARD
    + """---
type: provider-account/custom-endpoint
name: endpoints
auth_data: {type: header, headers: {Authorization: "Bearer sk-upstream-secret-123"}}
integrations:
  - {type: integration/model/custom-endpoint, name: oai, base_url: "http://127.0.0.1:{port}/v1"}
---
type: gateway-rate-limiting-config
name: limits
rules:
  - {id: one-a-minute, when: {models: [openai-main/gpt-4o-priced]}, limit_to: 1, unit: requests_per_minute}
"""
)
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_text(line: str) -> dict[str, str]:
    """A logfmt line as {key: raw value} (quoted values keep their quotes and escapes)."""
    return {key: value for key, value in _PAIR.findall(line)}


@dataclass
class Served:
    gateway: GatewayProcess
    token: str
    stdout: str
    stderr: str

    def lines_of(self, request_id: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if f"request_id={request_id} " in line]

    def line_of(self, request_id: str) -> dict[str, str]:
        lines = self.lines_of(request_id)
        assert len(lines) == 1, f"{request_id}: {lines}\n{self.stdout}"
        return parse_text(lines[0])


def start(
    root: Path, mock: OpenAIMock, vllm: OpenAIMock, *args: str, env: dict[str, str] | None = None
) -> GatewayProcess:
    text = render(CONFIG, port=mock.port, vllm_port=vllm.port, closed_port=free_port())
    gateway = GatewayProcess(root, text, env=env)
    gateway.serve_args = list(args)
    return gateway.start()


def rid(name: str) -> dict[str, str]:
    return {"x-request-id": f"alog-{name}"}


def exercise(gateway: GatewayProcess, token: str) -> None:
    """Chat, priced chat, stream, 401, 404 model, 429, forged model name, custom endpoint (token in query)."""
    client = gateway.client(token)
    client.chat.completions.create(model="openai-main/gpt-4o", messages=MESSAGES, extra_headers=rid("chat"))
    client.chat.completions.create(model="openai-main/gpt-4o-priced", messages=MESSAGES, extra_headers=rid("priced"))
    chunks = client.chat.completions.create(
        model="openai-main/gpt-4o",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=rid("stream"),
    )
    assert list(chunks)
    with pytest.raises(openai.AuthenticationError):
        gateway.client("rg-notarealtoken-" + "x" * 43).chat.completions.create(
            model="openai-main/gpt-4o", messages=MESSAGES, extra_headers=rid("401")
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai-main/nope", messages=MESSAGES, extra_headers=rid("404"))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="openai-main/gpt-4o-priced", messages=MESSAGES, extra_headers=rid("429"))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="mock/echo\nforged=1 status=200 request_id=alog-chat", messages=MESSAGES, extra_headers=rid("forged")
        )
    proxied = gateway.request(
        "POST",
        f"/proxy-api/endpoints/oai/chat/completions?api_key={token}&t={token_secret_of(token)}",
        token=token,
        json={"model": "gpt-4o", "messages": MESSAGES},
        headers=rid("proxy"),
    )
    assert proxied.status == 200, proxied.body


def finished(gateway: GatewayProcess, token: str, count: int) -> Served:
    """Stop the gateway (its log flushes) and read what it printed."""
    deadline = time.monotonic() + 5
    while gateway.stdout_path.read_text().count("\n") < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gateway.stop() == 0
    return Served(gateway, token, gateway.stdout_path.read_text(), gateway.stderr_path.read_text())


@pytest.fixture(scope="module")
def mocks() -> Iterator[tuple[OpenAIMock, OpenAIMock]]:
    with OpenAIMock(OPENAI_KEY, AZURE_KEY).running() as mock, OpenAIMock().running() as vllm:
        yield mock, vllm


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, mocks: tuple[OpenAIMock, OpenAIMock]) -> Served:
    gateway = start(tmp_path_factory.mktemp("text"), *mocks)
    token = gateway.create_token(user=ALICE)
    try:
        exercise(gateway, token)
    finally:
        result = finished(gateway, token, 8)
    return result


def test_chat_line_has_route_status_subject_models_tokens_and_latency(served: Served) -> None:
    line = served.line_of("alog-chat")
    assert line["method"] == "POST" and line["route"] == CHAT_ROUTE and line["status"] == "200"
    assert line["subject"] == f"user:{ALICE}"
    assert line["model"] == line["resolved_model"] == "openai-main/gpt-4o"
    assert int(line["input_tokens"]) > 0 and int(line["output_tokens"]) > 0
    assert float(line["latency_ms"]) > 0 and line["error_type"] == "-"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])


def test_priced_chat_line_has_its_cost(served: Served) -> None:
    assert float(served.line_of("alog-priced")["cost_usd"]) > 0


def test_stream_line_has_time_to_first_token(served: Served) -> None:
    line = served.line_of("alog-stream")
    assert line["status"] == "200" and float(line["ttft_ms"]) > 0 and int(line["output_tokens"]) > 0


@pytest.mark.parametrize(
    ("name", "status", "error_type"),
    [("401", "401", "authentication_error"), ("404", "404", "not_found_error"), ("429", "429", "rate_limit_exceeded")],
)
def test_error_line_has_status_and_error_type(served: Served, name: str, status: str, error_type: str) -> None:
    line = served.line_of(f"alog-{name}")
    assert (line["status"], line["error_type"], line["route"]) == (status, error_type, CHAT_ROUTE)


def test_unauthenticated_line_has_no_subject(served: Served) -> None:
    assert served.line_of("alog-401")["subject"] == "-"


def test_custom_endpoint_line_names_the_route_template_not_the_path(served: Served) -> None:
    line = served.line_of("alog-proxy")
    assert line["route"] == PROXY_ROUTE and line["status"] == "200" and line["model"] == "endpoints/oai"
    assert "api_key" not in served.stdout and "?" not in served.lines_of("alog-proxy")[0]


def test_forged_newline_in_a_model_name_stays_on_its_own_line(served: Served) -> None:
    line = served.line_of("alog-forged")
    assert line["model"] == '"mock/echo\\nforged=1 status=200 request_id=alog-chat"'
    assert not any(text.startswith("forged") for text in served.stdout.splitlines())
    assert len(served.lines_of("alog-chat")) == 1


def test_every_request_has_exactly_one_line(served: Served) -> None:
    names = ["chat", "priced", "stream", "401", "404", "429", "forged", "proxy"]
    assert all(len(served.lines_of(f"alog-{name}")) == 1 for name in names), served.stdout
    assert len(served.stdout.splitlines()) == len(names), served.stdout


def test_no_token_upstream_key_or_body_in_stdout_or_stderr(served: Served) -> None:
    secrets = {
        "token": served.token,
        "token secret": token_secret_of(served.token),
        "OpenAI key": OPENAI_KEY,
        "Azure key": AZURE_KEY,
        "request body": BODY_TEXT,
        "Authorization header": "Bearer",
    }
    output = {"stdout": served.stdout, "stderr": served.stderr}
    leaks = [
        f"{label} in {place}" for label, secret in secrets.items() for place, text in output.items() if secret in text
    ]
    assert leaks == []
    assert "rg-" not in served.stdout


def test_json_mode_prints_one_object_per_request_with_every_field(
    tmp_path: Path, mocks: tuple[OpenAIMock, OpenAIMock]
) -> None:
    gateway = start(tmp_path, *mocks, "--access-log", "json")
    token = gateway.create_token(user=ALICE)
    gateway.client(token).chat.completions.create(model="mock/echo", messages=MESSAGES, extra_headers=rid("json"))
    with pytest.raises(openai.NotFoundError):
        gateway.client(token).chat.completions.create(model="no/such\nmodel", messages=MESSAGES)
    out = finished(gateway, token, 2)
    rows = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 2 and all(list(row) == list(FIELDS) for row in rows)
    ok, missing = rows
    assert (ok["request_id"], ok["status"], ok["route"], ok["model"]) == ("alog-json", 200, CHAT_ROUTE, "mock/echo")
    assert isinstance(ok["latency_ms"], float) and ok["error_type"] is None and ok["subject"] == f"user:{ALICE}"
    assert (missing["status"], missing["model"], missing["error_type"]) == (404, "no/such\nmodel", "not_found_error")
    assert BODY_TEXT not in out.stdout + out.stderr


def test_off_prints_nothing_on_stdout(tmp_path: Path, mocks: tuple[OpenAIMock, OpenAIMock]) -> None:
    gateway = start(tmp_path, *mocks, env={"RELAYGATE_ACCESS_LOG": "off"})
    token = gateway.create_token(user=ALICE)
    gateway.client(token).chat.completions.create(model="mock/echo", messages=MESSAGES)
    gateway.wait_for_logs(1)  # the request is over and recorded
    out = finished(gateway, token, 0)
    assert out.stdout == ""
