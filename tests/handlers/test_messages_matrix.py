"""The inbound Anthropic Messages API against every provider kind, through the real `anthropic` SDK.

One `relaygate serve` in front of the wire-faithful mocks, configured with the same manifests as each
provider's own e2e module: Anthropic (native relay, `claude/sonnet`), OpenAI (`oai/gpt-4o`; tool calls from
the scripted `tools/gpt-4o` upstream, since the OpenAI mock only echoes), AWS Bedrock (SigV4-verified
Converse), Cohere v2, the Gemini API and Vertex AI (service-account token from the mock's token endpoint).
Per provider: a text answer and a text stream with the usage the mock reported, a tool call and a streamed
tool call (arguments reassembled from `input_json_delta` events; split across chunks where the upstream
splits them), a tool_result turn that reaches the upstream in its native shape, and the model's own call
sent back with its result (its id, or for Gemini its thought signature, reaches the upstream again).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.dialects.anthropic_messages import messages_rig
from tests.dialects.anthropic_messages.tool_upstream import USAGE, Script, ToolUpstream
from tests.e2e.test_messages_api import WEATHER_TOOL
from tests.handlers import test_provider_bedrock as bedrock_e2e
from tests.handlers import test_provider_cohere as cohere_e2e
from tests.handlers import test_provider_gemini as gemini_e2e
from tests.handlers import test_provider_vertex as vertex_e2e
from tests.helpers.gateway import free_port, render
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.manifests import ALICE, OPENAI_KEY
from tests.upstreams.anthropic_mock import AnthropicMock, echo_reply, instance_for_schema, tool_reply
from tests.upstreams.bedrock_mock import ACCESS_KEY_ID, API_KEY, REGION, SECRET_ACCESS_KEY, BedrockMock, tool_input
from tests.upstreams.cohere_mock import CohereMock
from tests.upstreams.gemini_mock import GeminiMock, reply_text, sample_args, signature_for
from tests.upstreams.openai_mock import OpenAIMock, chat_reply

JSON = dict[str, Any]
TEXT = "hello matrix of providers"
# Every mock calls get_weather for this: Anthropic and Bedrock because it names the tool, Gemini because it
# says "weather", Cohere whenever tools are offered; the OpenAI upstream is scripted.
TOOL_PROMPT = "use get_weather for the weather in Paris"
CALL_ID = "toolu_matrix01"
RESULT = "sunny, 24C"
SCHEMA: JSON = WEATHER_TOOL["input_schema"]
RAW_EVENTS = {
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
}
PROVIDERS = ["anthropic", "openai", "aws-bedrock", "cohere", "google-gemini", "google-vertex"]
MODELS = {
    "anthropic": "claude/sonnet",
    "openai": "oai/gpt-4o",
    "aws-bedrock": "bedrock/haiku",
    "cohere": "cohere-main/command",
    "google-gemini": gemini_e2e.FLASH,
    "google-vertex": vertex_e2e.FLASH,
}
TOOL_MODELS = {**MODELS, "openai": "tools/gpt-4o"}
# Upstreams that stream a tool call's arguments in several pieces (Gemini sends each call whole).
SPLITS_ARGUMENTS = {"anthropic", "openai", "aws-bedrock", "cohere"}
HISTORY: list[Any] = [
    {"role": "user", "content": TOOL_PROMPT},
    {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": CALL_ID, "name": "get_weather", "input": {"city": "Paris"}}],
    },
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": CALL_ID, "content": RESULT}]},
]


@dataclass
class Matrix:
    gateway: GatewayThread
    claude: AnthropicMock
    openai: OpenAIMock
    tools: ToolUpstream
    bedrock: BedrockMock
    cohere: CohereMock
    gemini: GeminiMock
    vertex: GeminiMock
    token: str

    def client(self) -> Any:
        """The real SDK aimed at the gateway (typed Any: tests read blocks and events without narrowing)."""
        return anthropic.Anthropic(
            base_url=self.gateway.url + "/api/llm", api_key=self.token, max_retries=0, timeout=30.0
        )

    def reset(self) -> Matrix:
        for mock in (self.claude, self.openai, self.tools, self.bedrock, self.cohere, self.gemini, self.vertex):
            mock.reset()
        return self


def config(m: dict[str, Any]) -> str:
    """The provider e2e modules' own manifests, each rendered for its (running) mock, as one config."""
    return "---\n".join(
        [
            render(
                messages_rig.CONFIG,
                oai_port=m["openai"].port,
                tools_port=m["tools"].port,
                anthropic_port=m["claude"].port,
                closed_port=free_port(),
            ),
            render(
                bedrock_e2e.CONFIG,
                port=m["bedrock"].port,
                akid=ACCESS_KEY_ID,
                secret=SECRET_ACCESS_KEY,
                region=REGION,
                profile=bedrock_e2e.PROFILE,
                profile_arn=bedrock_e2e.PROFILE_ARN,
                api_key=API_KEY,
                wrong=bedrock_e2e.WRONG_SECRET,
            ),
            render(cohere_e2e.CONFIG, port=m["cohere"].port),
            render(gemini_e2e.CONFIG, port=m["gemini"].port),
            render(vertex_e2e.CONFIG, port=m["vertex"].port, **vertex_e2e.service_account_keys(m["vertex"])),
        ]
    )


@pytest.fixture(scope="module")
def matrix_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    mocks: dict[str, Any] = {
        "claude": AnthropicMock(messages_rig.ANTHROPIC_KEY),
        "openai": OpenAIMock(OPENAI_KEY),
        "tools": ToolUpstream(messages_rig.TOOLS_KEY),
        "bedrock": BedrockMock(),
        "cohere": CohereMock(cohere_e2e.COHERE_KEY),
        "gemini": GeminiMock(gemini_e2e.GEMINI_KEY),
        "vertex": GeminiMock(static_bearer=vertex_e2e.STATIC_BEARER),
    }
    gateway: GatewayThread | None = None
    try:
        for mock in mocks.values():
            mock.start_in_thread()
        gateway = GatewayThread(Path(tmp_path_factory.mktemp("matrix")), config(mocks)).start()
        yield Matrix(gateway, **mocks, token=gateway.create_token(user=ALICE))
    finally:
        if gateway is not None:
            gateway.stop()
        for mock in mocks.values():
            mock.stop_thread()


@pytest.fixture
def matrix(matrix_module: Matrix) -> Matrix:
    return matrix_module.reset()


# -- what each upstream answered and received -----------------------------------------------------


def last_request(matrix: Matrix, provider: str) -> Any:
    """The last chat request the provider's mock recorded (the ToolUpstream records bodies only)."""
    match provider:
        case "anthropic":
            return matrix.claude.last()
        case "openai":
            return matrix.openai.last("/chat/completions")
        case "aws-bedrock":
            return matrix.bedrock.last("converse")
        case "cohere":
            return matrix.cohere.last("/v2/chat")
    mock = matrix.gemini if provider == "google-gemini" else matrix.vertex
    return [r for r in mock.requests if r.path.lower().endswith("generatecontent")][-1]


def reported_usage(matrix: Matrix, provider: str, tools: bool = False) -> tuple[int, int]:
    """(input, output) tokens as the provider's mock reported them for the last request (`tools`: the
    scripted OpenAI upstream's USAGE, whose cached prompt tokens the Messages API counts apart)."""
    if provider == "openai" and tools:
        return USAGE["prompt_tokens"] - USAGE["prompt_tokens_details"]["cached_tokens"], USAGE["completion_tokens"]
    usage = last_request(matrix, provider).usage
    assert usage is not None
    match provider:
        case "anthropic":
            return usage["input_tokens"], usage["output_tokens"]
        case "aws-bedrock":
            return usage["inputTokens"], usage["outputTokens"]
        case "cohere":
            return usage["billed_units"]["input_tokens"], usage["billed_units"]["output_tokens"]
    return usage["prompt_tokens"], usage["completion_tokens"]


def text_reply(provider: str) -> str:
    if provider == "google-gemini" or provider == "google-vertex":
        return reply_text(TEXT)
    if provider == "openai":
        return chat_reply([{"role": "user", "content": TEXT}])
    return echo_reply(TEXT)  # the Anthropic, Bedrock and Cohere mocks all answer "echo: <text>"


def expected_input(provider: str) -> JSON:
    """What the provider's mock passes to get_weather for TOOL_PROMPT."""
    match provider:
        case "anthropic":
            return instance_for_schema(SCHEMA, TOOL_PROMPT)
        case "aws-bedrock":
            return tool_input(SCHEMA, TOOL_PROMPT)
        case "google-gemini" | "google-vertex":
            return sample_args({"properties": {"city": {"type": "STRING"}}})
    return {"city": TOOL_PROMPT}  # Cohere sets every property to the user text; OpenAI is scripted so


def script_tools(matrix: Matrix, provider: str) -> None:
    """The scripted OpenAI upstream answers with a get_weather call (arguments split in 4-char pieces)."""
    if provider == "openai":
        arguments = json.dumps(expected_input(provider))
        matrix.tools.reset(Script("Let me see.", [("call_matrix1", "get_weather", arguments)]))


def create(matrix: Matrix, model: str, **options: Any) -> Any:
    options.setdefault("messages", [{"role": "user", "content": TEXT}])
    return matrix.client().messages.create(model=model, max_tokens=256, **options)


def tool_uses(content: list[Any]) -> list[Any]:
    return [block for block in content if block.type == "tool_use"]


def assert_usage(matrix: Matrix, provider: str, usage: Any, tools: bool = False) -> None:
    expected = reported_usage(matrix, provider, tools)
    assert (usage.input_tokens, usage.output_tokens) == expected
    assert min(expected) > 0


def assert_well_formed(events: list[Any]) -> None:
    """The raw SSE events (the SDK helper adds its own `text`/`input_json` ones) in Anthropic's order:
    message_start, each block's start/deltas/stop in turn, message_delta, message_stop."""
    kinds = [(e.type, getattr(e, "index", None)) for e in events if e.type in RAW_EVENTS]
    assert kinds[0] == ("message_start", None) and kinds[-2:] == [("message_delta", None), ("message_stop", None)]
    blocks = kinds[1:-2]
    open_index = None
    for kind, index in blocks:
        if kind == "content_block_start":
            assert open_index is None, f"block {index} starts inside block {open_index}"
            open_index = index
        else:
            assert open_index == index, f"{kind} {index} outside its block"
            if kind == "content_block_stop":
                open_index = None
    assert open_index is None
    starts = [index for kind, index in blocks if kind == "content_block_start"]
    assert starts == list(range(len(starts))) and starts


# -- text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_text_answer_with_reported_usage(matrix: Matrix, provider: str) -> None:
    message = create(matrix, MODELS[provider])
    assert message.type == "message" and message.role == "assistant"
    assert [(b.type, b.text) for b in message.content] == [("text", text_reply(provider))]
    assert message.stop_reason == "end_turn"
    assert_usage(matrix, provider, message.usage)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_text_stream_reassembles_with_reported_usage(matrix: Matrix, provider: str) -> None:
    with matrix.client().messages.stream(
        model=MODELS[provider], max_tokens=256, messages=[{"role": "user", "content": TEXT}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert_well_formed(events)
    deltas = [e.delta.text for e in events if e.type == "content_block_delta"]
    assert len(deltas) > 1 and "".join(deltas) == text_reply(provider)
    assert [(b.type, b.text) for b in final.content] == [("text", text_reply(provider))]
    assert final.stop_reason == "end_turn"
    assert_usage(matrix, provider, final.usage)


# -- tool use --------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_use_answer(matrix: Matrix, provider: str) -> None:
    script_tools(matrix, provider)
    message = create(
        matrix, TOOL_MODELS[provider], tools=[WEATHER_TOOL], messages=[{"role": "user", "content": TOOL_PROMPT}]
    )
    assert message.stop_reason == "tool_use"
    assert message.content[-1].type == "tool_use"
    [call] = tool_uses(message.content)
    assert call.name == "get_weather" and call.input == expected_input(provider)
    assert call.id
    assert all(b.type == "text" and b.text for b in message.content[:-1]), "only text may precede the call"
    assert_usage(matrix, provider, message.usage, tools=True)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_use_stream_reassembles_input_json(matrix: Matrix, provider: str) -> None:
    script_tools(matrix, provider)
    with matrix.client().messages.stream(
        model=TOOL_MODELS[provider],
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": TOOL_PROMPT}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert_well_formed(events)
    starts = [e for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use"]
    assert len(starts) == 1 and starts[0].content_block.name == "get_weather"
    fragments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta" and e.index == starts[0].index
    ]
    assert json.loads("".join(fragments)) == expected_input(provider)
    if provider in SPLITS_ARGUMENTS:
        assert len([f for f in fragments if f]) > 1, "the upstream split the arguments; so does the stream"
    [call] = tool_uses(final.content)
    assert call.id == starts[0].content_block.id and call.input == expected_input(provider)
    assert final.stop_reason == "tool_use"
    assert_usage(matrix, provider, final.usage, tools=True)


# -- tool results ----------------------------------------------------------------------------------


def native_tool_turns(matrix: Matrix, provider: str) -> list[Any]:
    """The assistant turn and the tool-result turn of the last request, as the upstream received them."""
    if provider == "openai":
        return matrix.tools.requests[-1]["messages"][1:]
    body = last_request(matrix, provider).json
    return body["contents"][1:] if provider in ("google-gemini", "google-vertex") else body["messages"][1:]


def expected_tool_turns(provider: str) -> list[Any]:
    arguments = '{"city":"Paris"}'
    match provider:
        case "anthropic":
            return HISTORY[1:]  # relayed as sent
        case "openai" | "cohere":
            calls = [{"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}]
            assistant = {"role": "assistant", "content": None} if provider == "openai" else {"role": "assistant"}
            return [{**assistant, "tool_calls": calls}, {"role": "tool", "tool_call_id": CALL_ID, "content": RESULT}]
        case "aws-bedrock":
            return [
                {
                    "role": "assistant",
                    "content": [{"toolUse": {"toolUseId": CALL_ID, "name": "get_weather", "input": {"city": "Paris"}}}],
                },
                {"role": "user", "content": [{"toolResult": {"toolUseId": CALL_ID, "content": [{"text": RESULT}]}}]},
            ]
    return [
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {  # a caller's id goes back as Google's call id
                        "name": "get_weather",
                        "response": {"output": RESULT},
                        "id": CALL_ID,
                    }
                }
            ],
        },
    ]


def result_reply(provider: str) -> str:
    """What the provider's mock answers once it has the tool result."""
    match provider:
        case "anthropic":
            return tool_reply(RESULT)
        case "openai":
            return "It is sunny."  # scripted
        case "aws-bedrock":
            return "tool result: " + RESULT
        case "cohere":
            return "result: " + RESULT
    return 'result: [{"name":"get_weather","response":{"output":"sunny, 24C"}}]'


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_result_reaches_upstream_in_native_shape(matrix: Matrix, provider: str) -> None:
    if provider == "openai":
        matrix.tools.reset(Script(result_reply(provider)))
    message = create(matrix, TOOL_MODELS[provider], tools=[WEATHER_TOOL], messages=HISTORY)
    assert [(b.type, b.text) for b in message.content] == [("text", result_reply(provider))]
    assert message.stop_reason == "end_turn"
    assert native_tool_turns(matrix, provider) == expected_tool_turns(provider)
    assert_usage(matrix, provider, message.usage, tools=True)


def returned_ids(matrix: Matrix, provider: str) -> tuple[Any, Any]:
    """What the upstream got back on the assistant's call and on the tool result: the call id twice; for
    Gemini, which names no calls, the call's thought signature and the result's (absent) id."""
    sent = native_tool_turns(matrix, provider)
    match provider:
        case "anthropic":
            return sent[0]["content"][-1]["id"], sent[1]["content"][0]["tool_use_id"]
        case "openai" | "cohere":
            return sent[0]["tool_calls"][0]["id"], sent[1]["tool_call_id"]
        case "aws-bedrock":
            return sent[0]["content"][-1]["toolUse"]["toolUseId"], sent[1]["content"][0]["toolResult"]["toolUseId"]
    return sent[0]["parts"][-1].get("thoughtSignature"), sent[1]["parts"][0]["functionResponse"].get("id")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answered_tool_call_round_trips_with_its_id(matrix: Matrix, provider: str) -> None:
    script_tools(matrix, provider)
    question = [{"role": "user", "content": TOOL_PROMPT}]
    first = create(matrix, TOOL_MODELS[provider], tools=[WEATHER_TOOL], messages=question)
    [call] = tool_uses(first.content)
    if provider == "openai":
        matrix.tools.reset(Script(result_reply(provider)))
    history = [
        *question,
        {"role": "assistant", "content": [b.to_dict(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": RESULT}]},
    ]
    second = create(matrix, TOOL_MODELS[provider], tools=[WEATHER_TOOL], messages=history)
    assert [(b.type, b.text) for b in second.content] == [("text", result_reply(provider))]
    if provider in ("google-gemini", "google-vertex"):  # the signature rides in the id the gateway minted
        assert call.id.endswith("__thought__" + signature_for("get_weather"))
        assert returned_ids(matrix, provider) == (signature_for("get_weather"), None)
    else:
        assert returned_ids(matrix, provider) == (call.id, call.id)
