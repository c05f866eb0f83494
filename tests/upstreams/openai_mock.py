"""A wire-faithful mock of the OpenAI API (and Azure OpenAI's deployment URLs) for tests.

The server listens on a free 127.0.0.1 port. Start it from async code in the running loop
(`async with OpenAIMock() as mock:`) or from sync code in a background thread with its own loop
(`with OpenAIMock().running() as mock:`). Every request is recorded (`mock.requests`) with its
method, path, query, headers, raw body and parsed JSON or multipart fields, plus the status and usage
the mock answered with.

Answers are deterministic: chat and completions echo the last user message / prompt ("echo: ..."),
usage counts whitespace-separated words, embeddings are 8-dim vectors derived from a hash of the input
(multiples of 1/128, so float and base64 float32 decode to the same numbers), speech is a few KB of
bytes derived from the input. The module-level functions (`chat_reply`, `embedding_vector`,
`speech_audio`, `transcript_for`, ...) compute the same values for assertions.

Behaviour injection (all thread-safe, cleared by `reset()`):
`fail_next(status, count=...)`, `delay_next(seconds, count=...)`, `chunk_delay = seconds`,
`drop_stream_after(n)` (connection closed mid-stream) and `fail_stream_after(n)` (an error event
after n chunks, then the connection ends without `[DONE]`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from tests.upstreams import azure_mock
from tests.upstreams.mock_upstream import Fault, MockUpstream, json_or_none

JSON = dict[str, Any]

# ---------------------------------------------------------------------------------------------------
# Deterministic content, shared with the tests that assert on it.


def count_tokens(text: str) -> int:
    """The mock's tokenizer: whitespace-separated words (at least 1 for non-empty text)."""
    words = len(text.split())
    return words if words else (1 if text else 0)


def text_of_content(content: Any) -> str:
    """Text of a chat message `content`: a string or a list of parts with `text`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return text_of_content(message.get("content"))
    return ""


def chat_reply(messages: list[Any]) -> str:
    """What the mock answers to a chat request."""
    return "echo: " + last_user_text(messages)


def completion_reply(prompt: Any) -> str:
    """What the mock answers to a legacy completion request."""
    if isinstance(prompt, list):
        prompt = prompt[0] if prompt else ""
    return "echo: " + (prompt if isinstance(prompt, str) else str(prompt))


def split_pieces(text: str) -> list[str]:
    """Stream pieces of a reply (one per word, trailing whitespace kept); each counts as a token."""
    pieces = re.findall(r"\s*\S+\s*", text)
    return pieces if pieces else ([text] if text else [])


def chat_prompt_tokens(messages: list[Any]) -> int:
    """OpenAI-like accounting: 3 priming tokens + 4 per message + the words of each message."""
    total = 3
    for message in messages:
        total += 4
        if isinstance(message, dict):
            total += count_tokens(text_of_content(message.get("content")))
    return total


def embedding_input_texts(value: Any) -> list[str]:
    """The embeddings `input` as a list of texts (token arrays are joined as numbers)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [" ".join(str(v) for v in value)]
    if isinstance(value, list):
        return [v if isinstance(v, str) else " ".join(str(t) for t in v) for v in value]
    return [str(value)]


def embedding_vector(text: str, dimensions: int = 8) -> list[float]:
    """Deterministic vector of `dimensions` floats in [-1, 1), exact in float32."""
    digest = b""
    counter = 0
    while len(digest) < dimensions:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    return [(digest[i] - 128) / 128 for i in range(dimensions)]


def embedding_base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def speech_audio(text: str, voice: str = "", fmt: str = "mp3") -> bytes:
    """A few KB of deterministic audio-looking bytes for the speech endpoint."""
    header = b"ID3\x04\x00\x00\x00\x00\x00\x00" if fmt == "mp3" else fmt.encode().ljust(12, b"\x00")
    seed = hashlib.sha256(f"{voice}|{fmt}|{text}".encode()).digest()
    body = bytearray()
    block = 0
    while len(body) < 4096:
        body += b"\xff\xfb\x90\x64" + hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
        block += 1
    return header + bytes(body)


SPEECH_CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


def transcript_for(data: bytes, task: str = "transcribe") -> str:
    """Text the mock 'hears' in an uploaded audio file."""
    return f"{task} of {len(data)} bytes {hashlib.sha256(data).hexdigest()[:8]}"


def png_image(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small valid PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def rerank_score(query: str, document: str) -> float:
    """Share of the query's words found in the document (0..1), rounded."""
    q = {w.lower() for w in query.split()}
    d = {w.lower().strip(".,;:!?") for w in document.split()}
    return round(len(q & d) / len(q), 6) if q else 0.0


MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
FLAGGED_WORDS = ("kill", "attack", "violence")

LISTED_MODELS = (
    ("gpt-4o", 1715367049, "system"),
    ("gpt-4o-mini", 1721172741, "system"),
    ("gpt-3.5-turbo-instruct", 1692901427, "system"),
    ("text-embedding-3-small", 1705948997, "system"),
    ("gpt-image-1", 1745517030, "system"),
    ("whisper-1", 1677532384, "openai-internal"),
    ("tts-1", 1681940951, "openai-internal"),
    ("omni-moderation-latest", 1731689265, "system"),
)

DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource.", "invalid_request_error", None),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"),
    429: (
        "Rate limit reached for gpt-4o in organization org-mock on requests per min (RPM): Limit 3, "
        "Used 3, Requested 1. Please try again in 20s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


_DEFAULT: Any = object()


def openai_error(status: int, message: str | None = None, *, code: str | None = _DEFAULT) -> JSON:
    """OpenAI's error body for a status (message/code overridable; `code=None` sends null)."""
    default_message, kind, default_code = DEFAULT_ERRORS.get(status, ("Error.", "server_error", None))
    return {
        "error": {
            "message": message if message is not None else default_message,
            "type": kind,
            "param": None,
            "code": default_code if code is _DEFAULT else code,
        }
    }


def mask_key(key: str) -> str:
    """How OpenAI echoes a wrong key: a few characters from each end."""
    return key[:3] + "*" * 5 + key[-4:] if len(key) > 8 else "*" * len(key)


# ---------------------------------------------------------------------------------------------------
# Recording and behaviour injection.


@dataclass
class UploadedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    received_at: float = 0.0  # time.monotonic() when the request arrived
    status: int | None = None  # what the mock answered
    usage: dict[str, int] | None = None  # the usage the mock reported (chat/completions/embeddings)
    completed: bool = False  # the whole answer was written

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def model(self) -> str | None:
        """The `model` the request named (JSON body or multipart field)."""
        if isinstance(self.json, dict) and "model" in self.json:
            return self.json["model"]
        return self.form.get("model")


@dataclass
class _StreamFault:
    after_chunks: int
    remaining: int
    mode: str  # "drop" | "error"
    message: str | None
    status: int = 500  # the error event's type/code are OpenAI's for this status


async def record_request(request: web.Request) -> RecordedRequest:
    """The request as the mocks record it: JSON parsed (None when not JSON), multipart split."""
    body = await request.read()
    recorded = RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=CIMultiDict(request.headers),
        body=body,
        received_at=time.monotonic(),
    )
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("multipart/form-data"):
        _parse_multipart(content_type, body, recorded)
    else:
        recorded.json = json_or_none(body)
    return recorded


class OpenAIMock(MockUpstream[RecordedRequest]):
    """The mock server. Expects `Authorization: Bearer <api_key>` on OpenAI routes when `api_key` is
    set, and `api-key: <azure_api_key>` on Azure deployment routes when `azure_api_key` is set."""

    def __init__(
        self,
        api_key: str | None = None,
        azure_api_key: str | None = None,
        *,
        host: str = "127.0.0.1",
        azure_filter_chunk: bool = True,
    ) -> None:
        super().__init__(host)
        self.api_key = api_key
        self.azure_api_key = azure_api_key
        self.azure_filter_chunk = azure_filter_chunk
        self._faults: list[Fault] = []
        self._stream_faults: list[_StreamFault] = []

    @property
    def base_url(self) -> str:
        """What an OpenAI SDK would use as base_url."""
        return self.url + "/v1"

    def _thread_name(self) -> str:
        return f"openai-mock-{id(self)}"

    # -- behaviour injection -----------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._faults.clear()
            self._stream_faults.clear()

    def fail_next(
        self,
        status: int,
        *,
        message: str | None = None,
        body: JSON | bytes | None = None,
        count: int = 1,
        headers: dict[str, str] | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `count` requests (whose path ends with `path`, if given) with an error."""
        if body is None:
            body = openai_error(status, message)
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        with self._lock:
            self._faults.append(Fault(status, raw, count, dict(headers or {}), path))

    def drop_stream_after(self, chunks: int, *, count: int = 1) -> None:
        """Close the connection after `chunks` stream chunks (no error event, no [DONE])."""
        with self._lock:
            self._stream_faults.append(_StreamFault(chunks, count, "drop", ""))

    def fail_stream_after(
        self,
        chunks: int,
        *,
        message: str | None = None,
        count: int = 1,
        status: int = 500,
    ) -> None:
        """Send an OpenAI error event after `chunks` stream chunks, then end without [DONE]; the event
        carries the type, code and (unless `message` is given) message OpenAI uses for `status`."""
        with self._lock:
            self._stream_faults.append(_StreamFault(chunks, count, "error", message, status))

    # -- HTTP --------------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        return await record_request(request)

    async def _answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        azure = azure_mock.match_deployment_path(request.path)
        fault = self._take(self._faults, lambda f: f.matches(request.path))
        if fault is not None:
            recorded.completed = True
            return fault.response()
        if azure is not None:
            return await self._answer_azure(request, recorded, *azure)
        operation = _OPENAI_ROUTES.get((request.method, request.path))
        if operation is None and request.method == "GET" and request.path.startswith("/v1/models/"):
            operation = "model"
        if operation is None:
            return self._json(
                recorded, openai_error(404, f"Invalid URL ({request.method} {request.path})", code=None), 404
            )
        denied = self._check_openai_auth(request)
        if denied is not None:
            return self._json(recorded, denied, 401)
        return await self._operate(request, recorded, operation, model_override=None, azure=False)

    async def _answer_azure(
        self, request: web.Request, recorded: RecordedRequest, deployment: str, operation: str
    ) -> web.StreamResponse:
        if self.azure_api_key is not None and request.headers.get("api-key") != self.azure_api_key:
            return self._json(recorded, azure_mock.error_body(401, azure_mock.ACCESS_DENIED_MESSAGE), 401)
        if "api-version" not in request.query:
            return self._json(recorded, azure_mock.error_body(404, "Resource not found"), 404)
        return await self._operate(request, recorded, operation, model_override=deployment, azure=True)

    def _check_openai_auth(self, request: web.Request) -> JSON | None:
        if self.api_key is None:
            return None
        auth = request.headers.get("Authorization", "")
        if not auth:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            return openai_error(
                401,
                f"Incorrect API key provided: {mask_key(key.strip())}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return None

    def _json(
        self, recorded: RecordedRequest, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        recorded.status = status
        recorded.completed = True
        all_headers = {"x-request-id": f"req_{next(self._ids):024x}", "openai-processing-ms": "7"}
        all_headers.update(headers or {})
        return web.Response(
            status=status, body=orjson.dumps(payload), content_type="application/json", headers=all_headers
        )

    def _missing_parameter(self, recorded: RecordedRequest, name: str) -> web.Response:
        """OpenAI's 400 for a required body parameter that is absent (with `missing_required_parameter`)."""
        message = f"Missing required parameter: '{name}'."
        return self._json(recorded, openai_error(400, message, code="missing_required_parameter"), 400)

    def _stream_options_without_stream(self, recorded: RecordedRequest) -> web.Response:
        """OpenAI's 400 for `stream_options` sent on a request that does not stream."""
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        return self._json(recorded, openai_error(400, message), 400)

    async def _operate(
        self,
        request: web.Request,
        recorded: RecordedRequest,
        operation: str,
        *,
        model_override: str | None,
        azure: bool,
    ) -> web.StreamResponse:
        multipart = operation in ("images_edits", "audio_transcriptions", "audio_translations")
        if not multipart and operation not in ("models", "model"):
            if not isinstance(recorded.json, dict):
                return self._json(
                    recorded,
                    openai_error(
                        400,
                        "We could not parse the JSON body of your request. (HINT: This likely means you "
                        "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but "
                        "what was sent was not valid JSON.)",
                    ),
                    400,
                )
        body: JSON = recorded.json if isinstance(recorded.json, dict) else {}
        model = model_override or (recorded.form.get("model") if multipart else body.get("model"))
        if operation not in ("models", "model", "moderations") and not model:
            return self._json(recorded, openai_error(400, "you must provide a model parameter"), 400)
        handler = getattr(self, f"_op_{operation}")
        result: web.StreamResponse = await handler(request, recorded, body, model or "", azure)
        return result

    # -- operations --------------------------------------------------------------------------------

    async def _op_chat(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._missing_parameter(recorded, "messages")
        stream = bool(body.get("stream"))
        if body.get("stream_options") is not None and not stream:
            return self._stream_options_without_stream(recorded)
        pieces = split_pieces(chat_reply(messages))
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces, finish = pieces[:limit], "length"
        prompt_tokens = chat_prompt_tokens(messages)
        usage = _usage(prompt_tokens, len(pieces))
        recorded.usage = {k: v for k, v in usage.items() if isinstance(v, int)}
        created = int(time.time())
        cid = f"chatcmpl-{next(self._ids):029d}"
        if not stream:
            choice: JSON = {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces), "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish,
            }
            payload: JSON = {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [choice],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_mock0001",
            }
            if azure:
                choice["content_filter_results"] = azure_mock.choice_filter_results()
                payload["prompt_filter_results"] = azure_mock.prompt_filter_results()
            return self._json(recorded, payload)

        include_usage = _include_usage(body)
        base: JSON = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_mock0001",
        }
        chunks: list[JSON] = []
        if azure and self.azure_filter_chunk:
            chunks.append(azure_mock.leading_filter_chunk())
        deltas: list[tuple[JSON, str | None]] = [({"role": "assistant", "content": "", "refusal": None}, None)]
        deltas += [({"content": piece}, None) for piece in pieces]
        deltas.append(({}, finish))
        for delta, reason in deltas:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
            if azure:
                choice["content_filter_results"] = {} if reason else azure_mock.choice_filter_results()
            chunk = base | {"choices": [choice]}
            if include_usage:
                chunk["usage"] = None
            chunks.append(chunk)
        if include_usage:
            chunks.append(base | {"choices": [], "usage": usage})
        return await self._stream(request, recorded, chunks)

    async def _op_completions(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        prompt = body.get("prompt")
        if prompt is None:
            return self._missing_parameter(recorded, "prompt")
        stream = bool(body.get("stream"))
        if body.get("stream_options") is not None and not stream:
            return self._stream_options_without_stream(recorded)
        prompt_text = prompt if isinstance(prompt, str) else str(prompt[0] if prompt else "")
        pieces = split_pieces(completion_reply(prompt))
        finish = "stop"
        limit = body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces, finish = pieces[:limit], "length"
        usage = _usage(count_tokens(prompt_text), len(pieces), details=False)
        recorded.usage = dict(usage)
        created = int(time.time())
        cid = f"cmpl-{next(self._ids):029d}"
        base: JSON = {"id": cid, "object": "text_completion", "created": created, "model": model}
        if not stream:
            choice = {"text": "".join(pieces), "index": 0, "logprobs": None, "finish_reason": finish}
            return self._json(
                recorded, base | {"choices": [choice], "usage": usage, "system_fingerprint": "fp_mock0001"}
            )
        include_usage = _include_usage(body)
        chunks: list[JSON] = []
        for text, reason in [(p, None) for p in pieces] + [("", finish)]:
            chunk = base | {"choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": reason}]}
            if include_usage:
                chunk["usage"] = None
            chunks.append(chunk)
        if include_usage:
            chunks.append(base | {"choices": [], "usage": usage})
        return await self._stream(request, recorded, chunks)

    async def _op_embeddings(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        if "input" not in body:
            return self._missing_parameter(recorded, "input")
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            return self._json(
                recorded,
                openai_error(400, f"Invalid value for 'encoding_format': '{fmt}'. Expected 'float' or 'base64'."),
                400,
            )
        requested_dims = body.get("dimensions")
        dims = requested_dims if isinstance(requested_dims, int) else 8
        texts = embedding_input_texts(body["input"])
        data = []
        for index, text in enumerate(texts):
            vector = embedding_vector(text, dims)
            encoded: Any = embedding_base64(vector) if fmt == "base64" else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(count_tokens(t) for t in texts)
        recorded.usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return self._json(recorded, {"object": "list", "data": data, "model": model, "usage": recorded.usage})

    def _images_payload(self, body_or_form: dict[str, Any], model: str) -> JSON:
        count = int(body_or_form.get("n") or 1)
        wants_url = body_or_form.get("response_format") == "url" or (
            "response_format" not in body_or_form and model.startswith("dall-e")
        )
        items: list[JSON] = []
        for index in range(count):
            if wants_url:
                items.append({"url": f"{self.url}/files/image-{index}.png", "revised_prompt": None})
            else:
                items.append({"b64_json": base64.b64encode(png_image()).decode()})
        return {"created": int(time.time()), "data": items}

    async def _op_images_generations(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        if not body.get("prompt"):
            return self._json(recorded, openai_error(400, "Missing required parameter: 'prompt'."), 400)
        return self._json(recorded, self._images_payload(body, model))

    async def _op_images_edits(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        if not any(f.field in ("image", "image[]") for f in recorded.files):
            return self._json(recorded, openai_error(400, "Missing required parameter: 'image'."), 400)
        return self._json(recorded, self._images_payload(recorded.form, model))

    async def _audio_text(self, recorded: RecordedRequest, task: str) -> web.StreamResponse:
        upload = next((f for f in recorded.files if f.field == "file"), None)
        if upload is None:
            return self._json(recorded, openai_error(400, "Missing required parameter: 'file'."), 400)
        text = transcript_for(upload.data, task)
        fmt = recorded.form.get("response_format", "json")
        seconds = round(len(upload.data) / 16000, 3)
        if fmt in ("text", "srt", "vtt"):
            recorded.status, recorded.completed = 200, True
            body = text if fmt == "text" else f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n"
            return web.Response(text=body, content_type="text/plain")
        if fmt == "verbose_json":
            return self._json(
                recorded, {"task": task, "language": "english", "duration": seconds, "text": text, "segments": []}
            )
        payload: JSON = {"text": text}
        if task == "transcribe":
            payload["usage"] = {"type": "duration", "seconds": seconds}
        return self._json(recorded, payload)

    async def _op_audio_transcriptions(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        return await self._audio_text(recorded, "transcribe")

    async def _op_audio_translations(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        return await self._audio_text(recorded, "translate")

    async def _op_audio_speech(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        if not body.get("input") or not body.get("voice"):
            return self._json(recorded, openai_error(400, "Missing required parameter: 'input' or 'voice'."), 400)
        fmt = body.get("response_format") or "mp3"
        audio = speech_audio(str(body["input"]), str(body["voice"]), fmt)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": SPEECH_CONTENT_TYPES.get(fmt, "application/octet-stream")}
        )
        response.enable_chunked_encoding()
        recorded.status = 200
        await response.prepare(request)
        for start in range(0, len(audio), 1024):
            await response.write(audio[start : start + 1024])
        await response.write_eof()
        recorded.completed = True
        return response

    async def _op_rerank(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not isinstance(documents, list):
            return self._json(recorded, openai_error(400, "query and documents are required"), 400)
        texts = [d if isinstance(d, str) else str(d.get("text", "")) for d in documents]
        ranked = sorted(range(len(texts)), key=lambda i: (-rerank_score(query, texts[i]), i))
        top_n = body.get("top_n")
        if isinstance(top_n, int) and top_n > 0:
            ranked = ranked[:top_n]
        results = [
            {"index": i, "relevance_score": rerank_score(query, texts[i]), "document": {"text": texts[i]}}
            for i in ranked
        ]
        tokens = count_tokens(query) * len(texts) + sum(count_tokens(t) for t in texts)
        recorded.usage = {"total_tokens": tokens}
        return self._json(
            recorded,
            {
                "id": f"rerank-{next(self._ids):024x}",
                "model": model,
                "results": results,
                "usage": {"total_tokens": tokens},
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            },
        )

    async def _op_moderations(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        results = []
        for item in inputs:
            text = item if isinstance(item, str) else text_of_content([item] if isinstance(item, dict) else item)
            flagged = any(word in text.lower() for word in FLAGGED_WORDS)
            violent = {"violence", "illicit/violent"}
            results.append(
                {
                    "flagged": flagged,
                    "categories": {c: flagged and c in violent for c in MODERATION_CATEGORIES},
                    "category_scores": {
                        c: (0.93 if flagged and c in violent else 0.0001) for c in MODERATION_CATEGORIES
                    },
                    "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
                }
            )
        return self._json(
            recorded,
            {"id": f"modr-{next(self._ids):024x}", "model": model or "omni-moderation-latest", "results": results},
        )

    async def _op_models(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        data = [{"id": m, "object": "model", "created": c, "owned_by": o} for m, c, o in LISTED_MODELS]
        return self._json(recorded, {"object": "list", "data": data})

    async def _op_model(
        self, request: web.Request, recorded: RecordedRequest, body: JSON, model: str, azure: bool
    ) -> web.StreamResponse:
        wanted = request.path[len("/v1/models/") :]
        for m, c, o in LISTED_MODELS:
            if m == wanted:
                return self._json(recorded, {"id": m, "object": "model", "created": c, "owned_by": o})
        return self._json(
            recorded, openai_error(404, f"The model '{wanted}' does not exist", code="model_not_found"), 404
        )

    # -- streaming ---------------------------------------------------------------------------------

    async def _stream(self, request: web.Request, recorded: RecordedRequest, chunks: list[JSON]) -> web.StreamResponse:
        fault = self._take(self._stream_faults)
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": f"req_{next(self._ids):024x}",
            },
        )
        recorded.status = 200
        await response.prepare(request)
        for index, chunk in enumerate(chunks):
            if fault is not None and index == fault.after_chunks:
                if fault.mode == "error":
                    error = openai_error(fault.status, fault.message)
                    await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
                    await response.write_eof()
                    return response
                transport = request.transport
                if transport is not None:
                    transport.abort()
                return response
            if index and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        if self.chunk_delay:
            await asyncio.sleep(self.chunk_delay)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        recorded.completed = True
        return response


_OPENAI_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/completions"): "completions",
    ("POST", "/v1/embeddings"): "embeddings",
    ("POST", "/v1/images/generations"): "images_generations",
    ("POST", "/v1/images/edits"): "images_edits",
    ("POST", "/v1/audio/transcriptions"): "audio_transcriptions",
    ("POST", "/v1/audio/translations"): "audio_translations",
    ("POST", "/v1/audio/speech"): "audio_speech",
    ("POST", "/v1/rerank"): "rerank",
    ("POST", "/rerank"): "rerank",
    ("POST", "/v2/rerank"): "rerank",
    ("POST", "/v1/moderations"): "moderations",
    ("GET", "/v1/models"): "models",
}


def _usage(prompt: int, completion: int, *, details: bool = True) -> JSON:
    usage: JSON = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if details:
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return usage


def _include_usage(body: JSON) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_PARAM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _parse_multipart(content_type: str, body: bytes, recorded: RecordedRequest) -> None:
    """Split a multipart/form-data body into form fields and files, byte for byte."""
    found = _BOUNDARY.search(content_type)
    if found is None:
        return
    delimiter = b"\r\n--" + found.group(1).encode()
    for part in (b"\r\n" + body).split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = dict(_PARAM.findall(headers.get("content-disposition", "")))
        name = params.get("name", "")
        if "filename" in params:
            recorded.files.append(UploadedFile(name, params["filename"], headers.get("content-type"), data))
        else:
            recorded.form[name] = data.decode("utf-8", "replace")


def main() -> None:
    """`python -m tests.upstreams.openai_mock [--api-key K] [--azure-api-key K]`: serve until ^C."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--api-key")
    parser.add_argument("--azure-api-key")
    args = parser.parse_args()

    async def serve() -> None:
        async with OpenAIMock(args.api_key, args.azure_api_key) as mock:
            print(mock.port, flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
