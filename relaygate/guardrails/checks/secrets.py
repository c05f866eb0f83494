"""The `secrets` check: credentials pasted into a prompt or echoed by a model (cloud keys, API keys,
tokens, private keys), found by the shapes their issuers give them.

Each kind has a distinctive prefix (`AKIA`, `ghp_`, `sk-ant-`, `AIza`, `xoxb-`, `-----BEGIN`), which
keeps false positives rare; where the prefix alone is too common (`sk-` starts "sk-learn-..."), the
body must look random (a digit in it). An AWS secret key has no prefix at all, so it is only
recognised next to a `secret` name and an `=` or `:`. Every pattern's repetition is bounded, so the
check's `max_match_chars` is finite (16 KiB: a PEM private key block).

`generic_high_entropy` (off by default) flags any 32+ character token whose characters look random
(Shannon entropy >= 4 bits each): it also catches unknown key formats, and base64 blobs.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from relaygate.guardrails.checks.base import Action
from relaygate.guardrails.checks.config_fields import (
    read_action,
    read_choice_list,
    read_redaction_format,
    require_fields,
)
from relaygate.guardrails.checks.detectors import (
    DIGIT_BYTES,
    Detector,
    DetectorCheck,
    DetectorSet,
    byte_in,
    detector,
)

KINDS = (
    "aws_access_key",
    "aws_secret_key",
    "github_token",
    "openai_key",
    "anthropic_key",
    "google_api_key",
    "slack_token",
    "private_key_block",
    "jwt",
    "generic_high_entropy",
)
DEFAULT_KINDS = KINDS[:-1]  # generic_high_entropy flags base64 data too: opt-in
DEFAULT_REDACTION = "[{KIND}_REDACTED]"
MAX_KEY_BLOCK_CHARS = 16 * 1024  # a 4096-bit RSA key in PEM is ~3.3 KB; 16 KiB leaves room for any
MAX_JWT_CHARS = 8 * 1024  # browsers cap a cookie at 4 KB; a token twice that is not a bearer token
MIN_ENTROPY_BITS = 4.0
_FIELDS = ("kinds", "action", "redaction_format")
# Where kinds' findings overlap, the more specific wins: `sk-ant-...` is an Anthropic key, not OpenAI's.
_PRIORITY = (
    "private_key_block",
    "jwt",
    "anthropic_key",
    "openai_key",
    "github_token",
    "slack_token",
    "google_api_key",
    "aws_access_key",
    "aws_secret_key",
    "generic_high_entropy",
)

_URL_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_BASE64_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# The next PEM line after a BEGIN: its END, or another block's BEGIN (so it had no END). Stopping at
# the next BEGIN keeps a text of many BEGIN lines linear: each looks ahead only to the next.
_NEXT_PEM_LINE = re.compile(rb"-----(BEGIN|END) [A-Z0-9 ]{0,60}-----")
_PRIVATE_KEY_ENDINGS = (b"PRIVATE KEY-----", b"PRIVATE KEY BLOCK-----")
# A block without its END line (cut off): the rest of the BEGIN line and the lines after it that are
# all base64 (a JSON-escaped block is one line, its "\n"s are backslashes and letters).
_KEY_BLOCK_BODY = re.compile(rb"[A-Za-z0-9+/=\\]*(?:\r?\n[A-Za-z0-9+/=\\]+(?=\r?\n|\Z))*")


# -- validators: (text bytes, candidate start, end) -> confirmed (start, end) or None ---------------


def _has_digit(data: bytes, start: int, end: int) -> bool:
    return any(byte in DIGIT_BYTES for byte in data[start:end])


def _openai_key(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """`sk-...` that is not Anthropic's `sk-ant-` and has a digit (so "sk-learn-is-great" is not a key)."""
    if data.startswith(b"ant-", start + 3) or not _has_digit(data, start + 3, end):
        return None
    return start, end


def _digit_in_body(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """A token body with a digit: real Slack tokens carry numeric team and user ids."""
    return (start, end) if _has_digit(data, start + 5, end) else None


def _google_api_key(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """Exactly 39 characters: one followed by more token characters is some longer identifier."""
    return None if byte_in(data, end, _URL_SAFE_BYTES) else (start, end)


def _aws_secret_key(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """Exactly 40 base64 characters with both cases (a 40-hex git SHA named `secret` is not one)."""
    if byte_in(data, end, _BASE64_BYTES):
        return None
    value = data[start:end]
    return (start, end) if value.upper() != value and value.lower() != value else None


def _private_key_block(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """From the BEGIN line through its END line when it comes within 16 KiB, else through the base64
    lines that follow (a block cut off is still key material)."""
    limit = min(len(data), start + MAX_KEY_BLOCK_CHARS)
    following = _NEXT_PEM_LINE.search(data, end, limit)
    if following is not None:
        if following.group(1) == b"END" and following.group().endswith(_PRIVATE_KEY_ENDINGS):
            return start, following.end()
        limit = following.start()
    body = _KEY_BLOCK_BODY.match(data, end, limit)
    return start, (body.end() if body is not None else end)


def _high_entropy(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """A token whose characters look random: Shannon entropy of at least 4 bits per character."""
    token = data[start:end]
    size = len(token)
    entropy = -sum(count / size * math.log2(count / size) for count in Counter(token).values())
    return (start, end) if entropy >= MIN_ENTROPY_BITS else None


_DETECTORS: dict[str, Detector] = {
    "aws_access_key": detector(
        "AWS_ACCESS_KEY",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
        needles=(b"AKIA", b"ASIA", b"ABIA", b"ACCA"),
    ),
    # The value (group 1) after a name containing "secret" (aws_secret_access_key, SecretAccessKey)
    # and `=`, `:` or `=>`, optionally quoted.
    "aws_secret_key": detector(
        "AWS_SECRET_KEY",
        r"""(?i:secret)[A-Za-z0-9_.-]{0,30}["']?[ \t]{0,5}(?:=>|:|=)[ \t]{0,5}["']?([A-Za-z0-9/+]{40})""",
        group=1,
        validate=_aws_secret_key,
    ),
    "github_token": detector(
        "GITHUB_TOKEN",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        needles=(b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_"),
    ),
    "openai_key": detector(
        "OPENAI_KEY",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,512}",
        validate=_openai_key,
        needles=(b"sk-",),
    ),
    "anthropic_key": detector("ANTHROPIC_KEY", r"\bsk-ant-[A-Za-z0-9_-]{20,512}", needles=(b"sk-ant-",)),
    "google_api_key": detector(
        "GOOGLE_API_KEY", r"\bAIza[0-9A-Za-z_-]{35}", validate=_google_api_key, needles=(b"AIza",)
    ),
    "slack_token": detector(
        "SLACK_TOKEN", r"\bxox[abposr]-[A-Za-z0-9-]{10,512}", validate=_digit_in_body, needles=(b"xox",)
    ),
    "private_key_block": detector(
        "PRIVATE_KEY_BLOCK",
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
        validate=_private_key_block,
        needles=(b"PRIVATE KEY",),
        max_chars=MAX_KEY_BLOCK_CHARS,
    ),
    # Header and payload are base64url JSON objects (`{"` encodes as `eyJ`); the signature may be
    # empty (alg "none").
    "jwt": detector(
        "JWT",
        r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
        needles=(b"eyJ",),
        max_chars=MAX_JWT_CHARS,
    ),
    # Group 1 is a whole token: what precedes it (group 0's first character) is not a token character.
    "generic_high_entropy": detector(
        "GENERIC_HIGH_ENTROPY",
        r"(?:^|[^A-Za-z0-9+/_=-])([A-Za-z0-9+/_=-]{32,512})",
        group=1,
        validate=_high_entropy,
    ),
}


class SecretsCheck(DetectorCheck):
    """A compiled `secrets` check: the enabled kinds' detectors, the most specific first."""

    __slots__ = ("kinds",)

    def __init__(self, kinds: tuple[str, ...], action: Action, redaction_format: str) -> None:
        detectors = DetectorSet([_DETECTORS[kind] for kind in _PRIORITY if kind in kinds])
        super().__init__(detectors, action, redaction_format, "KIND", "found secrets")
        self.kinds = kinds


def compile_secrets(config: Mapping[str, Any]) -> SecretsCheck:
    """A `secrets` check from its config: `kinds` (default all but generic_high_entropy), `action`,
    `redaction_format`."""
    require_fields(config, _FIELDS)
    kinds = read_choice_list(config, "kinds", KINDS, DEFAULT_KINDS)
    redaction_format = read_redaction_format(config, "redaction_format", DEFAULT_REDACTION)
    return SecretsCheck(kinds, read_action(config), redaction_format)
