"""`/messages/count_tokens` for non-Anthropic models, through the real `anthropic` SDK and `relaygate serve`.

Gemini, Vertex AI and Bedrock count with their own token-counting APIs (`:countTokens`, CountTokens),
reached through the wire-faithful mocks configured with the provider e2e modules' own manifests: the
Gemini mock refuses bodies its API refuses, the Vertex mock wants a token from its token endpoint, the
Bedrock mock verifies every SigV4 signature. Each mock counts a prompt the way it reports a chat call's
prompt tokens, so the count is asserted exactly (and equals a Messages call's `input_tokens`). Providers
without a counting API (OpenAI here) still answer a clear 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.e2e.test_messages_api import WEATHER_TOOL
from tests.handlers import test_provider_bedrock as bedrock_e2e
from tests.handlers import test_provider_gemini as gemini_e2e
from tests.handlers import test_provider_vertex as vertex_e2e
from tests.helpers.gateway import render
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.manifests import ALICE, OPENAI_KEY
from tests.upstreams.aws_sigv4 import sdk_request_path
from tests.upstreams.bedrock_mock import ACCESS_KEY_ID, API_KEY, REGION, SECRET_ACCESS_KEY, BedrockMock
from tests.upstreams.gemini_mock import GeminiMock
from tests.upstreams.openai_mock import OpenAIMock

JSON = dict[str, Any]
OPENAI = """\
type: provider-account/openai
name: oai
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-upstream-secret-123}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
---
type: provider-account/virtual-model
name: counting
integrations:
  - name: gpt-then-gemini
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets: [{target: oai/gpt-4o, priority: 0}, {target: gemini-main/flash, priority: 1}]
"""
PROVIDERS = ["google-gemini", "google-vertex", "aws-bedrock"]
MODELS = {"google-gemini": gemini_e2e.FLASH, "google-vertex": vertex_e2e.FLASH, "aws-bedrock": "bedrock/haiku"}
SYSTEM = "answer briefly"
PROMPT = "how many tokens are in this prompt"
MESSAGES: list[Any] = [{"role": "user", "content": PROMPT}]
# The mocks count words: Gemini every text part (system included), Bedrock 2 per message plus its words.
EXPECTED = {"google-gemini": 2 + 7, "google-vertex": 2 + 7, "aws-bedrock": 2 + (2 + 7)}
GEMINI_TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
            }
        ]
    }
]
GEMINI_COUNTED: JSON = {
    "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
    "systemInstruction": {"parts": [{"text": SYSTEM}]},
    "tools": GEMINI_TOOLS,
}


@dataclass
class Stack:
    gateway: GatewayThread
    gemini: GeminiMock
    vertex: GeminiMock
    bedrock: BedrockMock
    openai: OpenAIMock
    token: str
    sdk: Any = None  # made on first use, closed with the stack

    def client(self) -> Any:
        """The real SDK aimed at the gateway (SDK retries off: tests count upstream requests)."""
        if self.sdk is None:
            self.sdk = anthropic.Anthropic(
                base_url=self.gateway.url + "/api/llm", api_key=self.token, max_retries=0, timeout=30.0
            )
        return self.sdk

    def count(self, model: str, **options: Any) -> Any:
        options.setdefault("messages", MESSAGES)
        return self.client().messages.count_tokens(model=model, **options)

    def counted(self, provider: str) -> Any:
        """The last token-counting request the provider's mock received."""
        if provider == "aws-bedrock":
            return self.bedrock.last("count-tokens")
        mock = self.gemini if provider == "google-gemini" else self.vertex
        return [r for r in mock.requests if r.path.endswith(":countTokens")][-1]


@pytest.fixture(scope="module")
def stack_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    mocks: dict[str, Any] = {
        "gemini": GeminiMock(gemini_e2e.GEMINI_KEY),
        "vertex": GeminiMock(static_bearer=vertex_e2e.STATIC_BEARER),
        "bedrock": BedrockMock(),
        "openai": OpenAIMock(OPENAI_KEY),
    }
    gateway: GatewayThread | None = None
    try:
        for mock in mocks.values():
            mock.start_in_thread()
        config = "---\n".join(
            [
                render(gemini_e2e.CONFIG, port=mocks["gemini"].port),
                render(
                    vertex_e2e.CONFIG, port=mocks["vertex"].port, **vertex_e2e.service_account_keys(mocks["vertex"])
                ),
                render(
                    bedrock_e2e.CONFIG,
                    port=mocks["bedrock"].port,
                    akid=ACCESS_KEY_ID,
                    secret=SECRET_ACCESS_KEY,
                    region=REGION,
                    profile=bedrock_e2e.PROFILE,
                    profile_arn=bedrock_e2e.PROFILE_ARN,
                    api_key=API_KEY,
                    wrong=bedrock_e2e.WRONG_SECRET,
                ),
                render(OPENAI, port=mocks["openai"].port),
            ]
        )
        gateway = GatewayThread(Path(tmp_path_factory.mktemp("count-tokens")), config).start()
        stack = Stack(gateway, **mocks, token=gateway.create_token(user=ALICE))
        yield stack
        if stack.sdk is not None:
            stack.sdk.close()
    finally:
        if gateway is not None:
            gateway.stop()
        for mock in mocks.values():
            mock.stop_thread()


@pytest.fixture
def stack(stack_module: Stack) -> Stack:
    for mock in (stack_module.gemini, stack_module.vertex, stack_module.bedrock, stack_module.openai):
        mock.reset()
    return stack_module


# -- counting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_count_is_what_the_upstream_counted(stack: Stack, provider: str) -> None:
    counted = stack.count(MODELS[provider], system=SYSTEM, tools=[WEATHER_TOOL])
    assert counted.input_tokens == EXPECTED[provider]
    usage = stack.counted(provider).usage
    assert usage is not None
    assert counted.input_tokens == usage["inputTokens" if provider == "aws-bedrock" else "prompt_tokens"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_count_matches_the_input_tokens_of_the_same_message(stack: Stack, provider: str) -> None:
    counted = stack.count(MODELS[provider], system=SYSTEM)
    message = stack.client().messages.create(model=MODELS[provider], max_tokens=64, system=SYSTEM, messages=MESSAGES)
    assert counted.input_tokens == message.usage.input_tokens == EXPECTED[provider]


def test_gemini_gets_the_prompt_inside_generate_content_request(stack: Stack) -> None:
    stack.count(gemini_e2e.FLASH, system=SYSTEM, tools=[WEATHER_TOOL])
    recorded = stack.counted("google-gemini")
    assert recorded.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert recorded.header("x-goog-api-key") == gemini_e2e.GEMINI_KEY
    assert recorded.json == {"generateContentRequest": {"model": "models/gemini-2.5-flash", **GEMINI_COUNTED}}


def test_vertex_gets_the_prompt_itself_with_a_service_account_token(stack: Stack) -> None:
    stack.count(vertex_e2e.FLASH, system=SYSTEM, tools=[WEATHER_TOOL])
    recorded = stack.counted("google-vertex")
    assert recorded.path == vertex_e2e.PREFIX + "/gemini-2.5-flash:countTokens"
    scheme, _, token = recorded.header("Authorization").partition(" ")
    assert scheme == "Bearer" and token in stack.vertex.issued_tokens
    assert recorded.json == GEMINI_COUNTED


def test_bedrock_gets_the_converse_prompt_signed(stack: Stack) -> None:
    stack.count("bedrock/haiku", system=SYSTEM, tools=[WEATHER_TOOL])
    recorded = stack.counted("aws-bedrock")
    assert recorded.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
    schema = WEATHER_TOOL["input_schema"]
    assert recorded.json == {
        "input": {
            "converse": {
                "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
                "system": [{"text": SYSTEM}],
                "toolConfig": {
                    "tools": [
                        {
                            "toolSpec": {
                                "name": "get_weather",
                                "description": "Current weather for a city",
                                "inputSchema": {"json": schema},
                            }
                        }
                    ]
                },
            }
        }
    }


@pytest.mark.parametrize(
    ("model", "model_id"), [("bedrock/haiku", bedrock_e2e.HAIKU), ("bedrock/sonnet-arn", bedrock_e2e.PROFILE_ARN)]
)
def test_bedrock_model_id_is_escaped_as_the_aws_sdk_does(stack: Stack, model: str, model_id: str) -> None:
    assert stack.count(model).input_tokens == EXPECTED["aws-bedrock"] - 2  # no system prompt
    assert stack.counted("aws-bedrock").path == sdk_request_path(model_id, "count-tokens", REGION)


def test_bedrock_api_key_account_counts_too(stack: Stack) -> None:
    assert stack.count("bedrock-key/haiku").input_tokens == EXPECTED["aws-bedrock"] - 2
    assert stack.counted("aws-bedrock").headers["Authorization"] == f"Bearer {API_KEY}"


def test_proto_field_names_in_googles_answer_are_read(stack: Stack) -> None:
    # "snake case": the mock answers `{"total_tokens": 4, "prompt_tokens_details": [...]}`.
    counted = stack.count(gemini_e2e.FLASH, messages=[{"role": "user", "content": "answer in snake case"}])
    assert counted.input_tokens == 4


def test_counting_sends_no_chat_request(stack: Stack) -> None:
    stack.count(gemini_e2e.FLASH)
    assert [r.path.rsplit(":", 1)[-1] for r in stack.gemini.requests] == ["countTokens"]


def test_virtual_model_counts_with_its_target_that_can(stack: Stack) -> None:
    assert stack.count("counting/gpt-then-gemini", system=SYSTEM).input_tokens == EXPECTED["google-gemini"]
    assert stack.openai.requests == []
    assert stack.counted("google-gemini").path.endswith("/gemini-2.5-flash:countTokens")


# -- errors ---------------------------------------------------------------------------------------


def test_gemini_rate_limit_is_an_anthropic_rate_limit_error(stack: Stack) -> None:
    stack.gemini.fail_next(429, message="Quota exceeded for countTokens (mock)", count=10, path=":countTokens")
    with pytest.raises(anthropic.RateLimitError) as caught:
        stack.count(gemini_e2e.FLASH)
    assert caught.value.status_code == 429
    body = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert body["error"]["message"] == "Quota exceeded for countTokens (mock)"  # type: ignore[index]


def test_gemini_unknown_model_is_an_anthropic_not_found_error(stack: Stack) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        stack.count("gemini-main/missing")
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "supported for countTokens" in caught.value.body["error"]["message"]  # type: ignore[index]
    assert stack.gemini.requests[-1].path == "/v1beta/models/missing-model:countTokens"


def test_vertex_permission_error_keeps_its_status(stack: Stack) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        stack.count("vertex-elsewhere/flash")
    assert caught.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert "aiplatform.endpoints.predict" in caught.value.body["error"]["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("error_type", "status", "exception", "kind"),
    [
        ("ThrottlingException", 429, anthropic.RateLimitError, "rate_limit_error"),
        ("ValidationException", 400, anthropic.BadRequestError, "invalid_request_error"),
        ("AccessDeniedException", 403, anthropic.PermissionDeniedError, "permission_error"),
    ],
)
def test_bedrock_errors_are_anthropic_shaped(
    stack: Stack, error_type: str, status: int, exception: type[anthropic.APIStatusError], kind: str
) -> None:
    stack.bedrock.fail_next(error_type, message=f"{error_type} (mock)", count=10, action="count-tokens")
    with pytest.raises(exception) as caught:
        stack.count("bedrock/haiku")
    assert caught.value.status_code == status
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == kind  # type: ignore[index]
    assert caught.value.body["error"]["message"] == f"{error_type} (mock)"  # type: ignore[index]


def test_wrong_bedrock_secret_is_an_authentication_error(stack: Stack) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        stack.count("bedrock-wrong/haiku")
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert bedrock_e2e.WRONG_SECRET not in str(caught.value.body)


def test_untranslatable_input_is_refused_before_any_upstream_call(stack: Stack) -> None:
    content = [{"type": "image", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        stack.count(gemini_e2e.FLASH, messages=[{"role": "user", "content": content}])
    assert "only supported by Anthropic models" in caught.value.message
    assert stack.gemini.requests == []


def test_provider_without_a_counting_api_is_a_clear_400(stack: Stack) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        stack.count("oai/gpt-4o")
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert caught.value.body["error"]["message"] == (  # type: ignore[index]
        "count_tokens is only available for models of providers anthropic, aws-bedrock, google-gemini, "
        "google-vertex; 'oai/gpt-4o' is not served by one"
    )
    assert stack.openai.requests == []
