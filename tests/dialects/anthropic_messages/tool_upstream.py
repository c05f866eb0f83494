"""A scripted OpenAI chat upstream that answers with tool calls (the OpenAI mock only echoes text).

`ToolUpstream(api_key)` serves `POST /v1/chat/completions` on a free port from a background thread
(`start_in_thread()` / `stop_thread()`). Each answer follows `script`: optional text, then tool calls
`(id, name, arguments JSON)`, and reports the script's `usage` (USAGE by default). Streams are OpenAI's
wire format: a role chunk, the text in two pieces, each tool call as a start chunk (id, name, empty
arguments) followed by its arguments in `FRAGMENT`-character pieces, a finish chunk, the usage chunk
when `stream_options.include_usage`, `[DONE]`. Every request body is recorded in `requests`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.upstreams.aiohttp_server import AiohttpServer

FRAGMENT = 4
USAGE: dict[str, Any] = {
    "prompt_tokens": 40,
    "completion_tokens": 12,
    "total_tokens": 52,
    "prompt_tokens_details": {"cached_tokens": 16},
}


@dataclass
class Script:
    text: str = ""
    tools: list[tuple[str, str, str]] = field(default_factory=list)  # (id, name, arguments JSON)
    usage: dict[str, Any] = field(default_factory=lambda: dict(USAGE))  # what the answers report


class ToolUpstream(AiohttpServer):
    client_max_size = 1024**2  # aiohttp's default

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.script = Script()
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def reset(self, script: Script | None = None) -> None:
        with self._lock:
            self._requests.clear()
        self.script = script or Script()

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(
                {
                    "error": {
                        "message": "Incorrect API key provided.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        body = await request.json()
        with self._lock:
            self._requests.append(body)
        script = self.script
        calls = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in script.tools]
        finish = "tool_calls" if calls else "stop"
        base = {"id": "chatcmpl-tool1", "created": 1741569952, "model": body.get("model")}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": script.text or None, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "usage": script.usage,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for delta in _deltas(script):
            await _send(response, base, [{"index": 0, "delta": delta, "finish_reason": None}])
        await _send(response, base, [{"index": 0, "delta": {}, "finish_reason": finish}])
        if (body.get("stream_options") or {}).get("include_usage"):
            await _send(response, base, [], usage=script.usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _deltas(script: Script) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if script.text:
        half = len(script.text) // 2
        deltas += [{"content": script.text[:half]}, {"content": script.text[half:]}]
    for index, (call_id, name, arguments) in enumerate(script.tools):
        deltas.append(
            {
                "tool_calls": [
                    {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                ]
            }
        )
        for start in range(0, len(arguments), FRAGMENT):
            deltas.append(
                {"tool_calls": [{"index": index, "function": {"arguments": arguments[start : start + FRAGMENT]}}]}
            )
    return deltas


async def _send(
    response: web.StreamResponse,
    base: dict[str, Any],
    choices: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
) -> None:
    chunk = {**base, "object": "chat.completion.chunk", "choices": choices}
    if usage is not None:
        chunk["usage"] = usage
    await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
