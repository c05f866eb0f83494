"""Relaygate token format, secret hashing and `--expires-in` durations.

A token looks like `rg-<id>-<secret>`:

- `rg-` marks it as ours (secret scanners and humans can spot it);
- `<id>` is 12 lowercase alphanumerics: public, stored in clear, shown by `relaygate tokens list`,
  written to logs, and used as the lookup key so the store never has to search by secret;
- `<secret>` is `secrets.token_urlsafe(32)`: 43 characters, 256 bits of entropy. It may contain `-`,
  so parsing takes the id by position, never by splitting on `-`.

Only `hash_secret(secret)` is stored. It is a plain SHA-256, not bcrypt/scrypt/argon2, on purpose:
slow hashes exist to make guessing low-entropy passwords expensive, but a 256-bit random secret cannot
be guessed at any hash speed, so a slow hash would buy no security while costing ~100 ms of CPU on
every uncached request (and handing attackers a cheap way to burn our CPU).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

TOKEN_PREFIX = "rg-"
ID_LENGTH = 12
SECRET_LENGTH = 43  # len(secrets.token_urlsafe(32))
TOKEN_LENGTH = len(TOKEN_PREFIX) + ID_LENGTH + 1 + SECRET_LENGTH

_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_CHARS = frozenset(_ID_ALPHABET)
_SECRET_CHARS = frozenset(string.ascii_letters + string.digits + "-_")


def new_token_id() -> str:
    """A fresh public token id (62 bits: collisions are retried by the store, not expected)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def new_token() -> tuple[str, str, str]:
    """Mint a token: `(token, token_id, secret_hash)`. The token is shown once and never stored."""
    token_id = new_token_id()
    secret = secrets.token_urlsafe(32)
    return format_token(token_id, secret), token_id, hash_secret(secret)


def format_token(token_id: str, secret: str) -> str:
    """Assemble the token string from its parts."""
    return f"{TOKEN_PREFIX}{token_id}-{secret}"


def parse_token(token: str) -> tuple[str, str] | None:
    """`(token_id, secret)` of a well-formed token, else None.

    Cheap structural checks only (prefix, lengths, alphabet), so garbage is refused before any
    cache or store lookup. Whether the token exists is the authenticator's business.
    """
    if len(token) != TOKEN_LENGTH or not token.startswith(TOKEN_PREFIX):
        return None
    id_end = len(TOKEN_PREFIX) + ID_LENGTH
    if token[id_end] != "-":
        return None
    token_id = token[len(TOKEN_PREFIX) : id_end]
    secret = token[id_end + 1 :]
    if not _ID_CHARS.issuperset(token_id) or not _SECRET_CHARS.issuperset(secret):
        return None
    return token_id, secret


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of the secret: what the store keeps (see the module docstring for why not bcrypt)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash (no timing oracle)."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `45s`, `90m`, `12h`, `30d` or `2w` (for `--expires-in`)."""
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: use a number followed by s, m, h, d or w (e.g. 90m, 12h, 30d, 2w)"
        )
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return seconds
