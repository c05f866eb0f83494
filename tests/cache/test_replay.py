"""What a hit sends: the stored answer under a fresh identity, in the shape the request asked for."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from relaygate.cache.assemble import assemble
from relaygate.cache.entry import CacheEntry, EntryKind
from relaygate.cache.replay import replay_json, replay_stream
from relaygate.cache.sse import parse_event
from tests.cache.sdk_oracle import anthropic_sdk_final, drop_none, openai_sdk_final
from tests.cache.streams import (
    ANTHROPIC_ASSEMBLED,
    ANTHROPIC_BODY,
    ANTHROPIC_EVENTS,
    CHAT_ASSEMBLED,
    CHAT_BODIES,
    CHAT_EVENTS,
    CHAT_EVENTS_NO_USAGE,
    CHAT_ID,
    CHAT_USAGE,
    COMPLETION_ASSEMBLED,
    COMPLETION_BODY,
    COMPLETION_EVENTS,
    COMPLETION_ID,
    CREATED,
    DONE,
    GOLDEN,
    MESSAGE_ID,
    QUOTED,
    golden_events,
)

NOW = 1_800_000_000


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("relaygate.cache.replay._now", lambda: NOW)


def entry(kind: EntryKind, body: dict[str, Any] | bytes, events: tuple[bytes, ...] | None = None) -> CacheEntry:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return CacheEntry(kind, raw, events, 1_700_000_100.0, "req-original", 0.002, "application/json")


def payload(raw: bytes) -> Any:
    data = parse_event(raw).data
    assert data is not None
    return orjson.loads(data)


def loads(raw: bytes | None) -> dict[str, Any]:
    assert raw is not None
    return orjson.loads(raw)  # type: ignore[no-any-return]


def without_identity(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("id", "created")}


def undo_identity(raw: bytes, new_id: str, old_id: str) -> bytes:
    """A replayed event with its id and created put back as recorded."""
    raw = raw.replace(orjson.dumps(new_id), orjson.dumps(old_id))
    return re.sub(rb'("created"\s*:\s*)' + str(NOW).encode(), rb"\g<1>" + str(CREATED).encode(), raw)


# --- replay_json -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body", "prefix"),
    [
        ("openai_chat", CHAT_ASSEMBLED, "chatcmpl-"),
        ("openai_completions", COMPLETION_ASSEMBLED, "cmpl-"),
        ("anthropic_messages", ANTHROPIC_ASSEMBLED, "msg_"),
    ],
)
def test_replay_json_has_a_fresh_id_and_keeps_everything_else(
    kind: EntryKind, body: dict[str, Any], prefix: str
) -> None:
    stored = entry(kind, body)
    first, second = loads(replay_json(stored)), loads(replay_json(stored))
    assert first["id"].startswith(prefix) and first["id"] != body["id"]
    assert first["id"] != second["id"]
    assert without_identity(first) == without_identity(body)  # usage included: kept as first reported
    if kind == "anthropic_messages":
        assert "created" not in first
    else:
        assert first["created"] == NOW


def test_replay_json_touches_only_the_identity_bytes() -> None:
    """Model output that quotes the old id or a `"created":` member is relayed as stored."""
    stored = entry("openai_chat", CHAT_ASSEMBLED)
    replayed = replay_json(stored)
    new_id = loads(replayed)["id"]
    assert undo_identity(replayed, new_id, CHAT_ID) == stored.body
    assert loads(replayed)["choices"][0]["message"]["content"].endswith(QUOTED)


def test_replay_json_of_a_pretty_printed_body() -> None:
    import json

    body = json.dumps(CHAT_BODIES["tools_only_null_content"], indent=2).encode()
    replayed = loads(replay_json(entry("openai_chat", body)))
    assert replayed["created"] == NOW and replayed["id"] != "chatcmpl-body2"
    assert without_identity(replayed) == without_identity(CHAT_BODIES["tools_only_null_content"])


def test_replay_json_of_a_json_entry_is_the_stored_body() -> None:
    body = b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"m"}'
    assert replay_json(entry("json", body)) == body


# --- replay_stream from recorded events --------------------------------------------------------------


def test_recorded_chat_stream_is_replayed_verbatim_under_one_fresh_identity() -> None:
    stored = entry("openai_chat", CHAT_ASSEMBLED, CHAT_EVENTS)
    replayed = replay_stream(stored, include_usage=True)
    assert len(replayed) == len(CHAT_EVENTS)
    ids = {payload(raw)["id"] for raw in replayed[:-1]}
    assert len(ids) == 1
    new_id = ids.pop()
    assert new_id.startswith("chatcmpl-") and new_id != CHAT_ID
    assert {payload(raw)["created"] for raw in replayed[:-1]} == {NOW}
    # Every other byte as recorded: reasoning deltas, tool-call fragments, the quoted id in the content.
    assert [undo_identity(raw, new_id, CHAT_ID) for raw in replayed] == list(CHAT_EVENTS)
    assert replayed[-1] == DONE
    assert without_identity(loads(assemble("openai_chat", replayed))) == without_identity(CHAT_ASSEMBLED)
    assert new_id != payload(replay_stream(stored, include_usage=True)[0])["id"]


def test_usage_chunk_is_dropped_when_the_request_did_not_ask_for_it() -> None:
    stored = entry("openai_chat", CHAT_ASSEMBLED, CHAT_EVENTS)
    replayed = replay_stream(stored, include_usage=False)
    assert len(replayed) == len(CHAT_EVENTS) - 1
    assert all(payload(raw)["choices"] for raw in replayed[:-1])
    assert replayed[-1] == DONE
    body = loads(assemble("openai_chat", replayed))
    assert body["usage"] is None
    assert body["choices"] == CHAT_ASSEMBLED["choices"]


def test_usage_chunk_is_synthesised_when_asked_and_not_recorded() -> None:
    stored = entry("openai_chat", CHAT_ASSEMBLED, CHAT_EVENTS_NO_USAGE)
    replayed = replay_stream(stored, include_usage=True)
    assert len(replayed) == len(CHAT_EVENTS_NO_USAGE) + 1
    usage_chunk = payload(replayed[-2])
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == CHAT_USAGE
    assert usage_chunk["id"] == payload(replayed[0])["id"] and usage_chunk["created"] == NOW
    assert usage_chunk["object"] == "chat.completion.chunk" and usage_chunk["model"] == "deepseek-reasoner"
    assert replayed[-1] == DONE
    assert without_identity(loads(assemble("openai_chat", replayed))) == without_identity(CHAT_ASSEMBLED)
    assert len(replay_stream(stored, include_usage=False)) == len(CHAT_EVENTS_NO_USAGE)


def test_recorded_completions_stream_is_replayed_with_its_usage_rules() -> None:
    stored = entry("openai_completions", COMPLETION_ASSEMBLED, COMPLETION_EVENTS)
    replayed = replay_stream(stored, include_usage=True)
    new_id = payload(replayed[0])["id"]
    assert new_id.startswith("cmpl-") and new_id != COMPLETION_ID
    assert [undo_identity(raw, new_id, COMPLETION_ID) for raw in replayed] == list(COMPLETION_EVENTS)
    assert len(replay_stream(stored, include_usage=False)) == len(COMPLETION_EVENTS) - 1


def test_recorded_anthropic_stream_changes_only_the_message_id() -> None:
    stored = entry("anthropic_messages", ANTHROPIC_ASSEMBLED, ANTHROPIC_EVENTS)
    replayed = replay_stream(stored, include_usage=False)
    start = payload(replayed[0])
    new_id = start["message"]["id"]
    assert new_id.startswith("msg_") and new_id != MESSAGE_ID
    assert replayed[0] == ANTHROPIC_EVENTS[0].replace(MESSAGE_ID.encode(), new_id.encode())
    assert replayed[1:] == list(ANTHROPIC_EVENTS[1:])  # thinking, signature, tool input pieces: as recorded
    assert loads(assemble("anthropic_messages", replayed)) == {**ANTHROPIC_ASSEMBLED, "id": new_id}
    assert replay_stream(stored, include_usage=True)[1:] == list(ANTHROPIC_EVENTS[1:])


def test_a_json_entry_cannot_stream() -> None:
    with pytest.raises(ValueError):
        replay_stream(entry("json", b'{"data":[]}'), include_usage=True)


# --- replay_stream synthesised from a non-streaming body ---------------------------------------------


def deltas(events: list[bytes]) -> list[tuple[dict[str, Any], Any]]:
    return [
        (p["choices"][0]["delta"], p["choices"][0]["finish_reason"]) for p in map(payload, events[:-1]) if p["choices"]
    ]


def test_chat_stream_synthesised_from_a_body_has_the_api_shape() -> None:
    body = CHAT_BODIES["reasoning_text_and_tools"]
    events = replay_stream(entry("openai_chat", body), include_usage=True)
    assert all(raw.startswith(b"data: {") and raw.endswith(b"}\n\n") for raw in events[:-1])
    assert events[-1] == DONE
    calls = body["choices"][0]["message"]["tool_calls"]
    assert deltas(events) == [
        ({"role": "assistant", "content": "", "refusal": None}, None),
        ({"reasoning_content": "Two cities: two calls."}, None),
        ({"content": "Both cities, coming up."}, None),
        ({"annotations": []}, None),
        ({"tool_calls": [{"index": i, **call} for i, call in enumerate(calls)]}, None),
        ({}, "tool_calls"),
    ]
    chunks = [payload(raw) for raw in events[:-1]]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and chunks[0]["id"].startswith("chatcmpl-")
    assert {c["created"] for c in chunks} == {NOW}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {(c["model"], c["system_fingerprint"], c["service_tier"]) for c in chunks} == {
        ("gpt-4o-2024-08-06", "fp_50cad350e4", "default")
    }
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == CHAT_USAGE
    without_usage = replay_stream(entry("openai_chat", body), include_usage=False)
    assert len(without_usage) == len(events) - 1 and all(payload(e)["choices"] for e in without_usage[:-1])


def test_completions_stream_synthesised_from_a_body() -> None:
    events = replay_stream(entry("openai_completions", COMPLETION_BODY), include_usage=False)
    chunks = [payload(raw) for raw in events[:-1]]
    assert [(c["choices"][0]["index"], c["choices"][0]["text"], c["choices"][0]["finish_reason"]) for c in chunks] == [
        (0, "\n\nRoses are red,", None),
        (0, "", "length"),
        (1, "\n\nViolets are blue", None),
        (1, "", "stop"),
    ]
    assert {c["object"] for c in chunks} == {"text_completion"} and events[-1] == DONE


def test_anthropic_stream_synthesised_from_a_body_has_the_api_shape() -> None:
    events = replay_stream(entry("anthropic_messages", ANTHROPIC_BODY), include_usage=True)
    names = [parse_event(raw).name for raw in events]
    assert names == [
        "message_start",
        *("content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"),  # thinking
        *("content_block_start", "content_block_stop"),  # redacted_thinking
        *("content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"),  # text
        *("content_block_start", "content_block_delta", "content_block_stop"),  # tool_use
        *("content_block_start", "content_block_stop"),  # tool_use without input
        "message_delta",
        "message_stop",
    ]
    payloads = [payload(raw) for raw in events]
    framing = [f"event: {p['type']}\ndata: {{".encode() for p in payloads]
    assert all(raw.startswith(head) for raw, head in zip(events, framing, strict=True))
    start = payloads[0]["message"]
    assert start["id"].startswith("msg_") and start["id"] != ANTHROPIC_BODY["id"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"] == {**ANTHROPIC_BODY["usage"], "output_tokens": 1}
    assert [p["delta"] for p in payloads if p["type"] == "content_block_delta"] == [
        {"type": "thinking_delta", "thinking": "Check the docs first."},
        {"type": "signature_delta", "signature": ANTHROPIC_BODY["content"][0]["signature"]},
        {"type": "text_delta", "text": "Relaygate caches answers."},
        {"type": "citations_delta", "citation": ANTHROPIC_BODY["content"][2]["citations"][0]},
        {"type": "input_json_delta", "partial_json": '{"q":"cache","k":3}'},
    ]
    assert payloads[5]["content_block"] == ANTHROPIC_BODY["content"][1]  # redacted thinking, whole
    assert payloads[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 140},
    }


ROUND_TRIPS = [
    *(("openai_chat", body) for body in CHAT_BODIES.values()),
    ("openai_completions", COMPLETION_BODY),
    ("anthropic_messages", ANTHROPIC_BODY),
    ("anthropic_messages", ANTHROPIC_ASSEMBLED),
]


@pytest.mark.parametrize(("kind", "body"), ROUND_TRIPS, ids=[*CHAT_BODIES, "completions", "anthropic", "anthropic-2"])
def test_a_synthesised_stream_assembles_back_to_the_stored_body(kind: EntryKind, body: dict[str, Any]) -> None:
    events = replay_stream(entry(kind, body), include_usage=True)
    assert without_identity(loads(assemble(kind, events))) == without_identity(body)


@pytest.mark.parametrize("name", list(CHAT_BODIES))
def test_the_openai_sdk_reads_a_synthesised_chat_stream_as_the_stored_body(name: str) -> None:
    body = CHAT_BODIES[name]
    sdk = openai_sdk_final(replay_stream(entry("openai_chat", body), include_usage=True))
    stored = drop_none(body)
    assert [c["message"] for c in sdk["choices"]] == [c["message"] for c in stored["choices"]]
    assert [c.get("logprobs") for c in sdk["choices"]] == [c.get("logprobs") for c in stored["choices"]]
    assert sdk["usage"] == stored["usage"]


def test_the_anthropic_sdk_reads_a_synthesised_stream_as_the_stored_body() -> None:
    sdk = anthropic_sdk_final(replay_stream(entry("anthropic_messages", ANTHROPIC_BODY), include_usage=False))
    assert without_identity(sdk) == without_identity(drop_none(ANTHROPIC_BODY))


def test_a_chunk_without_an_id_of_its_own_is_relayed_untouched() -> None:
    """Azure's prompt_filter_results chunk has `"id": ""`: swapping "" would hit every empty string."""
    events = golden_events(GOLDEN / "anthropic-to-openai" / "stream" / "azure-filter-chunk.in.sse")
    body = assemble("openai_chat", events)
    assert body is not None
    replayed = replay_stream(entry("openai_chat", body, events), include_usage=True)
    assert replayed[0] == events[0]
    role_chunk = payload(replayed[1])
    assert role_chunk["id"] != "chatcmpl-123"
    assert role_chunk["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {payload(raw)["id"] for raw in replayed[1:-1]} == {role_chunk["id"]}


def test_an_id_written_with_escapes_is_swapped_by_reserialising() -> None:
    raw = b'data: {"id":"chatcmpl\\u002dabc","object":"chat.completion.chunk","created":1,"model":"m",' + (
        b'"choices":[{"index":0,"delta":{"content":"caf\\u00e9"},"finish_reason":null}]}\n\n'
    )
    events = (raw, DONE)
    body = assemble("openai_chat", events)
    replayed = replay_stream(entry("openai_chat", loads(body), events), include_usage=False)
    chunk = payload(replayed[0])
    assert chunk["id"].startswith("chatcmpl-") and chunk["id"] != "chatcmpl-abc" and chunk["created"] == NOW
    assert chunk["choices"][0]["delta"] == {"content": "café"}
    assert replayed[0].startswith(b"data: {") and replayed[0].endswith(b"}\n\n") and replayed[1] == DONE
