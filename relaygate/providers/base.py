"""What every provider adapter offers: open an OpenAI-shaped exchange with one upstream model.

An adapter turns an OpenAI-shaped call (operation + parsed body) into the provider's request, and
hands back an `UpstreamResponse` whose bytes are OpenAI-shaped again (JSON body or SSE stream), so
handlers relay every provider the same way. Translation lives in the adapter, HTTP in `upstream/`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from relaygate.http.sse_events import DEFAULT_MAX_EVENT_BYTES

if TYPE_CHECKING:
    import aiohttp

    from relaygate.auth.access import AccessRule
    from relaygate.providers.usage import Price


@dataclass(frozen=True, slots=True)
class Operation:
    """One OpenAI-compatible endpoint: its path suffix, the model type it needs and its body kind."""

    name: str
    path: str  # suffix after the API prefix, e.g. "chat/completions"
    model_type: str  # a docs/SCHEMAS.md model type, e.g. "chat"
    multipart: bool = False
    streams: bool = False  # may answer with SSE when the body says stream: true
    binary_response: bool = False


OPERATIONS: tuple[Operation, ...] = (
    Operation("chat", "chat/completions", "chat", streams=True),
    Operation("completions", "completions", "completion", streams=True),
    Operation("embeddings", "embeddings", "embedding"),
    Operation("images_generations", "images/generations", "image"),
    Operation("images_edits", "images/edits", "image", multipart=True),
    Operation("audio_transcriptions", "audio/transcriptions", "audio_transcription", multipart=True),
    Operation("audio_translations", "audio/translations", "audio_translation", multipart=True),
    Operation("audio_speech", "audio/speech", "text_to_speech", binary_response=True),
    Operation("rerank", "rerank", "rerank"),
    Operation("moderations", "moderations", "moderation"),
)
ALL_OPERATIONS = frozenset(op.name for op in OPERATIONS)
# The Anthropic Messages API inbound: relayed natively to Anthropic, translated for everyone else.
MESSAGES = Operation("messages", "messages", "chat", streams=True)
MESSAGES_COUNT_TOKENS = Operation("messages_count_tokens", "messages/count_tokens", "chat")


@dataclass(frozen=True, slots=True)
class Target:
    """One callable model, compiled from a provider account and one of its integrations."""

    name: str  # "{account}/{integration}", what callers send as `model`
    account: str
    integration: str
    provider: str  # provider kind, e.g. "openai", "azure-openai", "mock"
    model_id: str  # the provider's own model id (or Azure deployment)
    model_types: frozenset[str]
    adapter: Adapter
    base_url: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # auth and custom headers sent upstream
    secrets: tuple[bytes, ...] = ()  # credential values, scrubbed from anything relayed back
    price: Price | None = None
    cost_known: bool = False
    access: AccessRule | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # adapter-specific (api_version, latency_ms)


@dataclass(frozen=True, slots=True)
class AnswerCaps:
    """How much of one upstream answer the gateway holds at once (`max_sse_line_bytes`, `max_answer_bytes`).

    A stream event (or line) longer than `sse_line_bytes`, or a non-streaming answer larger than
    `answer_bytes`, is a 502: a broken upstream must not grow the gateway's memory without bound.
    """

    sse_line_bytes: int = DEFAULT_MAX_EVENT_BYTES
    answer_bytes: int = 64 << 20


DEFAULT_CAPS = AnswerCaps()


@dataclass(slots=True)
class UpstreamCall:
    """One attempt against one target."""

    target: Target
    operation: Operation
    payload: dict[str, Any] | None  # parsed JSON body (model already rewritten), None for multipart
    raw_body: bytes  # multipart bytes (model field rewritten) or b"" for JSON
    content_type: bytes | None
    stream: bool
    timeout: float | None  # seconds for this attempt (to response headers, and body when not streaming)
    request_id: str
    # `x-tfy-strict-openai: false` lets adapters add non-OpenAI fields (e.g. Claude thinking blocks).
    strict_openai: bool = True
    # Caller headers an adapter may forward on a native path (anthropic-version/-beta on Messages).
    inbound_headers: tuple[tuple[str, str], ...] = ()
    caps: AnswerCaps = DEFAULT_CAPS  # the gateway's settings; adapters pass them to `relay.send` and stream parsers


class UpstreamResponse(Protocol):
    """An upstream's answer, OpenAI-shaped."""

    status: int
    content_type: str
    retry_after: str | None  # the upstream's Retry-After header, when it sent one
    # After `read()`: the JSON object the body was serialised from, when the adapter built it (a translated
    # answer), so usage and model are read without parsing the body again; None for relayed bytes.
    parsed: dict[str, Any] | None

    async def read(self) -> bytes:
        """The whole body (non-streaming answers and errors); a 502 past `AnswerCaps.answer_bytes`."""
        ...

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (SSE for streams)."""
        ...

    def close(self) -> None:
        """Release the connection (or abort it when the body was not read)."""
        ...


class BufferedResponse:
    """An answer already in memory (assembled from several upstream calls, or an error found before
    any content was relayed), presented as an `UpstreamResponse`."""

    __slots__ = ("_body", "status", "content_type")
    retry_after: str | None = None
    parsed: dict[str, Any] | None = None

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status = status
        self._body = body
        self.content_type = content_type

    async def read(self) -> bytes:
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        yield self._body

    def close(self) -> None:
        return None


class Adapter(Protocol):
    """A provider's wiring: request building, transport and error classification.

    Optional, read by `config.compile` with getattr: `operations` (operation names served; default
    all), `default_base_url(account) -> str` (default: the registry's preset table) and
    `configure(account, auth) -> (auth headers, options)` (default: a bearer token from auth_data).
    Optional, read by the Messages handler with getattr: `count_tokens(session, call) -> UpstreamResponse`
    (see `TokenCounter`); an adapter without it cannot serve `/messages/count_tokens`.
    Optional, read by the limits gate with getattr: `max_choices` (the most `n` the provider returns;
    default 128, OpenAI's), which bounds a token estimate; 1 means n > 1 is refused before reserving.
    """

    kind: str

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        """Send the call; raise a GatewayError for failures before a response exists."""
        ...


class TokenCounter(Protocol):
    """An adapter that counts a chat request's input tokens with its provider's own API.

    `call.payload` is the OpenAI chat request (model rewritten, no `max_tokens`) the Messages API body
    translates to. A 200 answer's body is Anthropic's `{"input_tokens": N}`; errors are classified as
    the adapter's chat errors (OpenAI-shaped, same statuses), so they route and render the same way.
    """

    async def count_tokens(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse: ...


def token_counter(adapter: Adapter) -> TokenCounter | None:
    """The adapter as a `TokenCounter`, or None when its provider cannot count tokens."""
    return cast("TokenCounter", adapter) if callable(getattr(adapter, "count_tokens", None)) else None
