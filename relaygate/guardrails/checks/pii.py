"""The `pii` check: personal data with a recognisable shape (emails, phone numbers, US SSNs, card
numbers, IBANs, IP addresses), found by pattern and confirmed by checksum or grammar.

Names and postal addresses are not claimed: no pattern finds them without a model, and a check
that misses most of them would only give false comfort.

A pattern alone would flag every 16-digit order number, so each candidate is confirmed where the
entity allows: card numbers by the Luhn checksum (and a major network's first digit, 2-6), IBANs by
mod-97, SSNs by the ranges never issued, IPs by their grammar. Where findings overlap the stronger
evidence wins (card, IBAN, SSN, email, IPv6, IPv4, then phone): a card number is not also a phone.
"""

from __future__ import annotations

import ipaddress
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
    WORD_BYTES,
    Detector,
    DetectorCheck,
    DetectorSet,
    byte_in,
    detector,
)

ENTITIES = ("email", "phone", "us_ssn", "credit_card", "iban", "ipv4", "ipv6")
DEFAULT_REDACTION = "[{ENTITY}_REDACTED]"
_FIELDS = ("entities", "action", "redaction_format")
_PRIORITY = ("credit_card", "iban", "us_ssn", "email", "ipv6", "ipv4", "phone")
_DOT = frozenset(b".")


# -- validators: (text bytes, candidate start, end) -> confirmed (start, end) or None ---------------


def _luhn_valid(digits: bytes) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for position, byte in enumerate(reversed(digits)):
        value = byte - 48
        if position & 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """A Luhn-valid 13-19 digit number of a major network; a grouped candidate may be cut back to
    its leading groups ("4111 1111 1111 1111 12/25": the card without the expiry's first part)."""
    groups = data[start:end].replace(b"-", b" ").split(b" ")
    while True:
        digits = b"".join(groups)
        if len(digits) < 13:
            return None
        if len(digits) <= 19 and digits[0] in b"23456" and _luhn_valid(digits):
            return start, start + len(digits) + len(groups) - 1
        if len(groups) == 1:
            return None
        groups.pop()


def _iban_valid(compact: bytes) -> bool:
    """ISO 13616: the country code and check digits moved to the end, letters as 10-35, mod 97 is 1."""
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(chr(byte) if byte < 65 else str(byte - 55) for byte in rearranged)
    return int(number) % 97 == 1


def _iban(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """A mod-97-valid IBAN; written in groups, it may be cut back to its leading groups."""
    groups = data[start:end].split(b" ")
    while True:
        if _iban_valid(b"".join(groups)):
            return start, start + sum(map(len, groups)) + len(groups) - 1
        if len(groups) <= 4:  # country+check digits and at least 11 BBAN characters
            return None
        groups.pop()


def _ssn(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """AAA-GG-SSSS outside the ranges never issued: area 000, 666, 9xx; group 00; serial 0000."""
    area, group, serial = data[start : start + 3], data[start + 4 : start + 6], data[start + 7 : end]
    if area in (b"000", b"666") or area[0] == 57 or group == b"00" or serial == b"0000":
        return None
    return start, end


def _email(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """No empty label in the local part (`a..b@`, `a.@`)."""
    local = data[start : data.index(b"@", start)]
    if b".." in local or local.endswith(b"."):
        return None
    return start, end


def _ipv4(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """Four octets 0-255 without leading zeros, not part of a longer dotted number (a version 1.2.3.4.5)."""
    if byte_in(data, start - 1, _DOT) and byte_in(data, start - 2, DIGIT_BYTES):
        return None
    if byte_in(data, end, _DOT) and byte_in(data, end + 1, DIGIT_BYTES):
        return None
    for octet in data[start:end].split(b"."):
        if (len(octet) > 1 and octet[0] == 48) or int(octet) > 255:
            return None
    return start, end


def _ipv6(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """An address `ipaddress` accepts, with a digit (so C++'s `std::` or a bare `::` is not one) and
    more than `::` and one group (Python's `a[::2]`; `::1` is only the loopback), not glued to a word;
    a single colon the candidate took from its neighbours is left out."""
    if byte_in(data, end, WORD_BYTES) or byte_in(data, end, _DOT):
        return None
    if data[end - 1] == 58 and data[end - 2] != 58:  # "fe80::1:" at the end of a clause
        end -= 1
    if data[start] == 58 and data[start + 1] != 58:  # "ip:2001:db8::1"
        start += 1
    if byte_in(data, start - 1, WORD_BYTES) or byte_in(data, start - 1, _DOT):
        return None
    candidate = data[start:end]
    if not any(byte in DIGIT_BYTES for byte in candidate) or (
        candidate.startswith(b"::") and candidate.count(b":") == 2
    ):
        return None
    try:
        ipaddress.IPv6Address(candidate.decode("ascii"))
    except ValueError:
        return None
    return start, end


def _digit_count(data: bytes, start: int, end: int) -> int:
    return sum(1 for byte in data[start:end] if byte in DIGIT_BYTES)


def _international_phone(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """+<country><number>: 8-15 digits (E.164's longest is 15), not glued to a word or more digits."""
    if byte_in(data, start - 1, WORD_BYTES) or byte_in(data, end, DIGIT_BYTES):
        return None
    return (start, end) if 8 <= _digit_count(data, start, end) <= 15 else None


def _national_phone(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """0<area> <groups>: 9-13 digits, so that a date (01.02.2024, 8 digits) is not a phone number, and
    not shaped like an SSN (000-12-3456 is an SSN never issued, not a phone number)."""
    if end - start == 11 and data[start + 3] == data[start + 6] == 45:  # AAA-GG-SSSS
        return None
    return (start, end) if 9 <= _digit_count(data, start, end) <= 13 else None


# Patterns use `[0-9]` for digits, `\b` at word edges, and only bounded repetition: each candidate
# is at most a few hundred characters (the check's max_match_chars).
_DETECTORS: dict[str, tuple[Detector, ...]] = {
    "credit_card": (
        detector("CREDIT_CARD", r"\b[0-9]{13,19}\b", validate=_card),
        # 4-digit groups (13-19 digits: 4-4-4-1 to 4-4-4-4-3) and American Express / Diners 4-6-5 / 4-6-4
        detector("CREDIT_CARD", r"\b[0-9]{4}(?:[ -][0-9]{4}){2}[ -][0-9]{1,4}(?:[ -][0-9]{1,3})?\b", validate=_card),
        detector("CREDIT_CARD", r"\b[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}\b", validate=_card),
    ),
    # Country code, check digits, then the BBAN (11-30 characters), written whole or in groups of 4.
    "iban": (detector("IBAN", r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", validate=_iban),),
    "us_ssn": (detector("US_SSN", r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", validate=_ssn),),
    "email": (
        detector(
            "EMAIL",
            r"\b[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
            r"[A-Za-z]{2,63}\b",
            validate=_email,
            needles=(b"@",),
            max_chars=254,  # RFC 5321's longest address
        ),
    ),
    "ipv6": (
        detector(
            "IPV6",
            # Groups of 0-4 hex digits and colons; the last may be an IPv4 address (::ffff:192.0.2.1).
            r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?",
            validate=_ipv6,
            needles=(b":",),
        ),
    ),
    "ipv4": (detector("IPV4", r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b", validate=_ipv4, needles=(b".",)),),
    "phone": (
        detector(
            "PHONE",
            r"\+[1-9][0-9]{0,2}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,4})){1,6}",
            validate=_international_phone,
            needles=(b"+",),
        ),
        # North American: (555) 123-4567, 555-123-4567, 1 555 123 4567; the last separator is required,
        # so a bare 10-digit number is not a phone number.
        detector("PHONE", r"(?:\b1[ .-])?(?:\([0-9]{3}\)[ .-]?|\b[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}\b"),
        # National numbers with a trunk 0 and separated groups: 020 7946 0958, 01 23 45 67 89.
        detector("PHONE", r"\b0[0-9]{1,4}(?:[ .-][0-9]{2,4}){2,4}\b", validate=_national_phone),
    ),
}


class PiiCheck(DetectorCheck):
    """A compiled `pii` check: the enabled entities' detectors, strongest evidence first."""

    __slots__ = ("entities",)

    def __init__(self, entities: tuple[str, ...], action: Action, redaction_format: str) -> None:
        detectors = DetectorSet([found for name in _PRIORITY if name in entities for found in _DETECTORS[name]])
        super().__init__(detectors, action, redaction_format, "ENTITY", "found personal data")
        self.entities = entities


def compile_pii(config: Mapping[str, Any]) -> PiiCheck:
    """A `pii` check from its config: `entities` (default all), `action`, `redaction_format`."""
    require_fields(config, _FIELDS)
    entities = read_choice_list(config, "entities", ENTITIES, ENTITIES)
    redaction_format = read_redaction_format(config, "redaction_format", DEFAULT_REDACTION)
    return PiiCheck(entities, read_action(config), redaction_format)
