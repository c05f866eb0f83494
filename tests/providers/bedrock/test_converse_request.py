"""OpenAI chat request -> Bedrock Converse body: golden files and the 400s for what Converse cannot take."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from relaygate.errors import BadRequest
from relaygate.providers.bedrock.converse_request import to_bedrock_converse_request
from tests.providers.bedrock.golden import GOLDEN, assert_golden_json
from tests.upstreams.bedrock_mock import validate_converse

CASES = ["chat-basic", "chat-tools", "chat-tool-choice-named", "chat-image"]


@pytest.mark.parametrize("case", CASES)
def test_request_matches_golden_file(case: str) -> None:
    body = to_bedrock_converse_request(GOLDEN.read_json(f"{case}.openai-request.json"))
    assert_golden_json(f"{case}.bedrock-request.json", body)


@pytest.mark.parametrize("case", CASES)
def test_translated_request_passes_bedrock_validation(case: str) -> None:
    validate_converse(to_bedrock_converse_request(GOLDEN.read_json(f"{case}.openai-request.json")))


def test_translation_does_not_mutate_the_payload() -> None:
    payload = GOLDEN.read_json("chat-tools.openai-request.json")
    before = copy.deepcopy(payload)
    to_bedrock_converse_request(payload)
    assert payload == before


def test_system_and_developer_messages_become_system_blocks() -> None:
    body = to_bedrock_converse_request(GOLDEN.read_json("chat-basic.openai-request.json"))
    assert body["system"] == [{"text": "You are a helpful assistant."}, {"text": "Answer in one sentence."}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


def test_consecutive_tool_results_and_user_text_merge_into_one_user_turn() -> None:
    body = to_bedrock_converse_request(GOLDEN.read_json("chat-tools.openai-request.json"))
    last = body["messages"][-1]
    assert last["role"] == "user"
    assert [next(iter(block)) for block in last["content"]] == ["toolResult", "toolResult", "text"]


def test_inference_config_maps_openai_sampling_fields() -> None:
    body = to_bedrock_converse_request(GOLDEN.read_json("chat-basic.openai-request.json"))
    assert body["inferenceConfig"] == {
        "maxTokens": 512,
        "temperature": 0.5,
        "topP": 0.9,
        "stopSequences": ["\n\nHuman:"],
    }


def test_null_max_completion_tokens_falls_back_to_max_tokens() -> None:
    payload = _user("hi") | {"max_completion_tokens": None, "max_tokens": 7}
    assert to_bedrock_converse_request(payload)["inferenceConfig"] == {"maxTokens": 7}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "top_song"}}, {"tool": {"name": "top_song"}}),
    ],
)
def test_tool_choice_maps_to_converse_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    payload = GOLDEN.read_json("chat-tool-choice-named.openai-request.json") | {"tool_choice": choice}
    assert to_bedrock_converse_request(payload)["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_omits_the_tools() -> None:
    payload = GOLDEN.read_json("chat-tool-choice-named.openai-request.json") | {"tool_choice": "none"}
    assert "toolConfig" not in to_bedrock_converse_request(payload)


def test_tool_choice_none_keeps_tools_when_history_has_tool_blocks() -> None:
    payload = GOLDEN.read_json("chat-tools.openai-request.json") | {"tool_choice": "none"}
    config = to_bedrock_converse_request(payload)["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["top_song", "no_params"]
    assert "toolChoice" not in config


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    body = to_bedrock_converse_request(GOLDEN.read_json("chat-tools.openai-request.json"))
    spec = body["toolConfig"]["tools"][1]["toolSpec"]
    assert spec == {"name": "no_params", "inputSchema": {"json": {"type": "object", "properties": {}}}}


def test_assistant_tool_call_arguments_become_tool_use_input_objects() -> None:
    body = to_bedrock_converse_request(GOLDEN.read_json("chat-tools.openai-request.json"))
    uses = [b["toolUse"] for b in body["messages"][1]["content"]]
    assert uses[0] == {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "top_song", "input": {"sign": "WZPZ"}}
    assert uses[1]["input"] == {"sign": "WKRP"}


def test_image_data_url_becomes_image_bytes_block() -> None:
    body = to_bedrock_converse_request(GOLDEN.read_json("chat-image.openai-request.json"))
    image = body["messages"][0]["content"][1]["image"]
    assert image["format"] == "png"
    assert image["source"]["bytes"].startswith("iVBORw0KGgo")
    assert body["messages"][0]["content"][2]["image"]["format"] == "jpeg"


def _user(content: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}]}


def _refused(payload: dict[str, Any]) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        to_bedrock_converse_request(payload)
    return caught.value


def test_http_image_url_is_a_clear_400() -> None:
    error = _refused(_user([{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]))
    assert error.param == "messages[0].content[0].image_url.url"
    assert "data URL" in error.message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("data:image/bmp;base64,Qk0=", "not supported"),
        ("data:image/png,rawbytes", "base64 data URL"),
        ("data:image/png;base64,%%%notbase64", "valid base64"),
    ],
)
def test_unusable_data_urls_are_400(url: str, words: str) -> None:
    assert words in _refused(_user([{"type": "image_url", "image_url": {"url": url}}])).message


def test_unsupported_content_part_is_400_naming_it() -> None:
    error = _refused(_user([{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]))
    assert error.param == "messages[0].content[0]" and "input_audio" in error.message


def test_empty_user_message_is_400() -> None:
    assert _refused(_user("")).param == "messages[0].content"


def test_n_greater_than_one_is_400() -> None:
    assert _refused(_user("hi") | {"n": 2}).param == "n"


def test_json_object_response_format_is_400() -> None:
    assert _refused(_user("hi") | {"response_format": {"type": "json_object"}}).param == "response_format"


def test_json_schema_response_format_becomes_converse_structured_output() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = validate_converse(
        to_bedrock_converse_request(
            _user("hi")
            | {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "place", "schema": schema, "strict": True},
                }
            }
        )
    )
    definition = body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    assert body["outputConfig"]["textFormat"]["type"] == "json_schema"
    assert definition["name"] == "place" and orjson.loads(definition["schema"]) == schema


def test_logprobs_is_400() -> None:
    assert _refused(_user("hi") | {"logprobs": True}).param == "logprobs"


def test_top_k_goes_to_additional_model_request_fields() -> None:
    body = validate_converse(to_bedrock_converse_request(_user("hi") | {"top_k": 40, "temperature": 0.1}))
    assert body["additionalModelRequestFields"] == {"top_k": 40}
    assert body["inferenceConfig"] == {"temperature": 0.1}


def test_callers_additional_model_request_fields_are_sent_as_given() -> None:
    extra = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    body = validate_converse(to_bedrock_converse_request(_user("hi") | {"additionalModelRequestFields": extra}))
    assert body["additionalModelRequestFields"] == extra


def test_guardrail_config_passes_through() -> None:
    guardrail = {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}
    body = validate_converse(to_bedrock_converse_request(_user("hi") | {"guardrailConfig": guardrail}))
    assert body["guardrailConfig"] == guardrail


def test_invalid_tool_call_arguments_are_400() -> None:
    payload = {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert _refused(payload).param == "messages[1].tool_calls[0].function.arguments"


def test_tool_history_without_tools_is_400() -> None:
    payload = {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "c1", "content": "42"}]}
    assert _refused(payload).param == "tools"


def test_unknown_role_is_400() -> None:
    assert _refused({"messages": [{"role": "function", "name": "f", "content": "x"}]}).param == "messages[0].role"


def test_empty_tool_result_is_sent_as_words_not_blank_text() -> None:
    payload = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": ""},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    body = validate_converse(to_bedrock_converse_request(payload))
    assert body["messages"][2]["content"][0]["toolResult"]["content"] == [{"text": "(empty result)"}]
