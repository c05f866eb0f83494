"""The two dialect objects the pipeline receives: their error renderers and stream-ending events."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.dialects.anthropic_messages import ANTHROPIC_MESSAGES
from relaygate.dialects.openai import OPENAI
from relaygate.errors import BadGateway, RateLimited, UpstreamError

OVERLOADED = orjson.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


async def rendered(dialect: Any, error: Any) -> tuple[int, dict[bytes, bytes], Any]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await dialect.send_error(send, error, [(b"x-request-id", b"req-1")])
    start, body = sent
    return start["status"], dict(start["headers"]), orjson.loads(body["body"])


async def test_openai_errors_keep_their_shape_and_headers() -> None:
    status, headers, body = await rendered(OPENAI, RateLimited("slow down", headers={"retry-after": "7"}))
    assert status == 429 and headers[b"retry-after"] == b"7" and headers[b"x-request-id"] == b"req-1"
    assert body["error"]["message"] == "slow down"
    assert OPENAI.error_event(BadGateway("cut")).startswith(b'data: {"error":')


async def test_messages_errors_are_anthropic_shaped_with_529_for_overloaded() -> None:
    status, headers, body = await rendered(ANTHROPIC_MESSAGES, UpstreamError(503, OVERLOADED))
    assert status == 529 and headers[b"request-id"] == b"req-1"
    assert body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req-1",
    }
    event = ANTHROPIC_MESSAGES.error_event(BadGateway("cut"))
    assert event.startswith(b"event: error\ndata: ") and event.endswith(b"\n\n")
    assert orjson.loads(event.split(b"data: ", 1)[1])["error"]["type"] == "api_error"
