"""Token format, parsing, hashing and duration parsing."""

from __future__ import annotations

import pytest

from relaygate.auth.tokens import (
    ID_LENGTH,
    SECRET_LENGTH,
    TOKEN_PREFIX,
    format_token,
    hash_secret,
    new_token,
    parse_duration,
    parse_token,
    secret_matches,
)


def test_new_token_round_trips_through_parse() -> None:
    token, token_id, secret_hash = new_token()
    assert token.startswith(TOKEN_PREFIX)
    parsed = parse_token(token)
    assert parsed is not None
    parsed_id, secret = parsed
    assert parsed_id == token_id
    assert len(token_id) == ID_LENGTH
    assert len(secret) == SECRET_LENGTH
    assert secret_matches(secret, secret_hash)


def test_new_tokens_are_unique() -> None:
    tokens = {new_token()[0] for _ in range(200)}
    assert len(tokens) == 200


def test_id_is_lowercase_alphanumeric() -> None:
    for _ in range(50):
        _, token_id, _ = new_token()
        assert token_id.isalnum() and token_id == token_id.lower()


def test_secret_containing_dashes_parses() -> None:
    secret = "-" * 10 + "a" * (SECRET_LENGTH - 20) + "-_" * 5
    token = format_token("k3j5x9a0b2cd", secret)
    assert parse_token(token) == ("k3j5x9a0b2cd", secret)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "rg-",
        "sk-k3j5x9a0b2cd-" + "a" * SECRET_LENGTH,  # wrong prefix
        "RG-k3j5x9a0b2cd-" + "a" * SECRET_LENGTH,  # prefix is case-sensitive
        "rg-k3j5x9a0b2c-" + "a" * (SECRET_LENGTH + 1),  # id too short
        "rg-k3j5x9a0b2cdx" + "a" * SECRET_LENGTH,  # no separator after id
        "rg-K3J5X9A0B2CD-" + "a" * SECRET_LENGTH,  # uppercase id
        "rg-k3j5x9a0b2c_-" + "a" * SECRET_LENGTH,  # id charset
        "rg-k3j5x9a0b2cd-" + "a" * (SECRET_LENGTH - 1),  # secret too short
        "rg-k3j5x9a0b2cd-" + "a" * (SECRET_LENGTH + 1),  # secret too long
        "rg-k3j5x9a0b2cd-" + "a" * (SECRET_LENGTH - 1) + "=",  # secret charset
        "rg-k3j5x9a0b2cd-" + "a" * (SECRET_LENGTH - 1) + "é",  # non-ascii
        "rg-k3j5x9a0b2cd-" + "a" * (SECRET_LENGTH - 1) + " ",  # whitespace
    ],
)
def test_malformed_tokens_parse_to_none(token: str) -> None:
    assert parse_token(token) is None


def test_hash_is_hex_sha256_and_never_the_secret() -> None:
    token, _, secret_hash = new_token()
    parsed = parse_token(token)
    assert parsed is not None
    secret = parsed[1]
    assert secret_hash != secret
    assert secret not in secret_hash
    assert len(secret_hash) == 64 and int(secret_hash, 16) >= 0
    assert hash_secret(secret) == secret_hash


def test_wrong_secret_does_not_match() -> None:
    _, _, secret_hash = new_token()
    assert not secret_matches("a" * SECRET_LENGTH, secret_hash)
    assert not secret_matches("", secret_hash)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45.0),
        ("90m", 5400.0),
        ("12h", 43200.0),
        ("30d", 2592000.0),
        ("2w", 1209600.0),
        ("1.5h", 5400.0),
        (" 7D ", 604800.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "30y", "1h30m", "-5m", "0s", "abc", "3 0d"])
def test_parse_duration_rejects_bad_values(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
