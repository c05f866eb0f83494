"""A wire-faithful mock of Cohere's v2 API (`/v2/chat`, `/v2/embed`, `/v2/rerank`) for tests.

Start it like the OpenAI mock: `async with CohereMock(key) as mock:` in the running loop, or
`with CohereMock(key).running() as mock:` from sync code. Requests are recorded (`mock.requests`).

It checks what Cohere checks (the bearer key, JSON bodies, required fields, roles, tool-call ids,
`tool_choice` values) and, stricter than Cohere, refuses fields the v2 API does not define, so an
OpenAI field leaking through a translation fails loudly. Errors are Cohere's `{"id", "message"}`.

Answers are deterministic: chat echoes the last user message ("echo: ...", plus "[N image(s)]" for
image parts) or, after tool results, "result: ..."; with tools offered and a user message last it
calls every offered tool, each argument property set to the user's text, arguments pretty-printed
the way Cohere streams them. Tokens are whitespace words; `tokens.input_tokens` adds 100 words of
Cohere's unbilled prompt scaffolding to the billed count. Streams use Cohere's framing,
`event: <type>\\ndata: <json>\\n\\n`, one content-delta per word and several tool-call-deltas per call.
Embeddings reuse the OpenAI mock's vectors (exact in float32; int8/uint8 quantize them, see
`quantized`); rerank uses its word-overlap score.

Injection (cleared by `reset()`): `fail_next(status, message=..., body=...)`, `fail_stream(reason,
after=n, error=...)` (message-end with ERROR/TIMEOUT after n events) and `drop_stream_after(n)`.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from tests.upstreams.mock_upstream import Fault, MockUpstream
from tests.upstreams.openai_mock import count_tokens, embedding_vector, rerank_score, split_pieces

JSON = dict[str, Any]
SCAFFOLDING_TOKENS = 100
CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "strict_tools",
        "documents",
        "citation_options",
        "response_format",
        "safety_mode",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "k",
        "p",
        "logprobs",
        "tool_choice",
        "thinking",
        "stream",
    }
)
EMBED_FIELDS = frozenset(
    {
        "model",
        "texts",
        "images",
        "inputs",
        "input_type",
        "max_tokens",
        "output_dimension",
        "embedding_types",
        "truncate",
    }
)
RERANK_FIELDS = frozenset({"model", "query", "documents", "top_n", "max_tokens_per_doc"})


class CohereRequestError(Exception):
    """A request the mock refuses, with Cohere's status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def images_in(content: Any) -> int:
    return (
        sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
        if isinstance(content, list)
        else 0
    )


def chat_reply(messages: list[JSON]) -> str:
    """What the mock answers when it does not call tools."""
    last = messages[-1]
    if last.get("role") == "tool":
        results = [text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "tool"]
        return "result: " + "; ".join(reversed(results))
    user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    images = images_in(user.get("content"))
    suffix = f" [{images} image{'s' if images != 1 else ''}]" if images else ""
    return "echo: " + text_of(user.get("content")) + suffix


def tool_arguments(tool: JSON, text: str) -> str:
    """The arguments the mock passes to `tool`: every parameter property set to `text`."""
    properties = tool.get("function", {}).get("parameters", {}).get("properties", {})
    return json.dumps({name: text for name in properties}, indent=4)


def argument_fragments(arguments: str) -> list[str]:
    """How the mock splits tool arguments across tool-call-delta events (several pieces per call)."""
    size = max(len(arguments) // 4, 1)
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def prompt_words(messages: list[JSON]) -> int:
    return sum(count_tokens(text_of(m.get("content")) or m.get("tool_plan") or "") for m in messages)


def quantized(vector: list[float], kind: str) -> list[Any]:
    """A float vector as Cohere's `kind` embedding (int8: scaled to -127..127, uint8: shifted by 128)."""
    if kind == "float":
        return vector
    ints = [max(-128, min(127, round(v * 127))) for v in vector]
    return ints if kind == "int8" else [i + 128 for i in ints]


def usage_of(billed_in: int, out: int) -> JSON:
    return {
        "billed_units": {"input_tokens": billed_in, "output_tokens": out},
        "tokens": {"input_tokens": billed_in + SCAFFOLDING_TOKENS, "output_tokens": out},
    }


def _sse(event: JSON) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes
    json: Any = None
    status: int | None = None
    usage: JSON | None = None


@dataclass
class _StreamFault:
    mode: str  # "drop" | "ERROR" | "TIMEOUT"
    after: int
    error: str = ""
    remaining: int = 1


@dataclass
class _Plan:
    """One chat answer before it is framed (JSON or SSE)."""

    text_pieces: list[str] = field(default_factory=list)
    tool_plan: str = ""
    tool_calls: list[JSON] = field(default_factory=list)
    finish: str = "COMPLETE"
    usage: JSON = field(default_factory=dict)


class CohereMock(MockUpstream[RecordedRequest]):
    """Expects `Authorization: Bearer <api_key>` when `api_key` is set."""

    client_max_size = 32 * 1024 * 1024

    def __init__(self, api_key: str | None = None, *, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.api_key = api_key
        self._faults: list[Fault] = []
        self._stream_faults: list[_StreamFault] = []

    # -- injection ---------------------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._faults.clear()
            self._stream_faults.clear()

    def fail_next(
        self, status: int, *, message: str = "internal server error", body: JSON | bytes | None = None, count: int = 1
    ) -> None:
        """Answer the next `count` requests with `status` and Cohere's error body (or `body`)."""
        payload = body if body is not None else {"id": f"err-{next(self._ids)}", "message": message}
        raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        with self._lock:
            self._faults.append(Fault(status, raw, count))

    def fail_stream(self, reason: str = "ERROR", *, after: int = 3, error: str = "internal error") -> None:
        """End the next stream after `after` events with a message-end of finish_reason `reason`."""
        with self._lock:
            self._stream_faults.append(_StreamFault(reason, after, error))

    def drop_stream_after(self, events: int) -> None:
        """Close the connection of the next stream after `events` events (no message-end)."""
        with self._lock:
            self._stream_faults.append(_StreamFault("drop", events))

    # -- HTTP --------------------------------------------------------------------------------------

    def _error(self, recorded: RecordedRequest, status: int, message: str) -> web.Response:
        recorded.status = status
        return web.json_response({"id": f"err-{next(self._ids)}", "message": message}, status=status)

    async def _record(self, request: web.Request) -> RecordedRequest:
        return RecordedRequest(request.method, request.path, CIMultiDict(request.headers), await request.read())

    async def _answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        fault = self._take(self._faults)
        if fault is not None:
            recorded.status = fault.status
            return fault.response()
        routes: dict[str, Callable[..., Any]] = {
            "/v2/chat": self._chat,
            "/v2/embed": self._embed,
            "/v2/rerank": self._rerank,
        }
        handler = routes.get(request.path)
        if handler is None or request.method != "POST":
            return self._error(recorded, 404, "404 page not found")
        auth = request.headers.get("Authorization", "")
        if self.api_key is not None:
            if not auth:
                return self._error(recorded, 401, "no api key supplied")
            scheme, _, key = auth.partition(" ")
            if scheme.lower() != "bearer" or key.strip() != self.api_key:
                return self._error(recorded, 401, "invalid api token")
        try:
            recorded.json = orjson.loads(recorded.body)
        except orjson.JSONDecodeError as exc:
            return self._error(recorded, 400, f"invalid json syntax: {exc}")
        try:
            if not isinstance(recorded.json, dict):
                raise CohereRequestError(400, "invalid request: body must be a JSON object")
            if not recorded.json.get("model"):
                raise CohereRequestError(400, "a model parameter is required for this endpoint.")
            result: web.StreamResponse = await handler(request, recorded, recorded.json)
        except CohereRequestError as exc:
            return self._error(recorded, exc.status, exc.message)
        return result

    @staticmethod
    def _known_fields(body: JSON, allowed: frozenset[str]) -> None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise CohereRequestError(400, f"invalid request: unknown field(s): {', '.join(unknown)}")

    # -- chat --------------------------------------------------------------------------------------

    def _check_messages(self, body: JSON) -> list[JSON]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise CohereRequestError(400, "invalid request: messages must not be empty")
        seen_calls: set[str] = set()
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("system", "user", "assistant", "tool"):
                raise CohereRequestError(400, f"invalid request: invalid role at index {index}")
            if role == "assistant":
                for call in message.get("tool_calls") or []:
                    if call.get("type") != "function":
                        raise CohereRequestError(400, "tool call must be of type function")
                    seen_calls.add(str(call.get("id")))
            if role == "tool":
                if not message.get("tool_call_id"):
                    raise CohereRequestError(400, "tool call id must be provided with tool message")
                if message["tool_call_id"] not in seen_calls:
                    raise CohereRequestError(400, "tool call id not found in previous tool calls")
            if role in ("system", "user", "tool") and "content" not in message:
                raise CohereRequestError(400, "message must not be empty in a turn")
            for part in message.get("content") if isinstance(message.get("content"), list) else []:
                if part.get("type") == "image_url" and not str(part.get("image_url", {}).get("url", "")).startswith(
                    ("data:image/", "https://", "http://")
                ):
                    raise CohereRequestError(400, "invalid request: image_url must be a data URI or a URL")
        return messages

    def _plan(self, body: JSON) -> _Plan:
        messages = self._check_messages(body)
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        if choice is not None and choice not in ("REQUIRED", "NONE"):
            raise CohereRequestError(400, f"invalid request: tool_choice must be one of REQUIRED, NONE (got {choice})")
        if choice == "REQUIRED" and not tools:
            raise CohereRequestError(400, "invalid request: tools must be specified when tool_choice is REQUIRED")
        for index, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not function.get("name"):
                raise CohereRequestError(400, f"invalid request: tools[{index}].function.name is required")
            if not isinstance(function.get("parameters"), dict):  # required by the v2 API (ToolV2Function)
                raise CohereRequestError(400, f"invalid request: tools[{index}].function.parameters is required")
        billed_in = prompt_words(messages)
        if tools and choice != "NONE" and messages[-1]["role"] == "user":
            text = text_of(messages[-1].get("content"))
            calls: list[JSON] = [
                {
                    "id": f"{t['function']['name']}_{next(self._ids):012x}",
                    "type": "function",
                    "function": {"name": t["function"]["name"], "arguments": tool_arguments(t, text)},
                }
                for t in tools
            ]
            plan = f"I will call {', '.join(t['function']['name'] for t in tools)}."
            out = count_tokens(plan) + sum(len(argument_fragments(c["function"]["arguments"])) for c in calls)
            return _Plan(tool_plan=plan, tool_calls=calls, finish="TOOL_CALL", usage=usage_of(billed_in, out))
        reply = chat_reply(messages)
        if isinstance(body.get("response_format"), dict) and body["response_format"].get("type") == "json_object":
            reply = json.dumps({"reply": reply})
        finish = "COMPLETE"
        for stop in body.get("stop_sequences") or []:
            if stop and stop in reply:
                reply, finish = reply[: reply.index(stop)], "STOP_SEQUENCE"
        pieces = split_pieces(reply)
        limit = body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces, finish = pieces[:limit], "MAX_TOKENS"
        return _Plan(text_pieces=pieces, finish=finish, usage=usage_of(billed_in, len(pieces)))

    async def _chat(self, request: web.Request, recorded: RecordedRequest, body: JSON) -> web.StreamResponse:
        self._known_fields(body, CHAT_FIELDS)
        plan = self._plan(body)
        recorded.usage = plan.usage
        chat_id = f"{next(self._ids):08x}-mock-4a6b-9c1d-cohere"
        if body.get("stream") is not True:
            message: JSON = {"role": "assistant"}
            if plan.tool_calls:
                message.update(tool_plan=plan.tool_plan, tool_calls=plan.tool_calls)
            else:
                message["content"] = [{"type": "text", "text": "".join(plan.text_pieces)}]
            recorded.status = 200
            return web.json_response(
                {"id": chat_id, "message": message, "finish_reason": plan.finish, "usage": plan.usage}
            )
        return await self._stream(request, recorded, self._events(chat_id, plan))

    @staticmethod
    def _events(chat_id: str, plan: _Plan) -> list[JSON]:
        events: list[JSON] = [
            {
                "id": chat_id,
                "type": "message-start",
                "delta": {
                    "message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
                },
            }
        ]
        if plan.tool_calls:
            events += [
                {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": p}}}
                for p in split_pieces(plan.tool_plan)
            ]
            for index, call in enumerate(plan.tool_calls):
                start = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
                events.append({"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": start}}})
                events += [
                    {
                        "type": "tool-call-delta",
                        "index": index,
                        "delta": {"message": {"tool_calls": {"function": {"arguments": fragment}}}},
                    }
                    for fragment in argument_fragments(call["function"]["arguments"])
                ]
                events.append({"type": "tool-call-end", "index": index})
        else:
            events.append(
                {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}
            )
            events += [
                {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}
                for piece in plan.text_pieces
            ]
            events.append({"type": "content-end", "index": 0})
        events.append({"type": "message-end", "delta": {"finish_reason": plan.finish, "usage": plan.usage}})
        return events

    async def _stream(self, request: web.Request, recorded: RecordedRequest, events: list[JSON]) -> web.StreamResponse:
        fault: _StreamFault | None = self._take(self._stream_faults)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        recorded.status = 200
        await response.prepare(request)
        for index, event in enumerate(events):
            if fault is not None and index == fault.after:
                if fault.mode == "drop":
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                end = {
                    "type": "message-end",
                    "delta": {"error": fault.error, "finish_reason": fault.mode, "usage": events[-1]["delta"]["usage"]},
                }
                await response.write(_sse(end))
                break
            await response.write(_sse(event))
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    # -- embed and rerank --------------------------------------------------------------------------

    async def _embed(self, request: web.Request, recorded: RecordedRequest, body: JSON) -> web.StreamResponse:
        self._known_fields(body, EMBED_FIELDS)
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise CohereRequestError(400, "invalid request: texts must be a non-empty list of strings")
        if len(texts) > 96:
            raise CohereRequestError(
                400, f"invalid request: total number of texts must be at most 96 - received {len(texts)}"
            )
        if any(t == "" for t in texts):
            raise CohereRequestError(400, "invalid request: inputs contains an element that is the empty string")
        if body.get("input_type") not in ("search_document", "search_query", "classification", "clustering"):
            raise CohereRequestError(400, "invalid request: valid input_type must be provided with the provided model")
        if not body.get("embedding_types"):
            raise CohereRequestError(400, "embedding_types parameter is required")
        if not set(body["embedding_types"]) <= {"float", "int8", "uint8"}:
            raise CohereRequestError(400, "the mock serves float, int8 and uint8 embeddings only")
        if body.get("truncate") not in (None, "NONE", "START", "END"):
            raise CohereRequestError(400, "invalid request: truncate must be one of NONE, START, END")
        dims = body.get("output_dimension") or 8
        tokens = sum(count_tokens(t) for t in texts)
        recorded.usage = {"input_tokens": tokens}
        recorded.status = 200
        return web.json_response(
            {
                "id": f"{next(self._ids):08x}-embed",
                "texts": texts,
                "embeddings": {
                    kind: [quantized(embedding_vector(t, dims), kind) for t in texts]
                    for kind in body["embedding_types"]
                },
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
                "response_type": "embeddings_by_type",
            }
        )

    async def _rerank(self, request: web.Request, recorded: RecordedRequest, body: JSON) -> web.StreamResponse:
        self._known_fields(body, RERANK_FIELDS)
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not query.strip():
            raise CohereRequestError(400, "invalid request: query must not be empty or be only whitespace")
        if not isinstance(documents, list) or not documents:
            raise CohereRequestError(400, "invalid request: list of documents must not be empty")
        for index, document in enumerate(documents):
            if not isinstance(document, str) or not document:
                raise CohereRequestError(400, f"invalid request: document at index {index} cannot be empty")
        ranked = sorted(range(len(documents)), key=lambda i: (-rerank_score(query, documents[i]), i))
        top_n = body.get("top_n")
        if isinstance(top_n, int) and top_n > 0:
            ranked = ranked[:top_n]
        units = math.ceil(len(documents) / 100)
        recorded.usage = {"search_units": units}
        recorded.status = 200
        return web.json_response(
            {
                "id": f"{next(self._ids):08x}-rerank",
                "results": [{"index": i, "relevance_score": rerank_score(query, documents[i])} for i in ranked],
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": units}},
            }
        )
