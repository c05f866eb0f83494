"""`WindowGuard` beyond one text channel: tool calls, choices, Anthropic blocks, ordering, cost and refusals."""

from __future__ import annotations

import json
from itertools import zip_longest

import pytest

from relaygate.guardrails.checks.base import Action, Evaluation, Span
from relaygate.guardrails.stream import Blocked, StreamKind, WindowCheck, WindowGuard
from tests.guardrails.stream.regex_check import RegexCheck, email_check
from tests.guardrails.stream.streams import (
    COMMENT,
    DONE,
    MESSAGE_DELTA,
    MESSAGE_STOP,
    PING,
    block_delta,
    block_start,
    block_stop,
    chat_chunk,
    chat_usage,
    first_event_reaching,
    message_start,
    read_stream,
    text_stream,
)

VALUE = "alice@example.com"
REDACTED = "[EMAIL_REDACTED]"


def _guard(kind: StreamKind, *, mask: bool, **sizes: int) -> WindowGuard:
    return WindowGuard(kind, [WindowCheck("pii/email", email_check(), mask)], **sizes)


def _relay(guard: WindowGuard, events: list[bytes]) -> bytes:
    return b"".join(guard.feed(event) for event in events) + guard.finish()


def _pieces(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _tool_call_stream(first_args: str, second_args: str) -> list[bytes]:
    """One choice calling two tools, their argument deltas interleaved three characters at a time."""
    events = [
        chat_chunk({"role": "assistant", "content": None}),
        chat_chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_a", "type": "function", "function": {"name": "send_mail", "arguments": ""}}
                ]
            }
        ),
        chat_chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_b", "type": "function", "function": {"name": "weather", "arguments": ""}}
                ]
            }
        ),
    ]
    for first, second in zip_longest(_pieces(first_args), _pieces(second_args)):
        for index, arguments in ((0, first), (1, second)):
            if arguments is not None:
                events.append(chat_chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}))
    return [*events, chat_chunk({}, finish="tool_calls"), chat_usage(), DONE]


MAIL_ARGS = json.dumps({"to": VALUE, "subject": "Quarterly report"})
WEATHER_ARGS = json.dumps({"city": "Paris", "unit": "celsius"})


def test_tool_call_arguments_are_masked_per_call() -> None:
    events = _tool_call_stream(MAIL_ARGS, WEATHER_ARGS)
    out = _relay(_guard("openai_chat", mask=True), events)
    texts, released = read_stream("openai_chat", out)
    assert json.loads(texts["tool:0:0"]) == {"to": REDACTED, "subject": "Quarterly report"}
    assert texts["tool:0:1"] == WEATHER_ARGS
    assert len(released) == len(events)


def test_tool_call_block_stops_before_the_delta_holding_the_value() -> None:
    events = _tool_call_stream(MAIL_ARGS, WEATHER_ARGS)
    guard = _guard("openai_chat", mask=False)
    out = _relay(guard, events)
    first_unsafe = first_event_reaching("openai_chat", events, "tool:0:0", MAIL_ARGS.index(VALUE))
    assert out == b"".join(events[:first_unsafe])
    assert guard.blocked == Blocked("pii/email", "found 1 email value(s)")


def test_a_value_spread_over_two_tool_calls_is_not_one_value() -> None:
    events = _tool_call_stream('{"q": "alice@exa"}', '{"q": "mple.com"}')
    guard = _guard("openai_chat", mask=False)
    assert _relay(guard, events) == b"".join(events)
    assert guard.blocked is None


def _two_choices(first: str, second: str) -> list[bytes]:
    events = [
        chat_chunk({"role": "assistant", "content": ""}, index=0),
        chat_chunk({"role": "assistant", "content": ""}, index=1),
    ]
    for a, b in zip_longest(_pieces(first), _pieces(second)):
        events += [chat_chunk({"content": a}, index=0)] if a is not None else []
        events += [chat_chunk({"content": b}, index=1)] if b is not None else []
    return [*events, chat_chunk({}, index=0, finish="stop"), chat_chunk({}, index=1, finish="stop"), chat_usage(), DONE]


def test_choices_are_separate_channels() -> None:
    events = _two_choices("Write to alice@exa", "mple.com for the deck.")
    guard = _guard("openai_chat", mask=False)
    assert _relay(guard, events) == b"".join(events)
    assert guard.blocked is None

    first, second = "Nothing to report here.", f"Mail {VALUE} today."
    texts, _ = read_stream("openai_chat", _relay(_guard("openai_chat", mask=True), _two_choices(first, second)))
    assert texts == {"content:0": first, "content:1": f"Mail {REDACTED} today."}


def test_a_choice_that_finishes_no_longer_holds_back_the_other() -> None:
    """finish_reason makes a choice's text final, so a long second choice streams while the first is done."""
    events = [chat_chunk({"content": "Short answer."}, index=1), chat_chunk({}, index=1, finish="stop")]
    events += [chat_chunk({"content": "Long answer, sentence after sentence. "}, index=0) for _ in range(60)]
    guard = _guard("openai_chat", mask=False)
    streamed = b"".join(guard.feed(event) for event in events)
    assert streamed.startswith(events[0] + events[1]) and len(streamed) > len(b"".join(events)) // 2
    assert streamed + guard.finish() == b"".join(events)


def _anthropic_tool_stream(thinking: list[str], partial_json: list[str]) -> list[bytes]:
    return [
        message_start(),
        block_start(0, {"type": "thinking", "thinking": ""}),
        *[block_delta(0, {"type": "thinking_delta", "thinking": piece}) for piece in thinking],
        block_delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}),
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        block_delta(1, {"type": "text_delta", "text": "Sending the mail now."}),
        block_stop(1),
        PING,
        block_start(2, {"type": "tool_use", "id": "toolu_1", "name": "send_mail", "input": {}}),
        *[block_delta(2, {"type": "input_json_delta", "partial_json": piece}) for piece in partial_json],
        block_stop(2),
        MESSAGE_DELTA,
        MESSAGE_STOP,
    ]


def test_anthropic_thinking_and_tool_input_are_checked_per_block() -> None:
    thinking = f"The user wants a mail sent to {VALUE} about the report."
    events = _anthropic_tool_stream(_pieces(thinking, 4), _pieces(MAIL_ARGS, 2))
    out = _relay(_guard("anthropic_messages", mask=True), events)
    texts, released = read_stream("anthropic_messages", out)
    assert texts["block:0"] == thinking.replace(VALUE, REDACTED)
    assert texts["block:1"] == "Sending the mail now."
    assert json.loads(texts["block:2"]) == {"to": REDACTED, "subject": "Quarterly report"}
    assert len(released) == len(events) and VALUE.encode() not in out


def test_anthropic_tool_input_block_releases_only_the_blocks_before() -> None:
    events = _anthropic_tool_stream(["Plain thinking."], _pieces(MAIL_ARGS, 2))
    guard = _guard("anthropic_messages", mask=False)
    out = _relay(guard, events)
    first_unsafe = first_event_reaching("anthropic_messages", events, "block:2", MAIL_ARGS.index(VALUE))
    assert out == b"".join(events[:first_unsafe])
    assert read_stream("anthropic_messages", out)[0]["block:1"] == "Sending the mail now."
    assert guard.blocked is not None


def test_reasoning_sent_under_both_names_is_rewritten_in_both() -> None:
    text = f"Contact is {VALUE}."
    events = [chat_chunk({"role": "assistant", "content": ""})]
    events += [chat_chunk({"reasoning_content": piece, "reasoning": piece}) for piece in _pieces(text, 5)]
    events += [chat_chunk({"content": "Done."}), chat_chunk({}, finish="stop"), DONE]
    out = _relay(_guard("openai_chat", mask=True), events)
    texts, released = read_stream("openai_chat", out)
    assert texts["reasoning:0"] == f"Contact is {REDACTED}."
    for event in released:
        if b"reasoning" in event:
            delta = json.loads(event[6:])["choices"][0]["delta"]
            assert delta["reasoning"] == delta["reasoning_content"]


def test_text_less_events_keep_their_place_behind_held_text() -> None:
    events = text_stream("openai_chat", ["Hello", " there", ", friend", "!"])
    guard = _guard("openai_chat", mask=False)
    outs = [guard.feed(event) for event in events]
    # The first comment and the role chunk go at once; the text and the second comment behind it wait
    # (short of a window) until finish_reason ends the choice, then leave in their order.
    assert outs[:2] == [COMMENT, events[1]]
    assert outs[2:7] == [b""] * 5
    assert outs[7] == b"".join(events[2:8]) and COMMENT in outs[7]
    assert outs[8:] == events[8:] and guard.finish() == b""


def test_any_byte_split_of_the_input_gives_the_same_output() -> None:
    events = text_stream("anthropic_messages", ["Please write to ", "alice@exa", "mple.com", " soon."])
    data = b"".join(events)
    whole = _relay(_guard("anthropic_messages", mask=True), events)
    guard = _guard("anthropic_messages", mask=True)
    assert b"".join(guard.feed(data[i : i + 1]) for i in range(len(data))) + guard.finish() == whole


def test_a_stream_cut_off_without_its_end_is_checked_at_finish() -> None:
    events = text_stream("openai_completions", ["Mail ", "alice@", "example.com", " now"])[:-2]  # no finish, no [DONE]
    data = b"".join(events)[:-2]  # and the last event without its blank line
    guard = _guard("openai_completions", mask=True)
    out = guard.feed(data) + guard.finish()
    assert out.endswith(b"}") and VALUE.encode() not in out
    texts, _ = read_stream("openai_completions", out + b"\n\n")
    assert texts == {"content:0": f"Mail {REDACTED} now"}


def test_masks_from_one_check_and_a_block_from_another() -> None:
    codes = RegexCheck(r"launch code \d{4}", "CODE", 20)
    checks = [WindowCheck("pii/email", email_check(), True), WindowCheck("words/codes", codes, False)]
    deltas = ["Mail ", "alice@ex", "ample.com", " then read launch", " code 1234", " aloud."]
    events = text_stream("openai_chat", deltas)
    guard = WindowGuard("openai_chat", checks)
    out = _relay(guard, events)
    assert read_stream("openai_chat", out)[0] == {
        "content:0": f"Mail {REDACTED}"
    }  # the delta where the code starts is held
    assert guard.blocked == Blocked("words/codes", "found 1 code value(s)")


class _Rude:
    """A check that finds a violation it cannot locate."""

    action: Action = "block"
    max_match_chars: int | None = 10

    def evaluate(self, text: str) -> Evaluation:
        return Evaluation("rude" in text, "rude language")

    def mask(self, text: str, spans: tuple[Span, ...]) -> str:
        return text


def test_a_violation_without_spans_blocks_even_when_masking() -> None:
    events = text_stream("openai_chat", ["That was ", "ru", "de of you."])
    guard = WindowGuard("openai_chat", [WindowCheck("words/rude", _Rude(), True)])
    out = _relay(guard, events)
    assert b"ru" not in out and guard.blocked == Blocked("words/rude", "rude language")


def test_clean_megabyte_is_released_unchanged_in_linear_work() -> None:
    sentence = "The backlog is under forty tickets and the kitchen stays where it is. "
    text = (sentence * (1_000_000 // len(sentence) + 1))[:1_000_000]
    events = text_stream("openai_chat", _pieces(text, 16))
    check = email_check()
    guard = WindowGuard("openai_chat", [WindowCheck("pii/email", check, False)])
    released: list[bytes] = []
    most_held = 0
    for event in events:
        released.append(guard.feed(event))
        most_held = max(most_held, guard.held_bytes)
    released.append(guard.finish())
    assert b"".join(released) == b"".join(events)
    assert guard.blocked is None and guard.released_text_chars == len(text)
    # Each check moves the final offset by at least `hold` (256) characters and reads at most ~3x that.
    assert check.calls <= len(text) // guard.hold + 2
    assert check.chars_read <= 3 * len(text)
    assert (guard.evaluations, guard.checked_chars) == (check.calls, check.chars_read)
    assert most_held < 16 * 1024


def test_checks_without_a_bounded_match_length_are_refused() -> None:
    unbounded = RegexCheck(r"[a-z]+@[a-z.]+", "EMAIL", None)
    with pytest.raises(ValueError, match="pii/loose"):
        WindowGuard(
            "openai_chat", [WindowCheck("pii/email", email_check(), False), WindowCheck("pii/loose", unbounded, False)]
        )
    with pytest.raises(ValueError):
        WindowGuard("openai_chat", [], window_chars=0)
    with pytest.raises(ValueError):
        WindowGuard("openai_chat", [], overlap_chars=-1)


def test_hold_back_covers_the_longest_match() -> None:
    guard = WindowGuard("openai_chat", [WindowCheck("pii/email", email_check(), False)], overlap_chars=16)
    assert guard.hold == 92
    assert WindowGuard("openai_chat", [WindowCheck("pii/email", email_check(), False)]).hold == 256
