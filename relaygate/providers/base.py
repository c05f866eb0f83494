"""What every provider adapter offers: open an OpenAI-shaped exchange with one upstream model.

An adapter turns an OpenAI-shaped call (operation + parsed body) into the provider's request, and
hands back an `UpstreamResponse` whose bytes are OpenAI-shaped again (JSON body or SSE stream), so
handlers relay every provider the same way. Translation lives in the adapter, HTTP in `upstream/`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from relaygate.runtime.targets import Target
from relaygate.upstream.caps import DEFAULT_CAPS, AnswerCaps

if TYPE_CHECKING:
    import aiohttp


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

    Every adapter says which operations it serves and the most choices (`n`) its provider returns
    (OpenAI's 128; 1 means n > 1 is refused before any limit reserves it). What only some adapters
    can do is an ability below, checked with `isinstance`; what config needs to know about a provider
    (base URL, auth scheme, price ids) is its row in `providers.registry`.
    """

    kind: str
    operations: frozenset[str]  # operation names served
    max_choices: int

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        """Send the call; raise a GatewayError for failures before a response exists."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """An adapter that counts a chat request's input tokens with its provider's own API.

    `call.payload` is the OpenAI chat request (model rewritten, no `max_tokens`) the Messages API body
    translates to. A 200 answer's body is Anthropic's `{"input_tokens": N}`; errors are classified as
    the adapter's chat errors (OpenAI-shaped, same statuses), so they route and render the same way.
    An adapter without it cannot serve `/messages/count_tokens`.
    """

    async def count_tokens(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse: ...


@runtime_checkable
class ConfiguresAuth(Protocol):
    """An adapter that builds its own upstream auth (x-api-key, SigV4, service-account tokens...).

    `configure(account, auth)` runs once per integration at load and returns the headers every call
    sends and adapter options for the target; a ValueError is a problem reported on `auth_data`.
    Adapters without it get the headers of their registry row's auth scheme.
    """

    def configure(self, account: Any, auth: Any) -> tuple[dict[str, str], dict[str, Any]]: ...


@runtime_checkable
class RegionalBaseUrl(Protocol):
    """An adapter whose public base URL depends on the account (its region), not one fixed URL."""

    def default_base_url(self, account: Any) -> str: ...


@runtime_checkable
class IntegrationOptions(Protocol):
    """An adapter that reads its own integration fields into target options (Azure's api_version)."""

    def integration_options(self, account: Any, integration: Any) -> dict[str, Any]: ...


def token_counter(adapter: Adapter) -> TokenCounter | None:
    """The adapter as a `TokenCounter`, or None when its provider cannot count tokens."""
    return adapter if isinstance(adapter, TokenCounter) else None
