"""Dashboard sessions: a token exchanged once for a signed, expiring, HttpOnly cookie, and its CSRF token.

The cookie holds only the token's public id and an expiry, signed with HMAC-SHA256; each use
re-checks that the token is still live, so revoking the token ends its sessions. The CSRF token is
derived from the cookie with the same key: a page can read it from the login answer and send it in
`x-relaygate-csrf` on writes, which a cross-site form cannot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import orjson

COOKIE_NAME = "relaygate_session"
CSRF_HEADER = b"x-relaygate-csrf"
SESSION_SECONDS = 8 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks session cookies; the key is the gateway's session secret (random if unset)."""

    def __init__(self, secret: str | None, *, lifetime: float = SESSION_SECONDS) -> None:
        material = secret.encode("utf-8") if secret else secrets.token_bytes(32)
        self._key = hashlib.sha256(b"relaygate-session\0" + material).digest()
        self.lifetime = lifetime

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, token_id: str, *, now: float | None = None) -> tuple[str, str, float]:
        """(cookie value, CSRF token, expiry) for a session of the token with public id `token_id`."""
        expires = (time.time() if now is None else now) + self.lifetime
        payload = _b64(orjson.dumps({"tid": token_id, "exp": int(expires), "n": secrets.token_hex(8)}))
        cookie = f"{payload}.{self._sign(payload)}"
        return cookie, self.csrf_for(cookie), expires

    def verify(self, cookie: str, *, now: float | None = None) -> str | None:
        """The token id of a valid, unexpired cookie; None for anything else (never raises)."""
        payload, sep, signature = cookie.partition(".")
        if not sep or len(cookie) > 512:
            return None
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            data = orjson.loads(_unb64(payload))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        token_id, expires = data.get("tid"), data.get("exp")
        if not isinstance(token_id, str) or not isinstance(expires, int):
            return None
        if expires <= (time.time() if now is None else now):
            return None
        return token_id

    def csrf_for(self, cookie: str) -> str:
        """The CSRF token bound to one session cookie."""
        return self._sign("csrf:" + cookie)

    def csrf_matches(self, cookie: str, given: str) -> bool:
        return hmac.compare_digest(self.csrf_for(cookie), given)


def cookie_value(raw_cookie_header: bytes | None) -> str | None:
    """The session cookie's value from a `Cookie` header, if present."""
    if not raw_cookie_header:
        return None
    for part in raw_cookie_header.decode("latin-1").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE_NAME:
            return value
    return None


def set_cookie_header(value: str, max_age: int, *, secure: bool) -> bytes:
    """`Set-Cookie` for the session: HttpOnly, SameSite=Strict, scoped to the whole gateway."""
    attributes = f"{COOKIE_NAME}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    if secure:
        attributes += "; Secure"
    return attributes.encode("latin-1")
