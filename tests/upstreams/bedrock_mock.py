"""A wire-faithful mock of the Bedrock Runtime API (Converse, ConverseStream, InvokeModel embeddings).

Served like `openai_mock.OpenAIMock` (free 127.0.0.1 port; `async with` or `.running()` from a thread).
Every request must be authenticated as Bedrock does: a SigV4 `Authorization` header, which the mock
VERIFIES by recomputing the signature with botocore from the request it received (host, raw path,
signed headers, body) with the known secret key and checking the credential scope (access key, date,
region, service `bedrock`) — or a Bedrock API key as `Authorization: Bearer <key>`. Failures answer
403 `UnrecognizedClientException` / `InvalidSignatureException` like AWS.

Routes: `POST /model/{modelId}/converse`, `/converse-stream` (binary `application/vnd.amazon.eventstream`
frames with prelude and message CRCs, encoded by `aws_eventstream` — botocore only ships a decoder)
`/invoke` for Amazon Titan text embeddings (v1, v2) and Cohere Embed, and `/count-tokens` (CountTokens:
`{"input": {"converse": {messages, system?, toolConfig?, additionalModelRequestFields?}}}` validated as
Converse input, or `{"input": {"invokeModel": {"body"}}}`, exactly one of them; answers `{"inputTokens"}`
counted as Converse's usage counts that prompt, `input_tokens`). Errors are Bedrock's:
`{"message": ...}` with the type in `x-amzn-ErrorType`.

Deterministic answers: chat replies "echo: <last user text>" (plus "[image <format> <n> bytes]" per
image), calls the tools named in the last user text (or the forced one) with `tool_input(schema,
text)`, answers a tool result with "tool result: <text>"; usage counts words (`count_tokens`).
Behaviour injection: `fail_next(error_type)`, `fail_stream_after(events, exception_type)`,
`cache_usage = (read, write)`, `chunk_delay`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web
from multidict import CIMultiDict

from tests.upstreams.aws_eventstream import event_frame, exception_frame
from tests.upstreams.aws_sigv4 import SignatureRejected, verify_sigv4
from tests.upstreams.mock_upstream import MockUpstream, json_or_none
from tests.upstreams.openai_mock import count_tokens, embedding_vector, split_pieces

JSON = dict[str, Any]
ACCESS_KEY_ID = "AKIDBEDROCKMOCK01"
SECRET_ACCESS_KEY = "bedrock-mock-secret-Zx9/Qw8+example"
API_KEY = "bedrock-api-key-ABSKexample123"
REGION = "us-west-2"

# AWS error type -> (HTTP status, default message), as the Bedrock Runtime service model declares them.
ERRORS: dict[str, tuple[int, str]] = {
    "ThrottlingException": (429, "Too many requests, please wait before trying again."),
    "ServiceUnavailableException": (503, "Bedrock is unable to process your request."),
    "ModelTimeoutException": (408, "Model has timed out in processing the request. Try your request again."),
    "ModelNotReadyException": (429, "Model is not ready for inference. Wait and try your request again."),
    "ModelErrorException": (424, "The model returned an error."),
    "InternalServerException": (500, "The server encountered an error processing your request."),
    "ValidationException": (400, "The input is invalid."),
    "AccessDeniedException": (403, "You don't have access to the model with the specified model ID."),
    "ResourceNotFoundException": (404, "Model not found."),
    "ServiceQuotaExceededException": (400, "Your request exceeds the service quota for your account."),
    "UnrecognizedClientException": (403, "The security token included in the request is invalid."),
    "InvalidSignatureException": (
        403,
        "The request signature we calculated does not match the signature you "
        "provided. Check your AWS Secret Access Key and signing method. Consult "
        "the service documentation for details.",
    ),
    "MissingAuthenticationTokenException": (403, "Missing Authentication Token"),
}
_IMAGE_MAGIC = {"png": b"\x89PNG", "jpeg": b"\xff\xd8", "gif": b"GIF8", "webp": b"RIFF"}
_CONVERSE_FIELDS = {
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
    "outputConfig",
}
_INFERENCE_FIELDS = {"maxTokens", "temperature", "topP", "stopSequences"}
_COUNT_CONVERSE_FIELDS = {"messages", "system", "toolConfig", "additionalModelRequestFields"}  # ConverseTokensRequest
_BLOCK_KINDS = {
    "text",
    "image",
    "document",
    "video",
    "audio",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
    "citationsContent",
    "searchResult",
}


class BedrockError(Exception):
    """Answer with a Bedrock error (status from `ERRORS`)."""

    def __init__(self, error_type: str, message: str | None = None) -> None:
        super().__init__(message or ERRORS[error_type][1])
        self.error_type = error_type
        self.message = message or ERRORS[error_type][1]


# -- deterministic content --------------------------------------------------------------------------


def tool_input(schema: Any, text: str) -> JSON:
    """What the mock passes to a tool: strings get the user text, numbers its word count, booleans true."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    values: JSON = {}
    for name, spec in (properties or {}).items():
        kind = str(spec.get("type")) if isinstance(spec, dict) else ""
        values[name] = {
            "string": text,
            "integer": count_tokens(text),
            "number": count_tokens(text),
            "boolean": True,
        }.get(kind)
    return values


def _block_text(block: JSON) -> str:
    if isinstance(block.get("text"), str):
        return str(block["text"])
    result = block.get("toolResult")
    if isinstance(result, dict):
        return " ".join(str(c.get("text", "")) for c in result.get("content", []) if isinstance(c, dict))
    return ""


def input_tokens(body: JSON) -> int:
    """The mock's prompt accounting: 2 per message plus the words of every text and tool result block."""
    total = sum(count_tokens(str(b.get("text", ""))) for b in body.get("system", []))
    for message in body["messages"]:
        total += 2 + sum(count_tokens(_block_text(b)) for b in message["content"])
    return total


@dataclass
class BedrockAnswer:
    """What the mock answers to a Converse request."""

    text: str
    tool_uses: list[JSON]
    stop_reason: str
    pieces: list[str]


def converse_answer(body: JSON) -> BedrockAnswer:
    """The deterministic answer to a (validated) Converse body."""
    last = body["messages"][-1]
    blocks = last["content"] if last["role"] == "user" else []
    text = " ".join(b["text"] for b in blocks if isinstance(b.get("text"), str))
    results = [_block_text(b) for b in blocks if "toolResult" in b]
    tools = [t["toolSpec"] for t in (body.get("toolConfig") or {}).get("tools", []) if "toolSpec" in t]
    choice = (body.get("toolConfig") or {}).get("toolChoice") or {"auto": {}}
    if results:
        reply, chosen = "tool result: " + " ".join(results), []
    elif "tool" in choice:
        reply, chosen = "", [t for t in tools if t["name"] == choice["tool"]["name"]][:1]
    elif "any" in choice and tools:
        reply, chosen = "", tools[:1]
    else:
        chosen = [t for t in tools if t["name"] in text]
        reply = f"Let me use {', '.join(t['name'] for t in chosen)}." if chosen else "echo: " + text
    for block in blocks:
        if "image" in block:
            data = base64.b64decode(block["image"]["source"]["bytes"])
            reply += f" [image {block['image']['format']} {len(data)} bytes]"
    uses = [
        {
            "toolUseId": f"tooluse_{uuid.uuid5(uuid.NAMESPACE_OID, t['name'] + text).hex[:22]}",
            "name": t["name"],
            "input": tool_input(t["inputSchema"].get("json"), text),
        }
        for t in chosen
    ]
    pieces = split_pieces(reply)
    stop = "tool_use" if uses else "end_turn"
    config = body.get("inferenceConfig") or {}
    for sequence in config.get("stopSequences") or ():
        if sequence in reply:
            pieces, stop, uses = split_pieces(reply[: reply.index(sequence)]), "stop_sequence", []
            break
    limit = config.get("maxTokens")
    if isinstance(limit, int) and limit < len(pieces):
        pieces, stop, uses = pieces[:limit], "max_tokens", []
    return BedrockAnswer("".join(pieces), uses, stop, pieces)


# -- request validation (what Bedrock itself refuses) -----------------------------------------------


def validate_converse(body: Any) -> JSON:
    """The body, or a ValidationException with Bedrock-style wording."""
    if not isinstance(body, dict):
        raise BedrockError("ValidationException", "Malformed request body.")
    unknown = set(body) - _CONVERSE_FIELDS
    if unknown:
        raise BedrockError("ValidationException", f"Unknown field: {sorted(unknown)[0]}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BedrockError("ValidationException", "A conversation must start with a user message.")
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant") or not message.get("content"):
            raise BedrockError("ValidationException", f"messages.{i}: role and non-empty content are required.")
        if i == 0 and message["role"] != "user":
            raise BedrockError("ValidationException", "A conversation must start with a user message.")
        if i and message["role"] == messages[i - 1]["role"]:
            raise BedrockError(
                "ValidationException",
                "A conversation must alternate between user and assistant "
                "roles. Make sure the conversation alternates between user "
                "and assistant roles and try again.",
            )
        for j, block in enumerate(message["content"]):
            _validate_block(block, f"messages.{i}.content.{j}", body)
    for j, block in enumerate(body.get("system") or ()):
        if not isinstance(block, dict) or not block.get("text"):
            raise BedrockError("ValidationException", f"The text field in system.{j} is blank.")
    config = body.get("inferenceConfig") or {}
    if set(config) - _INFERENCE_FIELDS:
        raise BedrockError("ValidationException", f"Unknown inferenceConfig field: {sorted(set(config))[0]}")
    for j, tool in enumerate((body.get("toolConfig") or {}).get("tools", [])):
        spec = tool.get("toolSpec")
        if not isinstance(spec, dict) or not spec.get("name") or "json" not in spec.get("inputSchema", {}):
            raise BedrockError(
                "ValidationException", f"toolConfig.tools.{j}: toolSpec with name and inputSchema.json is required."
            )
    return body


def validate_count_tokens(body: Any) -> JSON:
    """The Converse input a CountTokens body counts (invokeModel input: None), or a ValidationException."""
    if not isinstance(body, dict):
        raise BedrockError("ValidationException", "Malformed request body.")
    unknown = sorted(set(body) - {"input"})
    if unknown:
        raise BedrockError("ValidationException", f"Unknown field: {unknown[0]}")
    given = body.get("input")
    if not isinstance(given, dict):
        raise BedrockError(
            "ValidationException",
            "1 validation error detected: Value null at 'input' failed to satisfy constraint: Member must not be null",
        )
    if len(given) != 1 or not set(given) <= {"converse", "invokeModel"}:
        raise BedrockError("ValidationException", "input: exactly one of converse or invokeModel must be set.")
    if "invokeModel" in given:
        raise BedrockError("ValidationException", "The mock counts converse input only.")
    converse = given["converse"]
    unknown = set(converse) - _COUNT_CONVERSE_FIELDS if isinstance(converse, dict) else set()
    if unknown:
        raise BedrockError("ValidationException", f"Unknown field: input.converse.{sorted(unknown)[0]}")
    return validate_converse(converse)


def _validate_block(block: Any, where: str, body: JSON) -> None:
    kinds = set(block) if isinstance(block, dict) else set()
    if len(kinds) != 1 or not kinds <= _BLOCK_KINDS:
        raise BedrockError("ValidationException", f"{where}: a content block holds exactly one member.")
    if "text" in block and not block["text"]:
        raise BedrockError(
            "ValidationException",
            f"The text field in the ContentBlock object at {where} is blank. "
            "Add text to the text field, and try again.",
        )
    if "image" in block:
        image = block["image"]
        try:
            data = binascii.a2b_base64(image["source"]["bytes"], strict_mode=True)
        except (binascii.Error, KeyError, TypeError):
            raise BedrockError("ValidationException", f"{where}.image.source.bytes is not valid base64.")
        if not data.startswith(_IMAGE_MAGIC.get(image.get("format"), b"?")):
            raise BedrockError("ValidationException", f"{where}: the image format does not match its bytes.")
    if ("toolUse" in block or "toolResult" in block) and not body.get("toolConfig"):
        raise BedrockError(
            "ValidationException",
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        )


# -- the server -------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str  # raw path as received
    model_id: str
    action: str
    headers: CIMultiDict[str]
    body: bytes
    json: Any = None
    status: int | None = None
    usage: JSON | None = None
    completed: bool = False


@dataclass
class _Fault:
    error_type: str
    message: str | None
    remaining: int
    action: str | None


@dataclass
class _StreamFault:
    after_events: int
    exception_type: str
    message: str
    remaining: int = 1


class BedrockMock(MockUpstream[RecordedRequest]):
    """The mock server; accepts SigV4 with `access_keys` (id -> secret) in `region`, or bearer `api_key`."""

    def __init__(
        self,
        access_keys: dict[str, str] | None = None,
        api_key: str | None = API_KEY,
        region: str = REGION,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.access_keys = dict(access_keys if access_keys is not None else {ACCESS_KEY_ID: SECRET_ACCESS_KEY})
        self.api_key = api_key
        self.region = region
        self.cache_usage: tuple[int, int] | None = None
        self._faults: list[_Fault] = []
        self._stream_faults: list[_StreamFault] = []

    # -- recordings and injection ------------------------------------------------------------------

    def last(self, action: str = "") -> RecordedRequest:
        """The last request whose action (converse, converse-stream, invoke) starts with `action`."""
        found = [r for r in self.requests if r.action.startswith(action)] if action else self.requests
        if not found:
            raise AssertionError(f"the mock received no {action or ''} request; got {self.requests}")
        return found[-1]

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._faults.clear()
            self._stream_faults.clear()
        self.cache_usage = None

    def fail_next(
        self, error_type: str, *, message: str | None = None, count: int = 1, action: str | None = None
    ) -> None:
        """Answer the next `count` requests (to `action`, if given) with a Bedrock error of that type."""
        with self._lock:
            self._faults.append(_Fault(error_type, message, count, action))

    def fail_stream_after(
        self,
        events: int,
        exception_type: str = "throttlingException",
        message: str = "Too many tokens, please wait before trying again.",
    ) -> None:
        """The next ConverseStream sends `events` events, then an exception event, then ends."""
        with self._lock:
            self._stream_faults.append(_StreamFault(events, exception_type, message))

    # -- HTTP --------------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        raw_path = request.raw_path.partition("?")[0]
        parts = raw_path.split("/")
        model_id, action = (unquote(parts[2]), parts[3]) if len(parts) == 4 and parts[1] == "model" else ("", "")
        return RecordedRequest(
            request.method, raw_path, model_id, action, CIMultiDict(request.headers), body, json_or_none(body)
        )

    async def _answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        action, model_id = recorded.action, recorded.model_id
        try:
            if request.method != "POST" or action not in ("converse", "converse-stream", "invoke", "count-tokens"):
                raise BedrockError("ResourceNotFoundException", "Unknown operation.")
            self._authenticate(request, recorded.body)
            fault = self._take(self._faults, lambda f: f.action in (None, action))
            if fault is not None:
                raise BedrockError(fault.error_type, fault.message)
            if not isinstance(recorded.json, dict):
                raise BedrockError(
                    "ValidationException", "Malformed input request, please reformat your input and try again."
                )
            if action == "invoke":
                return self._invoke(recorded, model_id, recorded.json)
            if action == "count-tokens":
                return self._count_tokens(recorded, validate_count_tokens(recorded.json))
            return await self._converse(request, recorded, validate_converse(recorded.json), action)
        except BedrockError as exc:
            return self._error(recorded, exc)

    def _authenticate(self, request: web.Request, body: bytes) -> None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            if self.api_key is None or not hmac.compare_digest(auth[7:].encode(), self.api_key.encode()):
                raise BedrockError(
                    "UnrecognizedClientException", "Invalid API Key format: Must start with pre-defined prefix"
                )
            return
        try:
            verify_sigv4(request, body, self.access_keys, self.region)
        except SignatureRejected as exc:
            raise BedrockError(exc.error_type, exc.message) from None

    def _error(self, recorded: RecordedRequest, exc: BedrockError) -> web.Response:
        status = ERRORS[exc.error_type][0]
        recorded.status, recorded.completed = status, True
        headers = {
            "x-amzn-ErrorType": f"{exc.error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "x-amzn-RequestId": str(uuid.uuid4()),
        }
        return web.Response(
            status=status, body=orjson.dumps({"message": exc.message}), content_type="application/json", headers=headers
        )

    def _json(self, recorded: RecordedRequest, payload: JSON, headers: dict[str, str] | None = None) -> web.Response:
        recorded.status, recorded.completed = 200, True
        return web.Response(
            body=orjson.dumps(payload),
            content_type="application/json",
            headers={"x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})},
        )

    def _usage(self, body: JSON, answer: BedrockAnswer) -> JSON:
        output = len(answer.pieces) + sum(count_tokens(orjson.dumps(u["input"]).decode()) for u in answer.tool_uses)
        usage: JSON = {"inputTokens": input_tokens(body), "outputTokens": output}
        extra = 0
        if self.cache_usage is not None:
            usage["cacheReadInputTokens"], usage["cacheWriteInputTokens"] = self.cache_usage
            extra = sum(self.cache_usage)
        usage["totalTokens"] = usage["inputTokens"] + output + extra
        return usage

    def _count_tokens(self, recorded: RecordedRequest, converse: JSON) -> web.Response:
        if "embed" in recorded.model_id:
            raise BedrockError("ValidationException", "The provided model doesn't support counting tokens.")
        tokens = input_tokens(converse)
        recorded.usage = {"inputTokens": tokens}
        return self._json(recorded, {"inputTokens": tokens})

    async def _converse(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, action: str
    ) -> web.StreamResponse:
        if "embed" in recorded.model_id:
            raise BedrockError(
                "ValidationException",
                "This action doesn't support the model that you provided. "
                "Try again with a supported text or chat model.",
            )
        answer = converse_answer(body)
        usage = recorded.usage = self._usage(body, answer)
        if action == "converse":
            content: list[JSON] = [{"text": answer.text}] if answer.text else []
            content += [{"toolUse": use} for use in answer.tool_uses]
            return self._json(
                recorded,
                {
                    "output": {"message": {"role": "assistant", "content": content}},
                    "stopReason": answer.stop_reason,
                    "usage": usage,
                    "metrics": {"latencyMs": 42},
                },
            )
        return await self._stream(request, recorded, _stream_frames(answer, usage))

    async def _stream(self, request: web.Request, recorded: RecordedRequest, frames: list[bytes]) -> web.StreamResponse:
        fault = self._take(self._stream_faults)
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": str(uuid.uuid4())}
        )
        response.enable_chunked_encoding()
        recorded.status = 200
        await response.prepare(request)
        for index, frame in enumerate(frames):
            if fault is not None and index == fault.after_events:
                await response.write(exception_frame(fault.exception_type, fault.message))
                await response.write_eof()
                return response
            if index and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            cut = len(frame) // 2  # frames straddle writes, as they straddle TCP reads
            await response.write(frame[:cut])
            await response.write(frame[cut:])
        await response.write_eof()
        recorded.completed = True
        return response

    # -- InvokeModel (embeddings) ------------------------------------------------------------------

    def _invoke(self, recorded: RecordedRequest, model_id: str, body: JSON) -> web.Response:
        if "cohere.embed" in model_id:
            return self._cohere(recorded, model_id, body)
        if "titan-embed" in model_id:
            return self._titan(recorded, model_id, body)
        raise BedrockError("ValidationException", "The mock serves InvokeModel for Titan and Cohere embeddings only.")

    def _titan(self, recorded: RecordedRequest, model_id: str, body: JSON) -> web.Response:
        v2 = "titan-embed-text-v2" in model_id
        allowed = {"inputText", "dimensions", "normalize", "embeddingTypes"} if v2 else {"inputText"}
        extra = sorted(set(body) - allowed)
        if extra:
            raise BedrockError(
                "ValidationException",
                f"Malformed input request: #: extraneous key [{extra[0]}] is "
                "not permitted, please reformat your input and try again.",
            )
        text = body.get("inputText")
        if not isinstance(text, str) or not text:
            raise BedrockError(
                "ValidationException",
                "Malformed input request: #: required key [inputText] not "
                "found, please reformat your input and try again.",
            )
        dims = body.get("dimensions", 1024) if v2 else 1536
        if dims not in (256, 512, 1024, 1536):
            raise BedrockError(
                "ValidationException",
                "Malformed input request: #/dimensions: 7 is not a valid enum "
                "value, please reformat your input and try again.",
            )
        vector = embedding_vector(text, dims)
        tokens = count_tokens(text)
        recorded.usage = {"inputTextTokenCount": tokens}
        payload: JSON = {"embedding": vector, "inputTextTokenCount": tokens}
        if v2:
            payload["embeddingsByType"] = {"float": vector}
        return self._json(recorded, payload, {"X-Amzn-Bedrock-Input-Token-Count": str(tokens)})

    def _cohere(self, recorded: RecordedRequest, model_id: str, body: JSON) -> web.Response:
        texts = body.get("texts")
        if not isinstance(texts, list) or len(texts) > 96 or not all(isinstance(t, str) for t in texts):
            raise BedrockError(
                "ValidationException",
                "Malformed input request: #/texts: expected an array of at "
                "most 96 strings, please reformat your input and try again.",
            )
        if body.get("input_type") not in ("search_document", "search_query", "classification", "clustering"):
            raise BedrockError(
                "ValidationException",
                "Malformed input request: #: required key [input_type] not "
                "found, please reformat your input and try again.",
            )
        dims = body.get("output_dimension", 1024)
        vectors = [embedding_vector(f"{body['input_type']}:{t}", dims) for t in texts]
        tokens = sum(count_tokens(t) for t in texts)
        recorded.usage = {"input_tokens": tokens}
        by_type = "output_dimension" in body
        payload = {
            "embeddings": {"float": vectors} if by_type else vectors,
            "id": str(uuid.uuid4()),
            "response_type": "embeddings_by_type" if by_type else "embeddings_floats",
            "texts": texts,
        }
        return self._json(recorded, payload, {"X-Amzn-Bedrock-Input-Token-Count": str(tokens)})


def _stream_frames(answer: BedrockAnswer, usage: JSON) -> list[bytes]:
    """ConverseStream events for an answer: text deltas (no contentBlockStart for text, like Bedrock),
    tool blocks with their input JSON in three fragments, messageStop, metadata."""
    frames = [event_frame("messageStart", {"role": "assistant"})]
    index = 0
    if answer.pieces:
        frames += [
            event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
            for piece in answer.pieces
        ]
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
        index = 1
    for use in answer.tool_uses:
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        frames.append(event_frame("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        arguments = orjson.dumps(use["input"]).decode()
        step = max(1, -(-len(arguments) // 3))
        for cut in range(0, len(arguments), step):
            delta = {"toolUse": {"input": arguments[cut : cut + step]}}
            frames.append(event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    frames.append(event_frame("messageStop", {"stopReason": answer.stop_reason}))
    frames.append(event_frame("metadata", {"usage": usage, "metrics": {"latencyMs": 42}}))
    return frames
