"""MCP session ids: sealed, bound to server, subject and token, expiring, rotating, and refused when odd."""

from __future__ import annotations

import base64

import pytest

from relaygate.mcp.session import (
    GENERATED_SECRET_WARNING,
    MAX_SESSION_ID_CHARS,
    BackendSession,
    McpSession,
    SessionCodec,
    SessionRefused,
    secret_from_env,
)

SECRET = "s3cret-for-tests-0123456789abcdefghij"
OLD_SECRET = "the-previous-secret-0123456789abcdef"
NOW = 1_750_000_000.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_session(**changes: object) -> McpSession:
    fields: dict[str, object] = {
        "server": "github",
        "subject": "user:alice",
        "token_id": "tok_123",
        "created": int(NOW),
        "protocol_version": "2025-06-18",
        "backends": {
            "github": BackendSession("upstream-sid-1", "2025-06-18"),
            "jira": BackendSession(None, "2025-03-26"),
        },
    }
    fields.update(changes)
    return McpSession(**fields)  # type: ignore[arg-type]


def decode(codec: SessionCodec, token: str, **changes: str) -> McpSession:
    who = {"server": "github", "subject": "user:alice", "token_id": "tok_123"}
    who.update(changes)
    return codec.decode(token, **who)


def refusal(codec: SessionCodec, token: str, **changes: str) -> str:
    with pytest.raises(SessionRefused) as caught:
        decode(codec, token, **changes)
    return caught.value.reason


def flip(token: str, byte_index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[byte_index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode("ascii")


def test_round_trip_keeps_every_field() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    session = make_session()
    token = codec.encode(session)
    assert decode(codec, token) == session
    assert decode(codec, token).backends["jira"] == BackendSession(None, "2025-03-26")


def test_round_trip_with_no_backends_and_unicode_names() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    session = make_session(subject="user:zoë", backends={})
    assert decode(codec, codec.encode(session), subject="user:zoë") == session


def test_another_replica_with_the_same_secret_opens_it() -> None:
    token = SessionCodec(SECRET, clock=FakeClock()).encode(make_session())
    assert decode(SessionCodec(SECRET, clock=FakeClock()), token).subject == "user:alice"


def test_the_id_is_visible_ascii_without_padding_and_reveals_nothing_readable() -> None:
    token = SessionCodec(SECRET, clock=FakeClock()).encode(make_session())
    assert all(0x21 <= ord(char) <= 0x7E for char in token)
    assert "=" not in token
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert raw[0] == 1
    for plain in (b"alice", b"tok_123", b"upstream-sid-1", b"github", b"2025-06-18"):
        assert plain not in raw


def test_two_encodings_of_one_session_differ_by_their_nonce() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    first, second = codec.encode(make_session()), codec.encode(make_session())
    assert first != second
    assert decode(codec, first) == decode(codec, second)


def test_new_session_is_stamped_by_the_codec_clock() -> None:
    clock = FakeClock(NOW + 12.7)
    codec = SessionCodec(SECRET, clock=clock)
    session = codec.new_session(
        server="github",
        subject="user:alice",
        token_id="tok_123",
        protocol_version="2025-11-25",
        backends={"github": BackendSession("sid", "2025-11-25")},
    )
    assert session.created == int(NOW + 12)
    assert session.era == "session"
    assert decode(codec, codec.encode(session)) == session


@pytest.mark.parametrize("index", [0, 1, 5, 9, 20, 21, 30, -1])
def test_flipping_any_byte_is_refused(index: int) -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    token = codec.encode(make_session())
    with pytest.raises(SessionRefused):
        decode(codec, flip(token, index))


def test_the_reason_of_each_tampered_part() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    token = codec.encode(make_session())
    assert refusal(codec, flip(token, 0)) == "malformed"  # the format version
    assert refusal(codec, flip(token, 2)) == "wrong_key"  # the key id
    assert refusal(codec, flip(token, 6)) == "another_server"  # the server tag
    assert refusal(codec, flip(token, 12)) == "tampered"  # the nonce
    assert refusal(codec, flip(token, 40)) == "tampered"  # the ciphertext
    assert refusal(codec, flip(token, -1)) == "tampered"  # the GCM tag


def test_another_server_is_refused() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    token = codec.encode(make_session())
    assert refusal(codec, token, server="jira") == "another_server"


def test_another_subject_is_refused() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    token = codec.encode(make_session())
    assert refusal(codec, token, subject="user:mallory") == "another_subject"


def test_another_token_of_the_same_subject_is_refused() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    token = codec.encode(make_session())
    assert refusal(codec, token, token_id="tok_456") == "another_token"


def test_expiry_follows_the_clock() -> None:
    clock = FakeClock()
    codec = SessionCodec(SECRET, max_age_seconds=3600, clock=clock)
    token = codec.encode(make_session())
    clock.now = NOW + 3600
    assert decode(codec, token).created == int(NOW)
    clock.now = NOW + 3601
    assert refusal(codec, token) == "expired"


def test_default_max_age_is_a_day() -> None:
    clock = FakeClock()
    codec = SessionCodec(SECRET, clock=clock)
    token = codec.encode(make_session())
    clock.now = NOW + 86400
    decode(codec, token)
    clock.now = NOW + 86401
    assert refusal(codec, token) == "expired"


def test_a_key_that_is_neither_current_nor_previous_is_refused() -> None:
    token = SessionCodec(OLD_SECRET, clock=FakeClock()).encode(make_session())
    assert refusal(SessionCodec(SECRET, clock=FakeClock()), token) == "wrong_key"


def test_rotation_opens_old_ids_and_seals_new_ones_with_the_current_key() -> None:
    old_codec = SessionCodec(OLD_SECRET, clock=FakeClock())
    rotated = SessionCodec(SECRET, OLD_SECRET, clock=FakeClock())
    old_token = old_codec.encode(make_session())
    assert decode(rotated, old_token) == make_session()
    new_token = rotated.encode(make_session())
    assert decode(SessionCodec(SECRET, clock=FakeClock()), new_token) == make_session()  # current key
    assert refusal(old_codec, new_token) == "wrong_key"  # not the previous key
    after_rotation = SessionCodec(SECRET, clock=FakeClock())  # previous key dropped
    assert refusal(after_rotation, old_token) == "wrong_key"


def test_rotation_still_checks_binding_and_expiry_of_old_ids() -> None:
    clock = FakeClock()
    old_token = SessionCodec(OLD_SECRET, clock=clock).encode(make_session())
    rotated = SessionCodec(SECRET, OLD_SECRET, max_age_seconds=60, clock=clock)
    assert refusal(rotated, old_token, server="jira") == "another_server"
    assert refusal(rotated, old_token, subject="user:bob") == "another_subject"
    clock.now = NOW + 61
    assert refusal(rotated, old_token) == "expired"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not base64!",
        "abc=",  # padding is not part of the format
        "a",  # a length no base64 has
        "abcd",  # valid base64, far too short
        "é" * 40,
        "+/+/" * 20,  # standard base64, not url-safe
    ],
)
def test_malformed_ids_are_refused(token: str) -> None:
    assert refusal(SessionCodec(SECRET, clock=FakeClock()), token) == "malformed"


def test_an_id_over_the_size_cap_is_refused_before_decoding() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    valid = codec.encode(make_session())
    assert refusal(codec, valid + "A" * (MAX_SESSION_ID_CHARS + 1 - len(valid))) == "malformed"


def test_encode_refuses_to_make_an_id_over_the_cap() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    backends = {f"server-{index}": BackendSession("x" * 200, "2025-06-18") for index in range(40)}
    with pytest.raises(ValueError, match="exceeds"):
        codec.encode(make_session(backends=backends))


def test_the_refusal_tells_the_client_nothing_and_carries_no_secret() -> None:
    codec = SessionCodec(SECRET, clock=FakeClock())
    token = codec.encode(make_session())
    with pytest.raises(SessionRefused) as caught:
        decode(codec, token, subject="user:mallory")
    assert SessionRefused.CLIENT_MESSAGE == "session not found"
    text = str(caught.value)
    assert text == "session not found (another_subject)"
    assert SECRET not in text and token not in text and "tok_123" not in text


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        SessionCodec("")


def test_secret_from_env_reads_current_and_previous() -> None:
    environ = {"RELAYGATE_MCP_SESSION_SECRET": " current ", "RELAYGATE_MCP_SESSION_SECRET_PREVIOUS": "old"}
    assert secret_from_env(environ) == ("current", "old", False)
    assert secret_from_env({"RELAYGATE_MCP_SESSION_SECRET": "current"}) == ("current", None, False)


def test_secret_from_env_generates_a_random_secret_when_unset() -> None:
    first, previous, generated = secret_from_env({"RELAYGATE_MCP_SESSION_SECRET": "  "})
    second, _, _ = secret_from_env({})
    assert generated and previous is None
    assert len(first) >= 32 and first != second
    assert "RELAYGATE_MCP_SESSION_SECRET" in GENERATED_SECRET_WARNING


def test_ids_of_a_generated_secret_only_open_in_that_process() -> None:
    first, _, _ = secret_from_env({})
    second, _, _ = secret_from_env({})
    token = SessionCodec(first, clock=FakeClock()).encode(make_session())
    assert refusal(SessionCodec(second, clock=FakeClock()), token) == "wrong_key"


def test_an_opened_id_is_remembered_but_every_binding_is_still_checked() -> None:
    """The memo spares the decryption of an id seen before, never the checks of who may use it."""
    clock = FakeClock()
    codec = SessionCodec(SECRET, clock=clock, max_age_seconds=60)
    token = codec.encode(make_session())
    first = decode(codec, token)
    assert decode(codec, token) is first  # opened once
    assert refusal(codec, token, subject="user:mallory") == "another_subject"
    assert refusal(codec, token, token_id="tok_other") == "another_token"
    assert refusal(codec, token, server="jira") in ("another_server", "tampered")
    clock.now += 61
    assert refusal(codec, token) == "expired"


def test_the_memo_of_opened_ids_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import relaygate.mcp.session as session_module

    monkeypatch.setattr(session_module, "OPENED_MEMO_LIMIT", 3)
    codec = SessionCodec(SECRET, clock=FakeClock())
    tokens = [codec.encode(make_session()) for _ in range(5)]
    for token in tokens:
        decode(codec, token)
    assert len(codec._opened) == 3
    assert decode(codec, tokens[0]) == decode(codec, tokens[-1])
