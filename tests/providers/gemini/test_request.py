"""OpenAI chat request -> Gemini request: the rules the golden files do not pin down, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.errors import BadRequest
from relaygate.providers.gemini.request import to_gemini_request

PNG_URL = "data:image/png;base64,iVBORw0KGgo="
G_TOOL = {"type": "function", "function": {"name": "g"}}


def request(*messages: Any, **options: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-flash", "messages": list(messages), **options}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def refused(payload: dict[str, Any], *, vertex: bool = False) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        to_gemini_request(payload, vertex=vertex)
    return caught.value


def test_missing_messages_is_refused() -> None:
    assert refused({"model": "m"}).param == "messages"


def test_messages_without_any_content_are_refused() -> None:
    assert refused(request(user(""), {"role": "system", "content": "x"})).param == "messages"


def test_unknown_role_names_the_message() -> None:
    assert refused(request(user("hi"), {"role": "critic", "content": "x"})).param == "messages[1].role"


def test_tool_result_without_matching_call_is_refused() -> None:
    error = refused(request(user("hi"), {"role": "tool", "tool_call_id": "call_nope", "content": "1"}))
    assert error.param == "messages[1].tool_call_id"
    assert "call_nope" in error.message


def test_tool_call_arguments_must_be_json_objects() -> None:
    for arguments in ("{not json", "[1, 2]"):
        call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
        error = refused(request(user("hi"), {"role": "assistant", "tool_calls": [call]}))
        assert error.param == "messages[1].tool_calls[0].function.arguments"


def test_empty_tool_call_arguments_become_an_empty_object() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    body = to_gemini_request(request(user("hi"), {"role": "assistant", "tool_calls": [call]}))
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {}}}]


def test_tool_results_are_wrapped_unless_they_are_json_objects() -> None:
    calls = [{"id": f"c{i}", "type": "function", "function": {"name": f"f{i}", "arguments": "{}"}} for i in range(4)]
    results = ['{"ok": true}', "[1, 2]", "plain words", [{"type": "text", "text": "4"}, {"type": "text", "text": "2"}]]
    messages = [user("hi"), {"role": "assistant", "tool_calls": calls}]
    messages += [{"role": "tool", "tool_call_id": f"c{i}", "content": c} for i, c in enumerate(results)]
    parts = to_gemini_request(request(*messages))["contents"][2]["parts"]
    assert [p["functionResponse"]["response"] for p in parts] == [
        {"ok": True},
        {"output": [1, 2]},
        {"output": "plain words"},
        {"output": 42},
    ]
    assert [p["functionResponse"]["name"] for p in parts] == ["f0", "f1", "f2", "f3"]


def test_legacy_function_messages_are_translated() -> None:
    messages = [
        user("hi"),
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "done"},
    ]
    contents = to_gemini_request(request(*messages))["contents"]
    assert contents[1]["parts"] == [{"functionCall": {"name": "f", "args": {}}}]
    assert contents[2]["parts"] == [{"functionResponse": {"name": "f", "response": {"output": "done"}}}]


def test_function_response_turn_is_not_merged_with_user_text() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        user("hi"),
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
        user("and now?"),
    ]
    contents = to_gemini_request(request(*messages))["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "user"]
    assert "functionResponse" in contents[2]["parts"][0] and contents[3]["parts"] == [{"text": "and now?"}]


def test_gs_uri_is_refused_on_the_gemini_api_with_a_way_out() -> None:
    part = {"type": "image_url", "image_url": {"url": "gs://bucket/cat.png"}}
    error = refused(request(user([part])))
    assert error.param == "messages[0].content[0].image_url.url"
    assert "Files API" in error.message and "google-vertex" in error.message


def test_gs_uri_is_file_data_on_vertex() -> None:
    part = {"type": "image_url", "image_url": {"url": "gs://bucket/cat.png"}}
    body = to_gemini_request(request(user([part])), vertex=True)
    assert body["contents"][0]["parts"] == [{"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}}]


def test_remote_image_without_extension_defaults_to_jpeg() -> None:
    part = {"type": "image_url", "image_url": {"url": "https://example.com/render?id=7"}}
    file_data = to_gemini_request(request(user([part])))["contents"][0]["parts"][0]["fileData"]
    assert file_data == {"mimeType": "image/jpeg", "fileUri": "https://example.com/render?id=7"}


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.png", "data:image/png,rawbytes", "data:;base64,AAAA", "data:image/png;base64,@@not-base64@@"],
)
def test_unusable_image_urls_are_refused(url: str) -> None:
    error = refused(request(user([{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": url}}])))
    assert error.param == "messages[0].content[1].image_url.url"


def test_unsupported_content_part_type_is_refused() -> None:
    assert refused(request(user([{"type": "video_url", "video_url": "x"}]))).param == "messages[0].content[0].type"


def test_file_id_that_is_not_a_uri_is_refused() -> None:
    error = refused(request(user([{"type": "file", "file": {"file_id": "file-abc"}}])))
    assert error.param == "messages[0].content[0].file"


def test_only_function_tools_are_accepted() -> None:
    error = refused(request(user("hi"), tools=[{"type": "web_search"}]))
    assert error.param == "tools[0].type"


def test_function_without_parameters_declares_none() -> None:
    body = to_gemini_request(request(user("hi"), tools=[{"type": "function", "function": {"name": "now"}}]))
    assert body["tools"] == [{"functionDeclarations": [{"name": "now"}]}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [G_TOOL]}},
            {"mode": "ANY", "allowedFunctionNames": ["g"]},
        ),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [G_TOOL]}},
            {"mode": "VALIDATED", "allowedFunctionNames": ["g"]},
        ),
    ],
)
def test_tool_choice_maps_to_function_calling_config(choice: Any, expected: dict[str, Any]) -> None:
    tools = [G_TOOL, {"type": "function", "function": {"name": "f"}}]
    body = to_gemini_request(request(user("hi"), tools=tools, tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_unknown_tool_choice_is_refused() -> None:
    assert refused(request(user("hi"), tool_choice="sometimes")).param == "tool_choice"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", 0),
        ("max_tokens", "10"),
        ("temperature", "hot"),
        ("n", 0),
        ("stop", [1]),
        ("reasoning_effort", "extreme"),
        ("response_format", {"type": "xml"}),
    ],
)
def test_invalid_generation_parameters_are_refused(field: str, value: Any) -> None:
    assert refused(request(user("hi"), **{field: value})).param == field


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    config = to_gemini_request(request(user("hi"), max_tokens=5, max_completion_tokens=9))["generationConfig"]
    assert config["maxOutputTokens"] == 9


def test_include_thoughts_is_asked_only_with_a_reasoning_effort() -> None:
    with_effort = to_gemini_request(request(user("hi"), reasoning_effort="low"), include_thoughts=True)
    assert with_effort["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}
    without = to_gemini_request(request(user("hi")), include_thoughts=True)
    assert "generationConfig" not in without


def test_gemini_native_fields_pass_through() -> None:
    settings = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    body = to_gemini_request(
        request(user("hi"), safety_settings=settings, cached_content="cachedContents/abc", labels={"team": "a"})
    )
    assert body["safetySettings"] == settings and body["cachedContent"] == "cachedContents/abc"
    assert "labels" not in body  # a Vertex-only field
    assert to_gemini_request(request(user("hi"), labels={"team": "a"}), vertex=True)["labels"] == {"team": "a"}


def test_image_parts_keep_their_order_among_text() -> None:
    parts = to_gemini_request(
        request(
            user(
                [
                    {"type": "text", "text": "a"},
                    {"type": "image_url", "image_url": PNG_URL},
                    {"type": "text", "text": "b"},
                ]
            )
        )
    )["contents"][0]["parts"]
    assert [next(iter(p)) for p in parts] == ["text", "inlineData", "text"]


def test_google_call_id_goes_back_in_the_function_response() -> None:
    calls = [
        {"id": "fc-1__thought__c2ln", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "fc-2", "type": "function", "function": {"name": "f", "arguments": "{}"}},
    ]
    messages = [
        user("hi"),
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "fc-2", "content": "b"},
        {"role": "tool", "tool_call_id": "fc-1__thought__c2ln", "content": "a"},
    ]
    contents = to_gemini_request(request(*messages))["contents"]
    assert contents[1]["parts"][0] == {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}
    assert [p["functionResponse"] for p in contents[2]["parts"]] == [
        {"name": "f", "response": {"output": "b"}, "id": "fc-2"},
        {"name": "f", "response": {"output": "a"}, "id": "fc-1"},
    ]


def test_minted_call_ids_are_not_sent_to_google() -> None:
    minted = "call_" + "0123456789abcdef01234567"
    call = {"id": minted, "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        user("hi"),
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": minted, "content": "1"},
    ]
    parts = to_gemini_request(request(*messages))["contents"][2]["parts"]
    assert parts == [{"functionResponse": {"name": "f", "response": {"output": 1}}}]


def test_free_form_object_response_format_is_plain_json_mode() -> None:
    schema = {"type": "object", "additionalProperties": True}
    body = to_gemini_request(
        request(user("hi"), response_format={"type": "json_schema", "json_schema": {"name": "any", "schema": schema}})
    )
    assert body["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize("choice", ["auto", "none"])
def test_tool_choice_without_tools_sends_no_tool_config(choice: str) -> None:
    assert "toolConfig" not in to_gemini_request(request(user("hi"), tool_choice=choice))


def test_tool_choice_that_demands_a_call_without_tools_is_refused() -> None:
    assert refused(request(user("hi"), tool_choice="required")).param == "tool_choice"
