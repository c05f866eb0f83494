"""Cohere answers that are not plain successes: failed generations, missing pieces, odd stream endings."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate.errors import BadGateway, GatewayTimeout
from relaygate.providers.cohere.chat import from_cohere_chat_response, to_openai_usage
from relaygate.providers.cohere.embed import from_cohere_embed_response
from relaygate.providers.cohere.rerank import from_cohere_rerank_response
from relaygate.providers.cohere.stream import CohereStreamTranslator
from tests.helpers.sse import sse_events


def _body(reason: str, **message: Any) -> dict[str, Any]:
    return {"id": "x", "finish_reason": reason, "message": {"role": "assistant", **message}}


def test_finish_reason_error_is_a_retryable_502() -> None:
    with pytest.raises(BadGateway) as raised:
        from_cohere_chat_response(_body("ERROR", content=[]), "m", created=1)
    assert raised.value.status == 502


def test_finish_reason_timeout_is_a_504() -> None:
    with pytest.raises(GatewayTimeout) as raised:
        from_cohere_chat_response(_body("TIMEOUT", content=[]), "m", created=1)
    assert raised.value.status == 504


def test_answer_without_message_is_a_502() -> None:
    with pytest.raises(BadGateway):
        from_cohere_chat_response({"id": "x", "finish_reason": "COMPLETE"}, "m", created=1)


def test_tool_calls_without_plan_have_null_content() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    answer = from_cohere_chat_response(_body("TOOL_CALL", tool_calls=[call]), "m", created=1)
    message = answer["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [call]


def test_answer_without_usage_has_no_usage_rather_than_zeros() -> None:
    answer = from_cohere_chat_response(_body("COMPLETE", content=[{"type": "text", "text": "a"}]), "m", created=1)
    assert "usage" not in answer


def test_thinking_is_dropped_in_strict_mode() -> None:
    content = [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "ok"}]
    message = from_cohere_chat_response(_body("COMPLETE", content=content), "m", created=1)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "ok", "refusal": None}


def test_usage_prefers_billed_units_over_processed_tokens() -> None:
    usage = {
        "billed_units": {"input_tokens": 5.0, "output_tokens": 418.0},
        "tokens": {"input_tokens": 71.0, "output_tokens": 418.0},
    }
    assert to_openai_usage(usage) == {"prompt_tokens": 5, "completion_tokens": 418, "total_tokens": 423}
    assert to_openai_usage({"tokens": {"input_tokens": 71, "output_tokens": 3}}) == {
        "prompt_tokens": 71,
        "completion_tokens": 3,
        "total_tokens": 74,
    }
    assert to_openai_usage({}) is None


def test_embed_answer_without_floats_is_a_502() -> None:
    with pytest.raises(BadGateway):
        from_cohere_embed_response({"id": "x", "embeddings": {"int8": [[1]]}}, "e", encoding_format="float")


def test_rerank_without_return_documents_has_no_documents() -> None:
    body = {"id": "r", "results": [{"index": 1, "relevance_score": 0.5}], "meta": {"billed_units": {"search_units": 1}}}
    assert from_cohere_rerank_response(body, "r", documents=None) == {
        "id": "r",
        "model": "r",
        "results": [{"index": 1, "relevance_score": 0.5}],
        "usage": {"search_units": 1},
    }


# -- streams ----------------------------------------------------------------------------------------


def _event(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


START = _event({"id": "s1", "type": "message-start", "delta": {"message": {"role": "assistant"}}})
TEXT = _event({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "hi"}}}})
END = _event(
    {
        "type": "message-end",
        "delta": {"finish_reason": "COMPLETE", "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1}}},
    }
)


def _run(*chunks: bytes, strict_openai: bool = True) -> list[Any]:
    translator = CohereStreamTranslator("m", created=1, strict_openai=strict_openai)
    out = b"".join(translator.feed(c) for c in chunks) + translator.finish()
    return sse_events(out)


def test_stream_ending_before_message_end_is_an_error_without_done() -> None:
    events = _run(START, TEXT)
    assert events[-1]["error"]["code"] == "incomplete_stream"
    assert "[DONE]" not in events


def test_stream_timeout_is_an_error_event_with_timeout_code() -> None:
    end = _event({"type": "message-end", "delta": {"finish_reason": "TIMEOUT"}})
    events = _run(START, TEXT, end)
    assert events[-1] == {
        "error": {
            "message": "Cohere ended the generation with finish_reason TIMEOUT",
            "type": "upstream_error",
            "code": "upstream_timeout",
            "param": None,
        }
    }
    assert "[DONE]" not in events


def test_upstream_done_marker_and_unknown_events_are_ignored() -> None:
    debug = _event({"type": "debug", "prompt": "..."})
    citation = _event({"type": "citation-start", "index": 0, "delta": {"message": {"citations": {}}}})
    events = _run(START, debug, TEXT, citation, END, b"data: [DONE]\n\n")
    assert [e for e in events if e != "[DONE]" and e["choices"]][1]["choices"][0]["delta"] == {"content": "hi"}
    assert events.count("[DONE]") == 1


def test_last_event_without_blank_line_is_still_read() -> None:
    events = _run(START, TEXT, END[:-2])
    assert events[-1] == "[DONE]"
    assert events[-2]["usage"] == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}


def test_event_name_is_used_when_the_json_has_no_type() -> None:
    events = _run(START, b'event: content-delta\ndata: {"delta":{"message":{"content":{"text":"yo"}}}}\n\n', END)
    assert events[1]["choices"][0]["delta"] == {"content": "yo"}


def test_thinking_deltas_become_reasoning_content_only_outside_strict_mode() -> None:
    thinking = _event({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": "hmm"}}}})
    strict = _run(START, thinking, TEXT, END)
    relaxed = _run(START, thinking, TEXT, END, strict_openai=False)
    assert not any("reasoning_content" in e["choices"][0]["delta"] for e in strict if e != "[DONE]" and e["choices"])
    assert relaxed[1]["choices"][0]["delta"] == {"reasoning_content": "hmm"}


def test_nothing_follows_a_failed_stream() -> None:
    failed = _event({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "boom"}})
    translator = CohereStreamTranslator("m", created=1)
    translator.feed(START + failed)
    assert translator.feed(TEXT) == b""
    assert translator.finish() == b""


def test_cached_tokens_become_prompt_tokens_details() -> None:
    usage = {"billed_units": {"input_tokens": 50, "output_tokens": 2}, "cached_tokens": 32.0}
    assert to_openai_usage(usage) == {
        "prompt_tokens": 50,
        "completion_tokens": 2,
        "total_tokens": 52,
        "prompt_tokens_details": {"cached_tokens": 32},
    }


def _tool_start(index: int, call_id: str, name: str) -> bytes:
    return _event(
        {
            "type": "tool-call-start",
            "index": index,
            "delta": {
                "message": {
                    "tool_calls": {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                }
            },
        }
    )


def _arguments(events: list[Any]) -> dict[int, str]:
    joined: dict[int, str] = {}
    for event in events:
        for call in (
            event["choices"][0]["delta"].get("tool_calls", []) if event != "[DONE]" and event["choices"] else []
        ):
            joined[call["index"]] = joined.get(call["index"], "") + call["function"]["arguments"]
    return joined


def test_streamed_tool_call_without_argument_fragments_gets_empty_object_arguments() -> None:
    end = _event({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}})
    events = _run(START, _tool_start(0, "c1", "now"), _event({"type": "tool-call-end", "index": 0}), end)
    assert _arguments(events) == {0: "{}"}


def test_streamed_tool_call_without_end_event_gets_arguments_before_the_finish() -> None:
    delta = _event(
        {
            "type": "tool-call-delta",
            "index": 1,
            "delta": {"message": {"tool_calls": {"function": {"arguments": '{"a": 1}'}}}},
        }
    )
    end = _event({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}})
    events = _run(START, _tool_start(0, "c1", "now"), _tool_start(1, "c2", "f"), delta, end)
    assert _arguments(events) == {0: "{}", 1: '{"a": 1}'}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
