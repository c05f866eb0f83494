"""Streams through virtual models: fallback before the first chunk, truncation after it, cancellation."""

from __future__ import annotations

import os
import time
from typing import Any

import openai
import orjson
import pytest

from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import HttpResult
from tests.pipeline.routing.conftest import MESSAGES, Rig, applied, model_id
from tests.upstreams.openai_mock import chat_reply

LONG_MESSAGES: list[Any] = [{"role": "user", "content": "one two three four five six seven eight"}]
CANCEL_WITHIN = 1.0  # seconds from the caller leaving to the upstream connection closing


def raw_stream(rig: Rig, model: str, headers: dict[str, str] | None = None) -> HttpResult:
    return rig.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=rig.alice,
        headers=headers,
        json={"model": model, "messages": LONG_MESSAGES, "stream": True},
    )


def sse_data(body: bytes) -> list[bytes]:
    """The `data:` payloads of an SSE body, in order."""
    out = []
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                out.append(line[5:].strip())
    return out


def assert_clean_stream_from(result: HttpResult, upstream_model: str) -> None:
    """A whole stream answered by the upstream whose provider model id is `upstream_model`."""
    assert result.status == 200, result.body
    data = sse_data(result.body)
    assert data[-1] == b"[DONE]" and data.count(b"[DONE]") == 1
    chunks = [orjson.loads(d) for d in data[:-1]]
    assert all("error" not in c for c in chunks), chunks
    assert result.headers.get("x-tfy-provider-model") == upstream_model
    assert {c["model"] for c in chunks} == {"vmod/" + upstream_model.rpartition("-on-")[0]}  # the caller's name
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == chat_reply(LONG_MESSAGES)


# -- before the first chunk: fallback ----------------------------------------------------------------


def test_stream_error_status_before_first_chunk_falls_back(rig: Rig) -> None:
    rig.a.fail_next(503)
    result = raw_stream(rig, "vmod/stream-fb")
    assert_clean_stream_from(result, model_id("prov-b/stream-fb"))
    assert result.headers.get("x-tfy-resolved-model") == "prov-b/stream-fb"
    assert rig.counts() == (1, 1, 0)


def test_stream_dropped_before_first_chunk_falls_back(rig: Rig) -> None:
    rig.a.drop_stream_after(0)
    result = raw_stream(rig, "vmod/stream-drop-first")
    assert_clean_stream_from(result, model_id("prov-b/stream-drop-first"))
    assert rig.counts() == (1, 1, 0)


def test_stream_dropped_after_role_chunk_before_content_falls_back(rig: Rig) -> None:
    rig.a.drop_stream_after(1)  # the role-only first delta, then the connection dies
    result = raw_stream(rig, "vmod/stream-drop-role")
    assert_clean_stream_from(result, model_id("prov-b/stream-drop-role"))
    assert rig.counts() == (1, 1, 0)


def test_stream_error_event_before_first_chunk_falls_back(rig: Rig) -> None:
    rig.a.fail_stream_after(0)
    result = raw_stream(rig, "vmod/stream-error-first")
    assert_clean_stream_from(result, model_id("prov-b/stream-error-first"))
    assert rig.counts() == (1, 1, 0)


def test_rate_limit_error_event_before_first_chunk_falls_back_as_a_429(rig: Rig) -> None:
    rig.a.fail_stream_after(0, status=429)
    result = raw_stream(rig, "vmod/stream-error-429-first")
    assert_clean_stream_from(result, model_id("prov-b/stream-error-429-first"))
    assert applied(result.headers)["load_balancing"]["fallbacks"] == 1


def test_rate_limit_error_event_before_first_chunk_reaches_the_caller_as_429(rig: Rig) -> None:
    rig.a.fail_stream_after(0, status=429)
    result = raw_stream(rig, "prov-a/stream-error-plain")
    assert result.status == 429, result.body
    assert_error_shape(result.json())
    assert result.json()["error"]["code"] == "rate_limit_exceeded"


def test_unnamed_error_event_before_first_chunk_is_a_502(rig: Rig) -> None:
    rig.a.fail_stream_after(0)  # type server_error, no code: says nothing more than "it broke"
    result = raw_stream(rig, "prov-a/stream-error-plain")
    assert result.status == 502, result.body
    assert_error_shape(result.json())


def test_sdk_sees_one_stream_after_fallback(rig: Rig) -> None:
    rig.a.fail_next(503)
    chunks = list(rig.client().chat.completions.create(model="vmod/stream-fb", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == chat_reply(MESSAGES)
    assert {c.model for c in chunks} == {"vmod/stream-fb"}


# -- after content: truncation -----------------------------------------------------------------------


def _assert_truncated_with_error_event(result: HttpResult) -> dict[str, Any]:
    assert result.status == 200
    data = sse_data(result.body)
    assert b"[DONE]" not in data
    contents = [orjson.loads(d) for d in data[:-1]]
    assert any(c["choices"] and c["choices"][0]["delta"].get("content") for c in contents), "no content came first"
    last = orjson.loads(data[-1])
    assert_error_shape(last)
    assert isinstance(last, dict)
    return last


def test_stream_error_event_after_content_ends_stream_without_done(rig: Rig) -> None:
    rig.a.fail_stream_after(3)
    result = raw_stream(rig, "vmod/stream-error")
    _assert_truncated_with_error_event(result)
    assert rig.counts() == (1, 0, 0), "no fallback once content reached the client"


def test_stream_dropped_after_content_ends_with_error_event_without_done(rig: Rig) -> None:
    rig.a.drop_stream_after(3)
    result = raw_stream(rig, "vmod/stream-drop")
    _assert_truncated_with_error_event(result)
    assert rig.counts() == (1, 0, 0), "no fallback once content reached the client"


def test_sdk_raises_on_a_stream_truncated_after_content(rig: Rig) -> None:
    rig.a.drop_stream_after(3)
    stream = rig.client().chat.completions.create(model="vmod/stream-drop", messages=LONG_MESSAGES, stream=True)
    received = ""
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert received and chat_reply(LONG_MESSAGES).startswith(received)


@pytest.mark.parametrize("fault", ["drop", "error"])
def test_stream_truncated_after_content_is_logged_truncated(rig: Rig, fault: str) -> None:
    if fault == "drop":
        rig.a.drop_stream_after(3)
    else:
        rig.a.fail_stream_after(3)
    result = raw_stream(rig, f"vmod/stream-{fault}")
    row = rig.gateway.wait_for_log(str(result.headers.get("x-request-id")))
    assert row["truncated"] is True
    assert row["status"] == 200


# -- the caller goes away: cancellation ------------------------------------------------------------


def test_client_disconnect_mid_stream_cancels_upstream_and_logs_499(rig: Rig) -> None:
    rig.a.chunk_delay = 0.3
    raw = rig.client().chat.completions.with_raw_response.create(
        model="vmod/disconnect-stream", messages=LONG_MESSAGES, stream=True
    )
    stream = raw.parse()
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    left_at = time.monotonic()
    recorded = rig.a.last("/chat/completions")
    closed_at = rig.a.wait_closed(recorded, timeout=3.0)
    assert closed_at is not None, "the upstream stream kept going after the caller left"
    assert closed_at - left_at < CANCEL_WITHIN, f"upstream closed {closed_at - left_at:.2f}s after the caller left"
    assert recorded.completed is False
    row = rig.gateway.wait_for_log(str(raw.headers["x-request-id"]))
    assert row["status"] == 499
    assert rig.counts() == (1, 0, 0)


def test_client_disconnect_while_waiting_cancels_upstream_and_logs_499(rig: Rig) -> None:
    rig.a.delay_next(5.0)
    request_id = "routing-e2e-" + os.urandom(6).hex()
    client = rig.client(timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="vmod/disconnect-wait", messages=MESSAGES, extra_headers={"x-request-id": request_id}
        )
    left_at = time.monotonic()
    recorded = rig.a.last("/chat/completions")
    closed_at = rig.a.wait_closed(recorded, timeout=3.0)
    assert closed_at is not None, "the upstream call kept waiting after the caller left"
    assert closed_at - left_at < CANCEL_WITHIN, f"upstream closed {closed_at - left_at:.2f}s after the caller left"
    row = rig.gateway.wait_for_log(request_id)
    assert row["status"] == 499
    time.sleep(0.2)
    assert rig.counts() == (1, 0, 0), "a request whose caller left must not fall back"
