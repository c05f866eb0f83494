"""The HTTP rules of MCP's Streamable HTTP transport, as pure functions over method, headers and body.

Two protocol eras share one endpoint (docs/mcp.md; next-capabilities §5.1, §5.2, §5.8 step 7):

- the session era (2025-03-26, 2025-06-18, 2025-11-25): `initialize`, `Mcp-Session-Id`, POST, GET
  and DELETE, `MCP-Protocol-Version` on every request after initialize (absent means 2025-03-26);
- the stateless era (2026-07-28): every request carries its version in
  `params._meta["io.modelcontextprotocol/protocolVersion"]` and mirrors routing fields into
  `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers, which must agree with the body.

Headers are taken as a `Mapping[str, str]` with lower-case names: easy to build in a test, and
`header_map` builds it from the ASGI header list once per request. A header sent several times is
joined with ", " (RFC 9110 section 5.3), so a duplicated `Mcp-Method` can never match a body and a
proxy that reads the other copy cannot be fooled.

Each check returns None when the request may go on, or a `Refusal`: the HTTP status and the JSON-RPC
error the handler answers with (a transport refusal names no request id).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from relaygate.http.types import RawHeaders
from relaygate.mcp.jsonrpc import HEADER_MISMATCH, INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION

SUPPORTED_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")  # the session era, oldest first
STATELESS_VERSION = "2026-07-28"
LATEST_SESSION_VERSION = SUPPORTED_VERSIONS[-1]
ASSUMED_SESSION_VERSION = "2025-03-26"  # what a session-era request without MCP-Protocol-Version speaks

PROTOCOL_VERSION_HEADER = "mcp-protocol-version"
SESSION_ID_HEADER = "mcp-session-id"
METHOD_HEADER = "mcp-method"
NAME_HEADER = "mcp-name"
META_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"

Era = Literal["session", "stateless"]

# Stateless-era methods whose target is mirrored into Mcp-Name, and the params field it comes from.
NAMED_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

_JSON = "application/json"
_SSE = "text/event-stream"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SENTINEL_PREFIX = "=?base64?"
_SENTINEL_SUFFIX = "?="


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer the transport rules require instead of serving the request."""

    status: int
    code: int  # the JSON-RPC error code of the body
    message: str
    data: Mapping[str, object] | None = None
    allow: str | None = None  # the `Allow` header of a 405


def header_map(raw: RawHeaders) -> dict[str, str]:
    """Request headers as lower-case name -> value (latin-1, as HTTP/1.1 carries them); repeats joined."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


# --- Origin -------------------------------------------------------------------------------------


def check_origin(origin: str | None, allowed: Collection[str], *, host: str | None = None) -> bool:
    """Whether a request's `Origin` may use the endpoint (the spec's DNS-rebinding rule; a 403 if not).

    An absent Origin is fine: browsers send one, and non-browser clients (the MCP SDKs, Claude Code,
    curl) do not. A present one must be in `allowed` (compared without case, a trailing slash
    or a default port), or, when `host` (the request's Host header) is given, name the same host and
    port: a page the gateway serves itself. Same-host alone does not stop DNS rebinding (the
    attacker's name is then in both headers); what does is that every MCP request needs the caller's
    bearer token, which a rebinding page cannot attach. `"null"` passes only if listed.
    """
    if origin is None:
        return True
    normal = _normal_origin(origin)
    if normal in {_normal_origin(item) for item in allowed}:
        return True
    return host is not None and normal != "null" and _same_host(normal, host)


def _normal_origin(origin: str) -> str:
    text = origin.strip().lower().rstrip("/")
    for scheme, port in _DEFAULT_PORTS.items():
        suffix = f":{port}"
        if text.startswith(f"{scheme}://") and text.endswith(suffix):
            return text[: -len(suffix)]
    return text


def _same_host(origin: str, host: str) -> bool:
    try:
        parts = urlsplit(origin)
        explicit_port = parts.port
        host_parts = urlsplit(f"//{host.strip().lower()}")
        host_port = host_parts.port
    except ValueError:  # a malformed port in either
        return False
    if parts.scheme not in _DEFAULT_PORTS or parts.path or parts.username is not None or not parts.hostname:
        return False  # an Origin is scheme://host[:port] and nothing else
    if parts.hostname != host_parts.hostname:
        return False
    if host_port is None:  # Host names no port: the connection's default, so the Origin's must be one
        return explicit_port is None
    return host_port == (explicit_port or _DEFAULT_PORTS[parts.scheme])


# --- POST and GET headers -----------------------------------------------------------------------


def check_post_headers(content_type: str | None, accept: str | None) -> Refusal | None:
    """A POST needs an Accept listing both JSON and SSE (406 if not), and a JSON body (415 if not).

    Wildcards count (`*/*`, `application/*`, `text/*`, as RFC 9110 section 12.5.1 and the official
    Python SDK read them), so a generic HTTP client that accepts anything is served; a range with
    `q=0` refuses its type. A missing Accept is refused: the spec says the client MUST send one,
    and every MCP client does. Parameters after `;` in Content-Type (a charset) are ignored.
    """
    if not (_accepts(accept, _JSON) and _accepts(accept, _SSE)):
        message = "Not Acceptable: the client must accept application/json and text/event-stream"
        return Refusal(406, INVALID_REQUEST, message)
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != _JSON:
        return Refusal(415, INVALID_REQUEST, "Unsupported Media Type: Content-Type must be application/json")
    return None


def check_get_headers(accept: str | None) -> Refusal | None:
    """A GET (the session era's server-to-client stream) must accept `text/event-stream` (406 if not)."""
    if not _accepts(accept, _SSE):
        return Refusal(406, INVALID_REQUEST, "Not Acceptable: the client must accept text/event-stream")
    return None


def _accepts(accept: str | None, media_type: str) -> bool:
    if accept is None:
        return False
    kind = media_type.split("/", 1)[0]
    for media_range in accept.split(","):
        name, *params = (part.strip().lower() for part in media_range.split(";"))
        if name in (media_type, f"{kind}/*", "*/*") and not _zero_quality(params):
            return True
    return False


def _zero_quality(params: list[str]) -> bool:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip() == "q":
            try:
                return float(value) == 0
            except ValueError:
                return False
    return False


def check_http_method(method: str, era: Era) -> Refusal | None:
    """POST always; GET and DELETE only in the session era (2026-07-28 removed them: 405)."""
    allowed = ("POST", "GET", "DELETE") if era == "session" else ("POST",)
    if method in allowed:
        return None
    return Refusal(405, INVALID_REQUEST, f"Method Not Allowed: {method}", allow=", ".join(allowed))


# --- Versions and eras --------------------------------------------------------------------------


def negotiate_version(requested: object) -> str:
    """The version `initialize` answers: the requested one if the gateway speaks it, else its latest."""
    return requested if isinstance(requested, str) and requested in SUPPORTED_VERSIONS else LATEST_SESSION_VERSION


def batches_allowed(version: str) -> bool:
    """JSON-RPC batches exist only in 2025-03-26: 2025-06-18 removed them and no later version has them."""
    return version == "2025-03-26"


def meta_version(body: Mapping[str, Any] | None) -> object:
    """`params._meta["io.modelcontextprotocol/protocolVersion"]` of a message, or None when absent."""
    if body is None:
        return None
    params = body.get("params")
    meta = params.get("_meta") if isinstance(params, Mapping) else None
    return meta.get(META_VERSION_KEY) if isinstance(meta, Mapping) else None


def era_of(body: Mapping[str, Any] | None, headers: Mapping[str, str]) -> Era:
    """Which era serves a request: how the client opens decides (the spec's dual-era rule).

    `initialize` is always the session era. Otherwise a request is stateless when its `_meta` names a
    protocol version (whatever it is: an unknown modern version then gets the stateless era's -32022
    listing what is supported, which a modern client retries with) or when MCP-Protocol-Version is
    2026-07-28 (a GET, which has no body, or a POST whose body forgot `_meta`, which the header
    checks then refuse). Everything else, including a body of None, is the session era.
    """
    if body is not None and body.get("method") == "initialize":
        return "session"
    if meta_version(body) is not None:
        return "stateless"
    return "stateless" if headers.get(PROTOCOL_VERSION_HEADER) == STATELESS_VERSION else "session"


def session_version(headers: Mapping[str, str]) -> str:
    """The session-era version a request speaks: its MCP-Protocol-Version, 2025-03-26 when absent."""
    return headers.get(PROTOCOL_VERSION_HEADER, ASSUMED_SESSION_VERSION)


def check_session_version(headers: Mapping[str, str]) -> Refusal | None:
    """Session era: an MCP-Protocol-Version the gateway does not speak is a 400 (absent is fine)."""
    version = headers.get(PROTOCOL_VERSION_HEADER)
    if version is None or version in SUPPORTED_VERSIONS:
        return None
    return Refusal(400, INVALID_REQUEST, f"Bad Request: unsupported MCP-Protocol-Version {version[:40]!r}")


def check_session_id_present(method: str | None, session_id: str | None) -> Refusal | None:
    """Session era: every message after `initialize` names its session (400 if not; unknown ids are 404).

    `initialize` needs none; it mints a new session whatever it carries.
    """
    if method == "initialize" or session_id:
        return None
    return Refusal(400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")


def check_stateless_version(body: Mapping[str, Any]) -> Refusal | None:
    """Stateless era: a `_meta` version other than 2026-07-28 is 400 -32022 with the versions spoken."""
    requested = meta_version(body)
    if requested == STATELESS_VERSION:
        return None
    supported = [STATELESS_VERSION, *reversed(SUPPORTED_VERSIONS)]
    shown = requested[:40] if isinstance(requested, str) else None
    return Refusal(
        400,
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        data={"supported": supported, "requested": shown},
    )


# --- Stateless-era header mirroring -------------------------------------------------------------


def check_method_headers(body: Mapping[str, Any], headers: Mapping[str, str]) -> Refusal | None:
    """Stateless era: the mirrored headers must be present and agree with the body (400 -32020 if not).

    - MCP-Protocol-Version equals `_meta`'s protocol version;
    - Mcp-Method equals `method` (a notification may omit it: the spec defines no header rules for
      notification POSTs, but one that is sent must match);
    - Mcp-Name equals `params.name` for tools/call and prompts/get, and `params.uri` for
      resources/read, after decoding the `=?base64?…?=` sentinel form.

    Values are compared exactly (header values are case-sensitive). `Mcp-Param-*` headers depend on
    the tool's `inputSchema` and are checked where that is known, not here.
    """
    version = headers.get(PROTOCOL_VERSION_HEADER)
    if version is None:
        return _mismatch("MCP-Protocol-Version header is required")
    if version != meta_version(body):
        return _mismatch("MCP-Protocol-Version header does not match params._meta protocolVersion")
    method = body.get("method")
    if not isinstance(method, str):
        return Refusal(400, INVALID_REQUEST, "a request needs a method")
    sent_method = headers.get(METHOD_HEADER)
    if sent_method is None and "id" in body:
        return _mismatch("Mcp-Method header is required")
    if sent_method is not None and sent_method != method:
        return _mismatch("Mcp-Method header does not match the body's method")
    field = NAMED_METHODS.get(method)
    if field is None:
        return None
    return _check_name(body, headers.get(NAME_HEADER), field)


def _check_name(body: Mapping[str, Any], sent: str | None, field: str) -> Refusal | None:
    if sent is None:
        return _mismatch("Mcp-Name header is required")
    name = decode_header_value(sent)
    if name is None:
        return _mismatch("Mcp-Name header is malformed")
    params = body.get("params")
    expected = params.get(field) if isinstance(params, Mapping) else None
    if not isinstance(expected, str) or name != expected:
        return _mismatch(f"Mcp-Name header does not match params.{field}")
    return None


def decode_header_value(value: str) -> str | None:
    """A mirrored header's value: plain visible ASCII as is, or the `=?base64?…?=` form decoded (UTF-8).

    None for a value no conforming client sends: characters outside visible ASCII, space and tab, or
    a sentinel whose content is not base64 of UTF-8.
    """
    if any(not (" " <= char <= "~" or char == "\t") for char in value):
        return None
    if not (value.startswith(_SENTINEL_PREFIX) and value.endswith(_SENTINEL_SUFFIX)):
        return value
    if len(value) < len(_SENTINEL_PREFIX) + len(_SENTINEL_SUFFIX):  # "=?base64?=": the two markers overlap
        return None
    encoded = value[len(_SENTINEL_PREFIX) : -len(_SENTINEL_SUFFIX)]
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _mismatch(message: str) -> Refusal:
    return Refusal(400, HEADER_MISMATCH, f"Header mismatch: {message}")
