"""A stateful mock of OpenAI's Responses, Files and Batches APIs (wire shapes per the API reference).

Responses echo the input text ("echo: ..."; `reply_repeat` times, for large answers), stream with
the documented `response.*` events (created, in_progress, output_item/content_part added, text
deltas, the `.done` events carrying the whole text, completed) and report usage with input/output
token details. Files are kept in memory (multipart upload, list,
retrieve, content, delete); batches move `validating` -> `cancelling` on cancel. Every request is
recorded with its path, query and headers. `api_key` is checked as a Bearer token.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.upstreams.aiohttp_server import AiohttpServer

JSON = dict[str, Any]


def input_text(value: Any) -> str:
    """The text of a Responses `input`: a string or a list of message items with text parts."""
    if isinstance(value, str):
        return value
    texts: list[str] = []
    for item in value if isinstance(value, list) else []:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return " ".join(texts)


def response_reply(value: Any) -> str:
    return f"echo: {input_text(value)}"


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, Any] = field(default_factory=dict)


class OpenAIResourcesMock(AiohttpServer):
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.files: dict[str, tuple[JSON, bytes]] = {}
        self.batches: dict[str, JSON] = {}
        self.responses: dict[str, JSON] = {}
        self.reply_repeat = 1  # the echo, this many times over (a large answer: multi-MiB `.done` lines)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    @staticmethod
    def _error(status: int, message: str, code: str | None = None) -> web.Response:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        return web.json_response(body, status=status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        form: dict[str, Any] = {}
        if request.content_type == "multipart/form-data":  # read by the form parser, not as raw bytes
            posted = await request.post()
            form = {k: (v.filename, v.file.read()) if hasattr(v, "filename") else v for k, v in posted.items()}
        body = b"" if form else await request.read()
        recorded = Recorded(request.method, request.path, request.query_string, dict(request.headers), body, form=form)
        if request.content_type == "application/json" and body:
            recorded.json = orjson.loads(body)
        with self._lock:
            self.requests.append(recorded)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided", "invalid_api_key")
        parts = request.path.strip("/").split("/")[1:]  # drop "v1"
        root = parts[0] if parts else ""
        if root == "responses":
            return await self._responses(request, recorded, parts[1:])
        if root == "files":
            return self._files(request, recorded, parts[1:])
        if root == "batches":
            return self._batches(request, recorded, parts[1:])
        return self._error(404, f"Invalid URL ({request.method} {request.path})")

    # -- responses -----------------------------------------------------------------------------------

    def _response_object(self, body: JSON) -> JSON:
        text = " ".join([response_reply(body.get("input"))] * self.reply_repeat)
        input_tokens = len(input_text(body.get("input")).split())
        output_tokens = len(text.split())
        return {
            "id": self._id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": body.get("model"),
            "output": [
                {
                    "type": "message",
                    "id": self._id("msg"),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "metadata": {},
            "temperature": 1.0,
            "top_p": 1.0,
            "text": {"format": {"type": "text"}},
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 2},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 1},
                "total_tokens": input_tokens + output_tokens,
            },
        }

    async def _responses(self, request: web.Request, recorded: Recorded, rest: list[str]) -> web.StreamResponse:
        if request.method == "POST" and not rest:
            body = recorded.json
            if not isinstance(body, dict) or "model" not in body or "input" not in body:
                return self._error(400, "Missing required parameter: 'model' or 'input'.")
            answer = self._response_object(body)
            self.responses[answer["id"]] = answer
            if body.get("stream") is True:
                return await self._stream_response(request, answer)
            return web.json_response(answer)
        found = self.responses.get(rest[0]) if rest else None
        if found is None:
            return self._error(404, "No response found", "not_found")
        if request.method == "DELETE":
            del self.responses[rest[0]]
            return web.json_response({"id": rest[0], "object": "response", "deleted": True})
        return web.json_response(found)

    async def _stream_response(self, request: web.Request, answer: JSON) -> web.StreamResponse:
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        item = answer["output"][0]
        part = item["content"][0]
        text = part["text"]
        at = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        in_progress = {**answer, "status": "in_progress", "output": [], "usage": None}
        events: list[JSON] = [
            {"type": "response.created", "response": in_progress},
            {"type": "response.in_progress", "response": in_progress},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress", "content": []},
            },
            {"type": "response.content_part.added", **at, "part": {**part, "text": ""}},
        ]
        words = text.split(" ")
        step = max(1, len(words) // 256)  # a large answer comes in a few hundred deltas, not one per word
        for start in range(0, len(words), step):
            piece = " ".join(words[start : start + step])
            events.append({"type": "response.output_text.delta", **at, "delta": piece + " ", "logprobs": []})
        events += [
            {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **at, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": answer},
        ]
        for number, event in enumerate(events):
            event["sequence_number"] = number
            await stream.write(b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n")
        await stream.write_eof()
        return stream

    # -- files ---------------------------------------------------------------------------------------

    def _files(self, request: web.Request, recorded: Recorded, rest: list[str]) -> web.Response:
        if request.method == "POST" and not rest:
            upload = recorded.form.get("file")
            purpose = recorded.form.get("purpose")
            if not isinstance(upload, tuple) or not purpose:
                return self._error(400, "Missing required parameter: 'file' or 'purpose'.")
            filename, data = upload
            info = {
                "id": self._id("file"),
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
                "status_details": None,
            }
            self.files[info["id"]] = (info, data)
            return web.json_response(info)
        if request.method == "GET" and not rest:
            return web.json_response({"object": "list", "data": [i for i, _ in self.files.values()], "has_more": False})
        found = self.files.get(rest[0]) if rest else None
        if found is None:
            return self._error(404, f"No such File object: {rest[0] if rest else ''}", "not_found")
        info, data = found
        if request.method == "DELETE":
            del self.files[rest[0]]
            return web.json_response({"id": rest[0], "object": "file", "deleted": True})
        if rest[1:] == ["content"]:
            return web.Response(body=data, content_type="application/octet-stream")
        return web.json_response(info)

    # -- batches -------------------------------------------------------------------------------------

    def _batches(self, request: web.Request, recorded: Recorded, rest: list[str]) -> web.Response:
        if request.method == "POST" and not rest:
            body = recorded.json if isinstance(recorded.json, dict) else {}
            if body.get("input_file_id") not in self.files:
                return self._error(400, "Invalid 'input_file_id'.", "invalid_file")
            batch = {
                "id": self._id("batch"),
                "object": "batch",
                "endpoint": body.get("endpoint"),
                "input_file_id": body["input_file_id"],
                "completion_window": body.get("completion_window"),
                "status": "validating",
                "created_at": int(time.time()),
                "errors": None,
                "output_file_id": None,
                "error_file_id": None,
                "metadata": body.get("metadata"),
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
            }
            self.batches[batch["id"]] = batch
            return web.json_response(batch)
        if request.method == "GET" and not rest:
            return web.json_response({"object": "list", "data": list(self.batches.values()), "has_more": False})
        batch = self.batches.get(rest[0]) if rest else None
        if batch is None:
            return self._error(404, "No batch found", "not_found")
        if request.method == "POST" and rest[1:] == ["cancel"]:
            batch["status"] = "cancelling"
        return web.json_response(batch)
