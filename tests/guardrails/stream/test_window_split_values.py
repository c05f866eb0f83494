"""Golden: an email split across deltas at every character boundary is never released (LiteLLM #41611).

For each stream kind, window configuration and answer length, the value `alice@example.com` is cut into two
deltas at every boundary (alone, and together with the text around it), and into one-character deltas. Block
mode must release exactly the events before the one holding the value's first character; mask mode must
release every event, spelling the answer with the value redacted, untouched events byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from relaygate.guardrails.stream import Blocked, StreamKind, WindowCheck, WindowGuard
from tests.guardrails.stream.regex_check import RegexCheck, email_check
from tests.guardrails.stream.streams import KINDS, read_stream, text_channel, text_stream

VALUE = "alice@example.com"
REDACTED = "[EMAIL_REDACTED]"
BEFORE = "Hello! Please write to "
AFTER = " if you need anything else."
FILLER = (
    "The quarterly report covers revenue, churn and the hiring plan for the next two quarters; each section "
    "lists the owner, the open questions and the date of the next review. Budgets are shown in thousands, "
    "rounded to the nearest unit, and every figure was checked twice against the ledger before it went out. "
    "Travel is frozen until further notice, except for customer visits that a director signed off on. "
    "The support team answered ninety percent of tickets within four hours, and the backlog is now under "
    "forty tickets, the lowest it has been this year. Next month the team moves to the new office on the "
    "third floor; desks are assigned by team, and the kitchen stays where it is. "
)
SHORT = (BEFORE, AFTER)
LONG = (FILLER + BEFORE, AFTER + FILLER + FILLER)

CONFIGS: dict[str, tuple[int, int, Callable[[], RegexCheck]]] = {
    "defaults": (512, 256, email_check),  # hold 256, checks every ~512 chars
    "small-window": (8, 4, email_check),  # hold 92 (the pattern's width), checks every ~184 chars
    "tight": (1, 0, lambda: RegexCheck(r"alice@example\.com", "EMAIL", len(VALUE))),  # hold == the value's length
}


def _chunks(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _splits(before: str, after: str) -> Iterator[list[str]]:
    """Delta lists spelling before + VALUE + after with the value cut at every boundary."""
    for k in range(1, len(VALUE)):
        yield [*_chunks(before), VALUE[:k], VALUE[k:], *_chunks(after)]
    region = before[-3:] + VALUE + after[:3]
    for k in range(1, len(region)):
        yield [*_chunks(before[:-3]), region[:k], region[k:], *_chunks(after[3:])]
    yield [*_chunks(before), *VALUE, *_chunks(after)]
    yield [*before, *VALUE, *after]


def _guard(kind: StreamKind, config: str, mask: bool) -> WindowGuard:
    window, overlap, make_check = CONFIGS[config]
    return WindowGuard(kind, [WindowCheck("pii/email", make_check(), mask)], window_chars=window, overlap_chars=overlap)


def _relay(guard: WindowGuard, events: list[bytes]) -> bytes:
    return b"".join(guard.feed(event) for event in events) + guard.finish()


def _text_ranges(kind: StreamKind, events: list[bytes]) -> list[tuple[int, int]]:
    """Each event's range in the text channel."""
    ranges: list[tuple[int, int]] = []
    position = 0
    for event in events:
        length = len(read_stream(kind, event)[0].get(text_channel(kind), ""))
        ranges.append((position, position + length))
        position += length
    return ranges


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("context", [SHORT, LONG], ids=["short", "long"])
def test_block_releases_exactly_the_events_before_the_value(
    kind: StreamKind, config: str, context: tuple[str, str]
) -> None:
    before, after = context
    start = len(before)
    for deltas in _splits(before, after):
        events = text_stream(kind, deltas)
        guard = _guard(kind, config, mask=False)
        out = _relay(guard, events)
        first_unsafe = next(i for i, (_, end) in enumerate(_text_ranges(kind, events)) if end > start)
        assert out == b"".join(events[:first_unsafe]), deltas
        assert b"@" not in out and b"example" not in out
        assert guard.blocked == Blocked("pii/email", "found 1 email value(s)")
        assert guard.feed(b"data: [DONE]\n\n") == b"" and guard.finish() == b""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("context", [SHORT, LONG], ids=["short", "long"])
def test_mask_redacts_the_value_wherever_it_is_cut(kind: StreamKind, config: str, context: tuple[str, str]) -> None:
    before, after = context
    value_range = (len(before), len(before) + len(VALUE))
    for deltas in _splits(before, after):
        events = text_stream(kind, deltas)
        guard = _guard(kind, config, mask=True)
        out = _relay(guard, events)
        texts, released = read_stream(kind, out)
        assert texts == {text_channel(kind): before + REDACTED + after}, deltas
        assert guard.blocked is None
        assert b"@" not in out and b"example" not in out
        assert len(released) == len(events)
        touched = 0
        for (start, end), original, sent in zip(_text_ranges(kind, events), events, released, strict=True):
            if end <= value_range[0] or start >= value_range[1]:
                assert sent == original  # untouched events keep their bytes
            else:
                touched += 1
                sent_text = read_stream(kind, sent)[0][text_channel(kind)]
                assert (REDACTED in sent_text) == (start <= value_range[0])  # only the first touching one says it
        assert touched >= 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", ["small-window", "tight"])
@pytest.mark.parametrize("mask", [False, True], ids=["block", "mask"])
def test_value_is_caught_wherever_a_check_falls(kind: StreamKind, config: str, mask: bool) -> None:
    """One-character deltas after a prefix of every length up to a check interval: checks start at every offset."""
    interval = _guard(kind, config, mask).check_after_chars
    for shift in range(interval + 2):
        before = FILLER[:shift] + BEFORE
        events = text_stream(kind, [*before, *VALUE, *AFTER])
        guard = _guard(kind, config, mask)
        out = _relay(guard, events)
        assert b"@" not in out and b"example" not in out
        if mask:
            assert read_stream(kind, out)[0] == {text_channel(kind): before + REDACTED + AFTER}
        else:
            assert read_stream(kind, out)[0].get(text_channel(kind), "") == before
            assert guard.blocked is not None and guard.blocked.ref == "pii/email"
