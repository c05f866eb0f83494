"""The `secrets` check: each kind found by its issuer's shape, near misses left alone, the more
specific kind winning (an `sk-ant-` key is Anthropic's), private key blocks whole, masking.

Test keys are assembled from pieces: they are shaped like credentials, and none is one.
"""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.guardrails.checks.secrets import DEFAULT_KINDS, KINDS, MAX_KEY_BLOCK_CHARS, compile_secrets

DEFAULT = compile_secrets({"action": "mask"})
EVERY_KIND = compile_secrets({"kinds": list(KINDS), "action": "mask"})

AWS_ACCESS = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
GITHUB = "ghp_" + "a1B2c3D4" * 4 + "e5F6"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" + "_abcdefghij" * 3
OPENAI = "sk-" + "Ab3dEf6hIj" * 4 + "Kl9nOp2r"
OPENAI_PROJECT = "sk-proj-" + "Xy7_Zq1-" * 12
ANTHROPIC = "sk-ant-api03-" + "Qw3_Er5-Ty7" * 8
GOOGLE = "AIza" + "SyD4x9Kq2Lm7Np0Rs5Tu8Vw1Xy3Za6BcdEf"  # 39 characters
SLACK = "xoxb-" + "1234567890-0987654321-" + "AbCdEfGhIjKlMnOp"
JWT = "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM_BODY = "MIIEpAIBAAKCAQEA7bq98Ylb\nQ2cZ0x+Wm/3bbsaLo+4W\nAbCdEfGh=="


def found(text: str, check: Any = DEFAULT) -> list[tuple[str, str]]:
    return [(text[span.start : span.end], span.label) for span in check.evaluate(text).spans]


@pytest.mark.parametrize(
    ("secret", "label"),
    [
        (AWS_ACCESS, "AWS_ACCESS_KEY"),
        ("ASIA" + "Y34FZKBOKMUTVV7A", "AWS_ACCESS_KEY"),
        (GITHUB, "GITHUB_TOKEN"),
        ("gho_" + "Z" * 20 + "9" * 16, "GITHUB_TOKEN"),
        (GITHUB_PAT, "GITHUB_TOKEN"),
        (OPENAI, "OPENAI_KEY"),
        (OPENAI_PROJECT, "OPENAI_KEY"),
        ("sk-svcacct-" + "Ab1" * 10, "OPENAI_KEY"),
        (ANTHROPIC, "ANTHROPIC_KEY"),
        (GOOGLE, "GOOGLE_API_KEY"),
        (SLACK, "SLACK_TOKEN"),
        (JWT, "JWT"),
        (JWT.rsplit(".", 1)[0] + ".", "JWT"),  # alg "none": an empty signature
    ],
)
def test_each_kind_is_found_with_its_label(secret: str, label: str) -> None:
    text = f"use {secret} for this"
    assert found(text) == [(secret, label)]
    assert DEFAULT.mask(text, DEFAULT.evaluate(text).spans) == f"use [{label}_REDACTED] for this"


@pytest.mark.parametrize(
    "text",
    [
        AWS_ACCESS[:-1],  # 19 characters
        "X" + AWS_ACCESS,  # glued to a longer word
        AWS_ACCESS.lower(),
        "ghp_" + "a1B2" * 8,  # 32 characters after the prefix: too short
        "ghx_" + "a1B2c3D4" * 5,
        "sk-learn-is-a-great-library-for-ml",  # no digit: words, not a key
        "the task-management-system-2024 plan",  # "sk-" inside a word
        "sk-" + "Ab1" * 5,  # too short
        GOOGLE[:-1],  # 38 characters
        GOOGLE + "Q",  # 40: some longer identifier
        "xoxb-" + "abcdefghijklmnop",  # no digit
        "xoxz-" + "1234567890-abc",
        "eyJhbGciOiJIUzI1NiJ9",  # one part is not a JWT
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----",
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    assert found(f"see {text} here") == []


def test_an_anthropic_key_is_anthropic_and_never_openai() -> None:
    assert found(ANTHROPIC) == [(ANTHROPIC, "ANTHROPIC_KEY")]
    openai_only = compile_secrets({"kinds": ["openai_key"]})
    assert found(ANTHROPIC, openai_only) == []


def test_an_aws_secret_key_is_found_only_next_to_a_secret_name() -> None:
    for text in (
        f"aws_secret_access_key = {AWS_SECRET}\n",
        f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
        f'{{"SecretAccessKey": "{AWS_SECRET}"}}',
        f"aws_secret_key: '{AWS_SECRET}'",
    ):
        assert found(text) == [(AWS_SECRET, "AWS_SECRET_KEY")], text
    assert found(f"just a token {AWS_SECRET} here") == []
    assert found(f"secret: {'0123456789abcdef0123456789abcdef01234567'}") == []  # a git SHA: one case only
    assert found(f"secret = {AWS_SECRET}x") == []  # 41 characters


def test_a_private_key_block_is_masked_whole_from_begin_to_end() -> None:
    block = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
    text = f"my key:\n{block}\nthanks"
    assert found(text) == [(block, "PRIVATE_KEY_BLOCK")]
    assert DEFAULT.mask(text, DEFAULT.evaluate(text).spans) == "my key:\n[PRIVATE_KEY_BLOCK_REDACTED]\nthanks"
    for label in ("", "EC ", "OPENSSH ", "ENCRYPTED "):
        other = f"-----BEGIN {label}PRIVATE KEY-----\n{PEM_BODY}\n-----END {label}PRIVATE KEY-----"
        assert found(other) == [(other, "PRIVATE_KEY_BLOCK")]


def test_a_private_key_block_cut_off_is_masked_through_its_base64_lines() -> None:
    text = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\nplease help me\nthanks"
    assert DEFAULT.mask(text, DEFAULT.evaluate(text).spans) == "[PRIVATE_KEY_BLOCK_REDACTED]\nplease help me\nthanks"


def test_a_json_escaped_private_key_is_one_block() -> None:
    escaped = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\nBgkqhkiG9w0B\\n-----END PRIVATE KEY-----\\n"
    text = f'{{"private_key": "{escaped}", "client_email": "x"}}'
    assert DEFAULT.mask(text, DEFAULT.evaluate(text).spans) == (
        '{"private_key": "[PRIVATE_KEY_BLOCK_REDACTED]\\n", "client_email": "x"}'
    )


def test_a_private_key_block_is_bounded_to_16_kib() -> None:
    body = ("A" * 64 + "\n") * 400  # 26 KB of base64 lines, END too far to be the same block
    text = f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----"
    (span,) = DEFAULT.evaluate(text).spans
    assert span.start == 0
    assert span.end - span.start <= MAX_KEY_BLOCK_CHARS


def test_generic_high_entropy_is_off_by_default_and_finds_random_tokens() -> None:
    token = "Zx8Qp2Lm9Vt4Rk7Wn3Jb6Hc1Fd5Gs0Yu"
    assert found(f"blob {token} end") == []
    assert found(f"blob {token} end", EVERY_KIND) == [(token, "GENERIC_HIGH_ENTROPY")]
    assert found("blob " + "ab" * 20 + " end", EVERY_KIND) == []  # long, but far from random
    assert found("path /usr/local/share/applications/x", EVERY_KIND) == []


def test_secrets_of_several_kinds_in_one_text() -> None:
    text = f"aws {AWS_ACCESS} gh {GITHUB} ai {ANTHROPIC} jwt {JWT}"
    result = DEFAULT.evaluate(text)
    assert result.reason == "found secrets: AWS_ACCESS_KEY, GITHUB_TOKEN, ANTHROPIC_KEY, JWT"
    assert DEFAULT.mask(text, result.spans) == (
        "aws [AWS_ACCESS_KEY_REDACTED] gh [GITHUB_TOKEN_REDACTED] ai [ANTHROPIC_KEY_REDACTED] jwt [JWT_REDACTED]"
    )
    assert AWS_ACCESS not in result.reason


def test_a_custom_redaction_format_and_the_kinds_chosen() -> None:
    check = compile_secrets({"kinds": ["github_token"], "action": "mask", "redaction_format": "<{KIND}>"})
    text = f"{GITHUB} {AWS_ACCESS}"
    assert check.mask(text, check.evaluate(text).spans) == f"<GITHUB_TOKEN> {AWS_ACCESS}"
    assert check.kinds == ("github_token",)


def test_offsets_are_characters_in_non_ascii_text() -> None:
    text = f"clé 日本 {GITHUB} 😀"
    assert found(text) == [(GITHUB, "GITHUB_TOKEN")]


def test_max_match_chars_is_finite_for_every_kind() -> None:
    assert DEFAULT.max_match_chars == MAX_KEY_BLOCK_CHARS
    assert compile_secrets({"kinds": ["aws_access_key"]}).max_match_chars == 20
    assert compile_secrets({"kinds": ["google_api_key"]}).max_match_chars == 39
    assert compile_secrets({"kinds": ["jwt"]}).max_match_chars == 8192
    for kind in KINDS:
        width = compile_secrets({"kinds": [kind]}).max_match_chars
        assert width is not None and width <= MAX_KEY_BLOCK_CHARS, kind


def test_default_kinds_are_all_but_generic_high_entropy() -> None:
    assert compile_secrets({}).kinds == DEFAULT_KINDS
    assert "generic_high_entropy" not in DEFAULT_KINDS and len(DEFAULT_KINDS) == 9


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"kinds": ["aws_access_key", "password"]}, "kinds[1]"),
        ({"kinds": []}, "kinds"),
        ({"action": "drop"}, "action"),
        ({"redaction_format": ["x"]}, "redaction_format"),
        ({"kind": ["jwt"]}, "kind"),
    ],
)
def test_config_errors_name_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as caught:
        compile_secrets(config)
    assert str(caught.value).startswith(f"{field}: ")


def test_a_pgp_private_key_block_and_a_block_followed_by_a_certificate() -> None:
    pgp = f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{PEM_BODY}\n-----END PGP PRIVATE KEY BLOCK-----"
    assert found(f"{pgp}\n") == [(pgp, "PRIVATE_KEY_BLOCK")]
    cut = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n"
    certificate = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----"
    text = cut + certificate
    assert DEFAULT.mask(text, DEFAULT.evaluate(text).spans) == "[PRIVATE_KEY_BLOCK_REDACTED]\n" + certificate
