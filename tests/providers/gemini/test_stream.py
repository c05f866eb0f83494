"""The Gemini stream translator on the edges the golden streams do not cover."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.providers.gemini.stream import GeminiStreamTranslator


def events(raw: bytes) -> list[Any]:
    """The `data:` payloads of OpenAI SSE bytes (JSON, or the string "[DONE]")."""
    out: list[Any] = []
    for event in raw.split(b"\n\n"):
        if event.startswith(b"data: "):
            data = event[6:]
            out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return out


def run(*chunks: bytes, **options: Any) -> list[Any]:
    translator = GeminiStreamTranslator("gemini-2.5-flash", **options)
    out = b"".join(translator.feed(chunk) for chunk in chunks)
    return events(out + translator.finish())


def gemini_event(payload: dict[str, Any], end: bytes = b"\r\n\r\n") -> bytes:
    return b"data: " + orjson.dumps(payload) + end


TEXT = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "index": 0}], "responseId": "r"}


def test_empty_upstream_stream_ends_with_an_error_event() -> None:
    out = run(b"")
    assert len(out) == 1 and out[0]["error"]["code"] == "empty_stream"


def test_stream_ended_without_finish_reason_is_closed_with_stop() -> None:
    out = run(gemini_event(TEXT))
    assert [e["choices"][0]["finish_reason"] for e in out[:3]] == [None, None, "stop"]
    assert out[3]["choices"] == [] and out[3]["usage"]["total_tokens"] == 0 and out[4] == "[DONE]"


def test_comments_and_keep_alives_are_ignored() -> None:
    out = run(b": keep-alive\n\n", gemini_event(TEXT, b"\n\n"))
    assert out[1]["choices"][0]["delta"] == {"content": "hi"}


def test_last_event_without_blank_line_is_still_read() -> None:
    out = run(b"data: " + orjson.dumps(TEXT))
    assert out[1]["choices"][0]["delta"] == {"content": "hi"}


def test_crlf_split_across_chunks_is_one_event_boundary() -> None:
    raw = gemini_event(TEXT) + gemini_event(TEXT)
    cut = raw.index(b"\r\n\r\n") + 1
    out = run(raw[:cut], raw[cut : cut + 1], raw[cut + 1 :])
    assert [e["choices"][0]["delta"].get("content") for e in out[:3]] == ["", "hi", "hi"]


def test_malformed_event_ends_the_stream_with_an_error() -> None:
    translator = GeminiStreamTranslator("m")
    out = events(translator.feed(gemini_event(TEXT) + b"data: {broken\n\n"))
    assert out[-1]["error"]["type"] == "upstream_error"
    assert translator.feed(gemini_event(TEXT)) == b"" and translator.finish() == b""


def test_error_event_keeps_google_message_and_maps_status() -> None:
    error = {"error": {"code": 429, "message": "Quota exceeded for gemini-2.5-pro", "status": "RESOURCE_EXHAUSTED"}}
    out = run(gemini_event(error))
    assert out == [
        {
            "error": {
                "message": "Quota exceeded for gemini-2.5-pro",
                "type": "rate_limit_exceeded",
                "code": "resource_exhausted",
                "param": None,
            }
        }
    ]


def test_json_array_events_are_read() -> None:
    out = run(b"data: [" + orjson.dumps(TEXT) + b"]\n\n")
    assert out[1]["choices"][0]["delta"] == {"content": "hi"}


def test_every_chunk_shares_id_created_and_model() -> None:
    final = {
        "candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 2, "totalTokenCount": 4},
    }
    out = run(gemini_event(TEXT), gemini_event(final), created=42)
    chunks = [e for e in out if e != "[DONE]"]
    assert {(c["id"], c["created"], c["model"]) for c in chunks} == {("chatcmpl-r", 42, "gemini-2.5-flash")}


def test_content_after_a_finish_is_not_relayed() -> None:
    done = {"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP", "index": 0}]}
    out = run(gemini_event(done), gemini_event(TEXT))
    contents = [e["choices"][0]["delta"].get("content") for e in out if e != "[DONE]" and e["choices"]]
    assert contents == ["", "a", None]


def test_thoughts_are_dropped_unless_reasoning_is_asked() -> None:
    thought = {"candidates": [{"content": {"parts": [{"text": "plan", "thought": True}]}, "index": 0}]}
    assert all("reasoning_content" not in e["choices"][0]["delta"] for e in run(gemini_event(thought))[:-2])
    asked = run(gemini_event(thought), include_reasoning=True)
    assert asked[1]["choices"][0]["delta"] == {"reasoning_content": "plan"}


def test_snake_case_stream_events_are_read() -> None:
    first = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}], "response_id": "r"}
    last = {
        "candidates": [{"content": {"parts": [{"text": "lo"}]}, "finish_reason": "SAFETY"}],
        "usage_metadata": {"prompt_token_count": 2, "candidates_token_count": 2, "total_token_count": 4},
    }
    out = run(gemini_event(first), gemini_event(last))
    assert out[0]["id"] == "chatcmpl-r"
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in out[:-2] if e["choices"]) == "Hello"
    assert out[-3]["choices"][0]["finish_reason"] == "content_filter"
    assert out[-2]["usage"]["total_tokens"] == 4 and out[-1] == "[DONE]"


def test_stream_keeps_google_function_call_ids() -> None:
    call = {
        "candidates": [
            {
                "content": {"parts": [{"functionCall": {"id": "fc-1", "name": "f", "args": {"a": 1}}}]},
                "finishReason": "STOP",
            }
        ]
    }
    out = run(gemini_event(call))
    delta = out[1]["choices"][0]["delta"]["tool_calls"][0]
    assert delta["id"] == "fc-1" and delta["index"] == 0 and delta["function"]["arguments"] == '{"a":1}'
