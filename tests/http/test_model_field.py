"""Renaming an answer's `model` on bytes: only the model pair changes, never text the model wrote."""

from __future__ import annotations

import orjson

from relaygate.context import Usage
from relaygate.dialects.openai.stream import StreamFilter
from relaygate.http.model_field import rename_in_body, stream_renamer

CALLER = "openai-main/gpt-4o"


def test_compact_body_changes_only_the_model_pair() -> None:
    body = b'{"id":"x","model":"gpt-4o-2024-08-06","choices":[{"message":{"content":"1.0e-5 \\u00e9"}}]}'
    renamed, provider = rename_in_body(body, orjson.loads(body), CALLER)
    assert provider == "gpt-4o-2024-08-06"
    assert renamed == body.replace(b'"model":"gpt-4o-2024-08-06"', b'"model":"openai-main/gpt-4o"')


def test_spaced_body_is_renamed_in_place() -> None:
    body = b'{"id": "x", "model": "llama3", "usage": {"prompt_tokens": 1}}'
    renamed, _ = rename_in_body(body, orjson.loads(body), CALLER)
    assert renamed == b'{"id": "x", "model":"openai-main/gpt-4o", "usage": {"prompt_tokens": 1}}'


def test_text_that_quotes_a_model_pair_is_left_alone() -> None:
    content = 'say {"model":"gpt-4o"} please'
    body = orjson.dumps({"choices": [{"message": {"content": content}}], "model": "gpt-4o"})
    renamed, _ = rename_in_body(body, orjson.loads(body), CALLER)
    parsed = orjson.loads(renamed)
    assert parsed["model"] == CALLER and parsed["choices"][0]["message"]["content"] == content


def test_a_nested_model_key_with_another_value_is_skipped() -> None:
    body = b'{"meta":{"model":"router-v2"},"model":"gpt-4o"}'
    renamed, provider = rename_in_body(body, orjson.loads(body), CALLER)
    assert provider == "gpt-4o"
    assert orjson.loads(renamed) == {"meta": {"model": "router-v2"}, "model": CALLER}


def test_an_escaped_model_value_is_found() -> None:
    body = b'{"model":"org\\/gpt-4o","x":1.50}'  # escaped differently than orjson writes it
    renamed, provider = rename_in_body(body, orjson.loads(body), CALLER)
    assert provider == "org/gpt-4o" and renamed == b'{"model":"openai-main/gpt-4o","x":1.50}'


def test_a_pair_the_bytes_do_not_show_falls_back_to_reserialising() -> None:
    body = b'{"mod\\u0065l":"gpt-4o","x":1}'  # an escaped key: only the parse sees "model"
    renamed, provider = rename_in_body(body, orjson.loads(body), CALLER)
    assert provider == "gpt-4o" and orjson.loads(renamed) == {"model": CALLER, "x": 1}


def test_a_body_without_model_is_untouched() -> None:
    body = b'{"data":[]}'
    assert rename_in_body(body, orjson.loads(body), CALLER) == (body, None)


def test_stream_renamer_renames_every_event_and_keeps_usage_reading() -> None:
    events = [orjson.dumps({"model": "gpt-4o-mini", "choices": [{"delta": {"content": f"w{i}"}}]}) for i in range(3)]
    events.append(
        orjson.dumps({"model": "gpt-4o-mini", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    )
    stream = b"".join(b"data: " + e + b"\n\n" for e in events)
    inner = StreamFilter(True, Usage())
    first = inner.feed(stream[:40]) + inner.feed(stream[40:90])
    renamer, provider = stream_renamer(first, inner, CALLER)
    assert renamer is not None and provider == "gpt-4o-mini"
    out = renamer.rename(first) + renamer.feed(stream[90:]) + renamer.flush()
    assert b"gpt-4o-mini" not in out
    assert out.count(b'"model":"openai-main/gpt-4o"') == 4
    assert renamer.usage.input_tokens == 3 and renamer.usage.output_tokens == 2
    assert renamer.error is inner.error is None


def test_stream_already_named_as_the_caller_needs_no_renamer() -> None:
    first = b'data: {"model":"mock/echo","choices":[]}\n\n'
    assert stream_renamer(first, StreamFilter(True, Usage()), "mock/echo") == (None, "mock/echo")


def test_an_azure_stream_renames_its_empty_filter_chunk_model_and_the_real_one() -> None:
    filter_chunk = b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}\n\n'
    content = b'data: {"choices":[{"delta":{"content":"hi"}}],"model":"gpt-4o-2024-11-20"}\n\n'
    inner = StreamFilter(True, Usage())
    first = inner.feed(filter_chunk + content)
    renamer, provider = stream_renamer(first, inner, CALLER)
    assert renamer is not None and provider == "gpt-4o-2024-11-20"
    out = renamer.rename(first) + renamer.feed(content)
    models = [orjson.loads(line[5:])["model"] for line in out.split(b"\n") if line.startswith(b"data:")]
    assert models == [CALLER, CALLER, CALLER]
