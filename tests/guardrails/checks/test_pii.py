"""The `pii` check: each entity found where it is (checksums and grammars confirming candidates),
near misses left alone, precedence where shapes overlap, masking, config errors."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.guardrails.checks.pii import ENTITIES, compile_pii

ALL = compile_pii({"action": "mask"})


def found(text: str, check: Any = ALL) -> list[tuple[str, str]]:
    """(the text of each span, its label)."""
    return [(text[span.start : span.end], span.label) for span in check.evaluate(text).spans]


def luhn_complete(prefix: str) -> str:
    """`prefix` plus the Luhn check digit that makes it valid."""
    total = 0
    for position, char in enumerate(reversed(prefix)):
        value = int(char)
        if position % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return prefix + str((10 - total % 10) % 10)


# -- credit cards ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555 5555 5555 4444",  # Mastercard
        "3782 822463 10005",  # American Express, 4-6-5
        "6011 1111 1111 1117",  # Discover
        "4222222222222",  # 13 digits
        luhn_complete("453201511283036"),  # 16 digits
        luhn_complete("625999000000000000"),  # 19 digits
    ],
)
def test_luhn_valid_card_numbers_are_found(card: str) -> None:
    assert found(f"card: {card}, thanks") == [(card, "CREDIT_CARD")]


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "4111111111111112",
        luhn_complete("111111111111111"),  # Luhn-valid, but no card network starts with 1
        luhn_complete("911111111111111"),
        "411111111111",  # 12 digits
        luhn_complete("4111111111111111111"),  # 20 digits
    ],
)
def test_numbers_that_are_not_cards_are_left_alone(number: str) -> None:
    assert [label for _, label in found(f"ref {number} end")] in ([], ["PHONE"])
    assert "CREDIT_CARD" not in {label for _, label in found(f"ref {number} end")}


def test_a_card_followed_by_more_digit_groups_is_cut_back_to_the_card() -> None:
    assert found("4111 1111 1111 1111 12/25 cvv") == [("4111 1111 1111 1111", "CREDIT_CARD")]


def test_a_card_is_not_also_a_phone_number() -> None:
    assert found("pay with 4111-1111-1111-1111 or 5555 5555 5555 4444") == [
        ("4111-1111-1111-1111", "CREDIT_CARD"),
        ("5555 5555 5555 4444", "CREDIT_CARD"),
    ]


# -- IBANs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iban",
    ["GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "NO9386011117947"],
)
def test_mod97_valid_ibans_are_found(iban: str) -> None:
    assert found(f"IBAN: {iban}.") == [(iban, "IBAN")]


@pytest.mark.parametrize(
    "text", ["GB83 WEST 1234 5698 7654 32", "DE88370400440532013000", "gb82 west 1234 5698 7654 32", "GB82 WEST"]
)
def test_ibans_with_a_wrong_checksum_or_shape_are_left_alone(text: str) -> None:
    assert "IBAN" not in {label for _, label in found(text)}


def test_an_iban_followed_by_another_group_is_cut_back_to_the_iban() -> None:
    assert found("BE68 5390 0754 7034 1234 end") == [("BE68 5390 0754 7034", "IBAN")]


# -- US SSNs --------------------------------------------------------------------------------------


def test_ssns_are_found_outside_the_ranges_never_issued() -> None:
    assert found("ssn 123-45-6789") == [("123-45-6789", "US_SSN")]
    assert found("ssn 899-99-9999") == [("899-99-9999", "US_SSN")]
    for never_issued in ("000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000"):
        assert found(f"ssn {never_issued}") == [], never_issued


def test_nine_bare_digits_are_not_claimed_as_an_ssn() -> None:
    assert found("order 123456789") == []


# -- emails ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email", ["john.doe@example.com", "a+tag@mail.sub.example.co.uk", "UPPER_CASE@EXAMPLE.ORG", "x@y.io"]
)
def test_emails_are_found(email: str) -> None:
    assert found(f"write to <{email}>, please") == [(email, "EMAIL")]


@pytest.mark.parametrize("text", ["a..b@example.com", "name.@example.com", "user@localhost", "@example.com", "a@b.c"])
def test_malformed_emails_are_left_alone(text: str) -> None:
    assert found(text) == []


# -- IP addresses ---------------------------------------------------------------------------------


def test_ipv4_addresses_need_valid_octets() -> None:
    assert found("hosts 192.168.1.1 and 255.255.255.255.") == [
        ("192.168.1.1", "IPV4"),
        ("255.255.255.255", "IPV4"),
    ]
    assert found("bad 256.1.1.1 and 01.2.3.4") == []
    assert found("version 1.2.3.4.5") == []


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("server 2001:db8::1 is up", "2001:db8::1"),
        ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334 ok", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
        ("zone fe80::1%eth0", "fe80::1"),
        ("at 2001:db8::1: it failed", "2001:db8::1"),
        ("[2001:db8::1]:8080", "2001:db8::1"),
    ],
)
def test_ipv6_addresses_are_found(text: str, address: str) -> None:
    assert found(text) == [(address, "IPV6")]


def test_an_ipv4_inside_an_ipv6_address_is_part_of_the_ipv6() -> None:
    assert found("mapped ::ffff:192.0.2.1 here") == [("::ffff:192.0.2.1", "IPV6")]


@pytest.mark.parametrize(
    "text", ["std::vector<int>", "at 10:30:00", "mac 00:1A:2B:3C:4D:5E", "slice a[::2]", "a::b", "loopback ::1", "::"]
)
def test_colon_rich_text_that_is_not_an_ipv6_address_is_left_alone(text: str) -> None:
    assert found(text) == []


# -- phone numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "+1 555 123 4567",
        "+44 20 7946 0958",
        "+14155552671",
        "+33 1 23 45 67 89",
        "+1 (555) 123-4567",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "1-800-555-1234",
        "020 7946 0958",
        "01 23 45 67 89",
    ],
)
def test_phone_numbers_are_found(phone: str) -> None:
    assert found(f"call {phone} today") == [(phone, "PHONE")]


@pytest.mark.parametrize(
    "text", ["id 5551234567", "on 2024-01-15", "on 01.02.2024", "score +1 23", "n 1234567890123", "x+15551234567"]
)
def test_numbers_that_are_not_phone_numbers_are_left_alone(text: str) -> None:
    assert found(text) == []


# -- the check as a whole -------------------------------------------------------------------------


def test_mask_writes_one_redaction_per_entity() -> None:
    text = "Mail john@example.com, card 4111 1111 1111 1111, ssn 123-45-6789, ip 10.0.0.1."
    result = ALL.evaluate(text)
    assert result.reason == "found personal data: EMAIL, CREDIT_CARD, US_SSN, IPV4"
    assert ALL.mask(text, result.spans) == (
        "Mail [EMAIL_REDACTED], card [CREDIT_CARD_REDACTED], ssn [US_SSN_REDACTED], ip [IPV4_REDACTED]."
    )


def test_reasons_name_entities_never_their_values() -> None:
    result = ALL.evaluate("john@example.com 4111111111111111")
    assert "john" not in result.reason and "4111" not in result.reason


def test_a_custom_redaction_format() -> None:
    check = compile_pii({"action": "mask", "redaction_format": "<{ENTITY}>"})
    text = "to john@example.com"
    assert check.mask(text, check.evaluate(text).spans) == "to <EMAIL>"


def test_only_the_configured_entities_are_looked_for() -> None:
    check = compile_pii({"entities": ["email"]})
    assert check.entities == ("email",)
    text = "john@example.com 4111 1111 1111 1111 123-45-6789"
    assert found(text, check) == [("john@example.com", "EMAIL")]
    assert check.action == "block"


def test_offsets_are_characters_in_non_ascii_text() -> None:
    text = "Grüße von 日本: jürgen@example.com und 4111 1111 1111 1111 😀"
    assert found(text) == [("rgen@example.com", "EMAIL"), ("4111 1111 1111 1111", "CREDIT_CARD")]


def test_a_text_without_personal_data_passes() -> None:
    text = "Summarize version 3.11 of the report (Q3 2024, 42 pages) at 10:30 for $1,200.50."
    assert not ALL.evaluate(text).violated
    assert not ALL.evaluate("").violated


def test_max_match_chars_is_the_widest_enabled_entity() -> None:
    assert ALL.max_match_chars == 254  # an email (RFC 5321)
    assert compile_pii({"entities": ["us_ssn"]}).max_match_chars == 11
    assert compile_pii({"entities": ["ipv4"]}).max_match_chars == 15
    assert compile_pii({"entities": ["credit_card", "ipv4"]}).max_match_chars == 23  # 19 digits + 4 separators


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"entities": ["email", "names"]}, "entities[1]"),
        ({"entities": []}, "entities"),
        ({"entities": "email"}, "entities"),
        ({"action": "redact"}, "action"),
        ({"redaction_format": 5}, "redaction_format"),
        ({"entity": ["email"]}, "entity"),
    ],
)
def test_config_errors_name_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as caught:
        compile_pii(config)
    assert str(caught.value).startswith(f"{field}: ")


def test_entities_are_the_documented_seven() -> None:
    assert ENTITIES == ("email", "phone", "us_ssn", "credit_card", "iban", "ipv4", "ipv6")
