"""MCP session ids any replica can serve with no shared store: the session itself, encrypted.

The session-era `Mcp-Session-Id` is the session's state (`McpSession`: server, subject, token id,
creation time, negotiated version, and each backend's own session id and version) sealed with
AES-256-GCM, so every replica holding the secret can open it and none needs a session table
(Envoy's design; next-capabilities §5.8 step 8, issue 15 build point 3).

Layout, base64url without padding (visible ASCII, as the transport requires of session ids):

    version (1 byte, 1) | key id (4) | server tag (4) | nonce (12) | AES-GCM ciphertext and tag

The first nine bytes and the server name are the AES-GCM associated data, so a session id only
opens at the endpoint of the server it was made for and its header cannot be altered. The key id
picks the key without trial decryption and says "wrong key" when neither matches; the server tag (a
truncated HMAC of the server name) says "another server" before decrypting. Both only tell the
gateway's own logs why; a client learns only "session not found" (the caller answers 404, and the
client starts over with `initialize`).

The secret: `RELAYGATE_MCP_SESSION_SECRET` (at least 32 random bytes, e.g. `openssl rand -base64
32`), from which HKDF-SHA256 (info `relaygate mcp session v1`) derives the AES key and the HMAC key
of the key id and server tags. Every replica and worker process needs the same secret; when it is
unset, `secret_from_env` makes a random one and says so, which serves one process only: the caller
logs a warning, and must generate it before starting `--workers` processes and hand it to them
(as `server.py` does with the dashboard's `session_secret`).
Rotation: set the new secret, move the old one to `RELAYGATE_MCP_SESSION_SECRET_PREVIOUS`, and keep
it there for one session max age; ids are always sealed with the current key and opened with
either.

Opened ids are remembered (at most `OPENED_MEMO_LIMIT`, keyed by the whole id): a client sends the
same id on every request, and the memo spares it the base64, AES-GCM and JSON work each time. Only
what the sealed bytes alone decide is memoised (they are authenticated, so the same id always opens
to the same session); the subject, token, server and age are checked on every request.

Revocation is not checked here: a session names its token's id, and the caller asks the token
store whether that token is still live (a revoked token's sessions then answer 404 as well).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_ENV = "RELAYGATE_MCP_SESSION_SECRET"
PREVIOUS_SECRET_ENV = "RELAYGATE_MCP_SESSION_SECRET_PREVIOUS"
GENERATED_SECRET_WARNING = (
    f"{SECRET_ENV} is not set: MCP session ids use a random key of this process only, so a session "
    "started on one replica or worker is not found on another; set the same secret on every replica"
)
DEFAULT_MAX_AGE_SECONDS = 86400.0
MAX_SESSION_ID_CHARS = 8192  # refused before any decoding; encode refuses to make a longer one
OPENED_MEMO_LIMIT = 4096  # opened session ids remembered per process (oldest forgotten first)

FORMAT_VERSION = 1
_HKDF_INFO = b"relaygate mcp session v1"
_KEY_ID_BYTES = 4
_SERVER_TAG_BYTES = 4
_HEADER_BYTES = 1 + _KEY_ID_BYTES + _SERVER_TAG_BYTES
_NONCE_BYTES = 12
_GCM_TAG_BYTES = 16
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

RefusalReason = Literal[
    "malformed", "wrong_key", "another_server", "tampered", "another_subject", "another_token", "expired"
]


class SessionRefused(Exception):
    """A session id the gateway will not serve. The client is told only "session not found" (404).

    `reason` is for the gateway's logs: malformed (not a session id of this format), wrong_key (sealed
    with a key that is neither the current nor the previous one), another_server, tampered (the
    authentication tag fails), another_subject, another_token, expired.
    """

    CLIENT_MESSAGE = "session not found"

    def __init__(self, reason: RefusalReason) -> None:
        super().__init__(f"{self.CLIENT_MESSAGE} ({reason})")
        self.reason: RefusalReason = reason


class BackendSession(NamedTuple):
    """One backend's side of a gateway session: its own session id (None if it issued none), its version."""

    session_id: str | None
    protocol_version: str


@dataclass(frozen=True, slots=True)
class McpSession:
    """What a session-era session id carries: who opened it, where, when, and the backends' sessions."""

    server: str
    subject: str
    token_id: str  # the public id of the caller's Relaygate token, never the token
    created: int  # unix seconds
    protocol_version: str  # negotiated with the client
    backends: Mapping[str, BackendSession] = field(default_factory=dict)  # server name -> its session
    era: Literal["session"] = "session"


class _Key:
    """One secret's derived keys: AES-GCM for the session, HMAC for the key id and server tags."""

    def __init__(self, secret: str) -> None:
        material = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_HKDF_INFO).derive(secret.encode("utf-8"))
        self.aead = AESGCM(material[:32])
        self._mac_key = material[32:]
        self.key_id = self._mac(b"key id")[:_KEY_ID_BYTES]

    def server_tag(self, server: str) -> bytes:
        return self._mac(b"server\0" + server.encode("utf-8"))[:_SERVER_TAG_BYTES]

    def _mac(self, message: bytes) -> bytes:
        return hmac.new(self._mac_key, message, hashlib.sha256).digest()


class SessionCodec:
    """Seals sessions into ids with the current key and opens ids sealed with the current or previous key."""

    def __init__(
        self,
        secret: str,
        previous_secret: str | None = None,
        *,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("the MCP session secret is empty")
        self._current = _Key(secret)
        self._keys = {self._current.key_id: self._current}
        if previous_secret:
            previous = _Key(previous_secret)
            self._keys.setdefault(previous.key_id, previous)
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._opened: dict[tuple[str, str], McpSession] = {}  # (id, server) -> its session

    def new_session(
        self,
        *,
        server: str,
        subject: str,
        token_id: str,
        protocol_version: str,
        backends: Mapping[str, BackendSession] | None = None,
    ) -> McpSession:
        """A session created now (by the codec's clock, the one expiry is judged by)."""
        return McpSession(server, subject, token_id, int(self._clock()), protocol_version, dict(backends or {}))

    def encode(self, session: McpSession) -> str:
        """The session id of `session`, sealed with the current key and bound to its server.

        Raises ValueError if the id would be longer than MAX_SESSION_ID_CHARS (too many backends or
        very long backend ids): `decode` would refuse it, so it is never handed out.
        """
        key = self._current
        header = bytes([FORMAT_VERSION]) + key.key_id + key.server_tag(session.server)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, _plaintext(session), header + session.server.encode("utf-8"))
        token = base64.urlsafe_b64encode(header + nonce + sealed).rstrip(b"=").decode("ascii")
        if len(token) > MAX_SESSION_ID_CHARS:
            raise ValueError(f"an MCP session id of {len(token)} characters exceeds {MAX_SESSION_ID_CHARS}")
        return token

    def decode(self, token: str, *, server: str, subject: str, token_id: str) -> McpSession:
        """The session in `token` if it may serve this request, else SessionRefused with the reason.

        It must be a well-formed id sealed with the current or previous key, for `server`, opened by
        the same subject with the same Relaygate token, and younger than max_age_seconds. Whether the
        token is still live is the caller's check.
        """
        session = self._opened.get((token, server))
        if session is None:
            session = self._open(token, server)
            if len(self._opened) >= OPENED_MEMO_LIMIT:
                del self._opened[next(iter(self._opened))]
            self._opened[(token, server)] = session
        if session.subject != subject:
            raise SessionRefused("another_subject")
        if session.token_id != token_id:
            raise SessionRefused("another_token")
        if self._clock() - session.created > self.max_age_seconds:
            raise SessionRefused("expired")
        return session

    def _open(self, token: str, server: str) -> McpSession:
        """The session sealed in `token` for `server` (SessionRefused when it does not open)."""
        raw = _unbase64(token)
        if raw is None or len(raw) < _HEADER_BYTES + _NONCE_BYTES + _GCM_TAG_BYTES or raw[0] != FORMAT_VERSION:
            raise SessionRefused("malformed")
        key = self._keys.get(raw[1 : 1 + _KEY_ID_BYTES])
        if key is None:
            raise SessionRefused("wrong_key")
        if not hmac.compare_digest(raw[1 + _KEY_ID_BYTES : _HEADER_BYTES], key.server_tag(server)):
            raise SessionRefused("another_server")
        header, nonce = raw[:_HEADER_BYTES], raw[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES]
        sealed = raw[_HEADER_BYTES + _NONCE_BYTES :]
        try:
            plaintext = key.aead.decrypt(nonce, sealed, header + server.encode("utf-8"))
        except InvalidTag:
            raise SessionRefused("tampered")
        return _session_from(plaintext, server)


def _plaintext(session: McpSession) -> bytes:
    """The sealed fields, with short keys (the id travels on every request). The server is in the AAD."""
    return orjson.dumps(
        {
            "sub": session.subject,
            "tid": session.token_id,
            "c": session.created,
            "pv": session.protocol_version,
            "e": session.era,
            "b": {name: [backend.session_id, backend.protocol_version] for name, backend in session.backends.items()},
        }
    )


def _session_from(plaintext: bytes, server: str) -> McpSession:
    """The session from authenticated bytes; a shape this version never writes is "malformed"."""
    try:
        data: Any = orjson.loads(plaintext)
        subject, token_id, created = data["sub"], data["tid"], data["c"]
        version, era, backends = data["pv"], data["e"], data["b"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise SessionRefused("malformed")
    strings_ok = all(isinstance(value, str) for value in (subject, token_id, version))
    if not strings_ok or era != "session" or type(created) is not int or not isinstance(backends, dict):
        raise SessionRefused("malformed")
    parsed: dict[str, BackendSession] = {}
    for name, entry in backends.items():
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str)):
            raise SessionRefused("malformed")
        if entry[0] is not None and not isinstance(entry[0], str):
            raise SessionRefused("malformed")
        parsed[name] = BackendSession(entry[0], entry[1])
    return McpSession(server, subject, token_id, created, version, parsed)


def _unbase64(token: str) -> bytes | None:
    """base64url without padding, strictly: the size cap first, then only the url-safe alphabet."""
    if len(token) > MAX_SESSION_ID_CHARS or len(token) % 4 == 1 or not _BASE64URL.fullmatch(token):
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None


def secret_from_env(environ: Mapping[str, str]) -> tuple[str, str | None, bool]:
    """(current secret, previous secret or None, whether the current one was generated here).

    The current secret is `RELAYGATE_MCP_SESSION_SECRET`; when it is unset or blank, a random one is
    made and the third value is True: the caller then logs GENERATED_SECRET_WARNING (and passes the
    secret on to any worker processes it starts). The previous one, accepted during a rotation, is
    `RELAYGATE_MCP_SESSION_SECRET_PREVIOUS`.
    """
    current = environ.get(SECRET_ENV, "").strip()
    previous = environ.get(PREVIOUS_SECRET_ENV, "").strip() or None
    if current:
        return current, previous, False
    return secrets.token_urlsafe(32), previous, True
