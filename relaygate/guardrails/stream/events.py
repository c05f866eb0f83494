"""Which text each relayed SSE event adds to which channel of the answer, and how to rewrite it.

Output guardrails on a stream see the answer as text per **channel**, never per event: a value split
across deltas is only visible once its pieces are joined, and joining the wrong pieces (two choices, two
tool calls) would invent values that no client ever reads. A channel is a tuple whose second item is its
**group** (the choice index for OpenAI, the content block index for Anthropic):

- `("content", choice)`, `("refusal", choice)`: `choices[i].delta.content` / `.refusal` (chat) and
  `choices[i].text` (completions);
- `("reasoning", choice)`: `delta.reasoning_content` or `delta.reasoning` (when a delta carries both with
  the same text, as some providers do during the rename, they are one piece and a rewrite sets both);
- `("tool_args", choice, tool_call)`: `delta.tool_calls[j].function.arguments`;
  `("function_args", choice)`: the legacy `delta.function_call.arguments`;
- `("block", index)`: an Anthropic content block's `text_delta.text`, `thinking_delta.thinking` or
  `input_json_delta.partial_json` (and a `content_block_start` that already carries text).

Each piece also has a **part** (`content`, `reasoning`, `tool_args`) so whole-output checks can leave
reasoning out, whatever the dialect calls it.

The input is what the dialect stream filters hand on: whole events, `\\n`-framed, each ending in a blank
line. JSON is parsed only for events whose bytes can carry text or end a group (cheap `in` tests first);
a `\\u` escape anywhere also forces a parse, so an escaped key (`"\\u0063ontent"`) cannot slip text past.
An event whose `data` is not JSON carries no text a client would read, and passes as it is.

Rewriting re-serialises only the event that changes (orjson, compact), keeping its framing: other lines
(`event:`, `id:`) stay, the `data:` line is replaced, the trailing blank line is kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

StreamKind = Literal["openai_chat", "openai_completions", "anthropic_messages"]
STREAM_KINDS: tuple[StreamKind, ...] = ("openai_chat", "openai_completions", "anthropic_messages")
Part = Literal["content", "reasoning", "tool_args"]
Channel = tuple[str, int] | tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class TextPiece:
    """The text one event adds to one channel (all of that channel's text in the event)."""

    channel: Channel
    part: Part
    text: str


@dataclass(frozen=True, slots=True)
class EventText:
    """What an event means to the guardrails: its text pieces, the groups it ends, whether it ends the stream."""

    pieces: tuple[TextPiece, ...] = ()
    closes: tuple[int, ...] = ()  # groups whose channels get no more text (finish_reason, content_block_stop)
    terminal: bool = False  # `data: [DONE]` or `message_stop`


NO_TEXT = EventText()
TERMINAL = EventText(terminal=True)


class EventSplitter:
    """Cuts a byte stream into whole events (each with its blank line), keeping a partial tail for later."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def take(self, data: bytes) -> list[bytes]:
        """The whole events `data` completes, each ending in `\\n\\n`; their concatenation is the input consumed."""
        if self._rest:
            data = self._rest + data
        cut = data.rfind(b"\n\n")
        if cut == -1:
            self._rest = data
            return []
        self._rest = data[cut + 2 :]
        return [event + b"\n\n" for event in data[:cut].split(b"\n\n")]

    def take_rest(self) -> bytes:
        """The partial event left at the end of the stream (b"" if none); the splitter is emptied."""
        rest, self._rest = self._rest, b""
        return rest

    @property
    def pending_bytes(self) -> int:
        """Bytes held while their event is incomplete."""
        return len(self._rest)


_FINISHED = re.compile(rb'"finish_reason"\s*:\s*"')
_CHAT_HINTS = (b'"content"', b'"reasoning', b'"arguments"', b'"refusal"', b"\\u")
_COMPLETION_HINTS = (b'"text"', b"\\u")
_MESSAGES_HINTS = (b"content_block_", b"message_stop", b"\\u")


def read_event(kind: StreamKind, raw: bytes) -> EventText:
    """The text pieces, ended groups and end-of-stream mark of one whole event of a `kind` stream."""
    data = _event_data(raw)
    if data is None:
        return NO_TEXT
    if kind == "anthropic_messages":
        if not any(hint in raw for hint in _MESSAGES_HINTS):
            return NO_TEXT
    elif data.strip() == b"[DONE]":
        return TERMINAL
    elif not (any(hint in data for hint in _hints(kind)) or _FINISHED.search(data)):
        return NO_TEXT
    payload = _loads(data)
    if not isinstance(payload, dict):
        return NO_TEXT
    slots, closes, terminal = _walk(kind, payload)
    if not slots and not closes and not terminal:
        return NO_TEXT
    return EventText(_pieces(slots), tuple(closes), terminal)


def rebuild_event(kind: StreamKind, raw: bytes, texts: Mapping[Channel, str]) -> bytes:
    """`raw` with each named channel's text replaced (the first place it sits gets it, others get "").

    Channels the event does not carry are ignored; an event with no JSON `data` is returned unchanged.
    """
    data = _event_data(raw)
    payload = _loads(data) if data is not None else None
    if not isinstance(payload, dict):
        return raw
    slots, _, _ = _walk(kind, payload)
    written: set[Channel] = set()
    for slot in slots:
        if slot.channel not in texts:
            continue
        value = "" if slot.channel in written else texts[slot.channel]
        written.add(slot.channel)
        for key in slot.keys:
            slot.holder[key] = value
    return _with_data(raw, _dumps(payload))


def _hints(kind: StreamKind) -> tuple[bytes, ...]:
    return _CHAT_HINTS if kind == "openai_chat" else _COMPLETION_HINTS


def _event_data(raw: bytes) -> bytes | None:
    """The event's `data` field (its `data:` lines joined by `\\n`, as SSE says); None when it has none."""
    if b"data:" not in raw:
        return None
    lines = [line for line in raw.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    values = [line[6:] if line.startswith(b"data: ") else line[5:] for line in lines]
    return values[0] if len(values) == 1 else b"\n".join(values)


def _with_data(raw: bytes, data: bytes) -> bytes:
    """`raw` with its `data:` lines replaced by one `data: <data>` line where the first one was."""
    body = raw.rstrip(b"\n")
    ending = raw[len(body) :]
    lines: list[bytes] = []
    replaced = False
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            lines.append(line)
        elif not replaced:
            lines.append(b"data: " + data)
            replaced = True
    return b"\n".join(lines) + ending


def _loads(data: bytes) -> Any:
    """The JSON value, or None; stdlib json is the fallback for what orjson refuses (lone surrogates)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except ValueError:
        return None


def _dumps(payload: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:  # a lone surrogate or an integer orjson cannot write: stdlib json escapes it
        return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(slots=True)
class _Slot:
    """Where a channel's text sits in a parsed event: `holder[keys[0]]` (every key holds the same text)."""

    channel: Channel
    part: Part
    holder: dict[str, Any]
    keys: tuple[str, ...]


def _pieces(slots: list[_Slot]) -> tuple[TextPiece, ...]:
    """One piece per channel, in first-seen order, its slots' texts joined."""
    texts: dict[Channel, list[str]] = {}
    parts: dict[Channel, Part] = {}
    for slot in slots:
        texts.setdefault(slot.channel, []).append(slot.holder[slot.keys[0]])
        parts.setdefault(slot.channel, slot.part)
    return tuple(TextPiece(channel, parts[channel], "".join(chunks)) for channel, chunks in texts.items())


def _walk(kind: StreamKind, payload: dict[str, Any]) -> tuple[list[_Slot], list[int], bool]:
    if kind == "anthropic_messages":
        return _walk_messages(payload)
    slots: list[_Slot] = []
    closes: list[int] = []
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return slots, closes, False
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            continue
        group = _index(choice.get("index"), position)
        if kind == "openai_chat":
            delta = choice.get("delta")
            if isinstance(delta, dict):
                _chat_delta_slots(delta, group, slots)
        elif isinstance(choice.get("text"), str):
            slots.append(_Slot(("content", group), "content", choice, ("text",)))
        if isinstance(choice.get("finish_reason"), str):
            closes.append(group)
    return slots, closes, False


def _chat_delta_slots(delta: dict[str, Any], group: int, slots: list[_Slot]) -> None:
    for key in ("content", "refusal"):
        if isinstance(delta.get(key), str):
            slots.append(_Slot((key, group), "content", delta, (key,)))
    reasoning_content, reasoning = delta.get("reasoning_content"), delta.get("reasoning")
    if isinstance(reasoning_content, str) and reasoning_content == reasoning:
        slots.append(_Slot(("reasoning", group), "reasoning", delta, ("reasoning_content", "reasoning")))
    else:
        for key in ("reasoning_content", "reasoning"):
            if isinstance(delta.get(key), str):
                slots.append(_Slot(("reasoning", group), "reasoning", delta, (key,)))
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        for position, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                channel = ("tool_args", group, _index(call.get("index"), position))
                slots.append(_Slot(channel, "tool_args", function, ("arguments",)))
    legacy = delta.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
        slots.append(_Slot(("function_args", group), "tool_args", legacy, ("arguments",)))


_DELTA_FIELDS: dict[str, tuple[str, Part]] = {
    "text_delta": ("text", "content"),
    "thinking_delta": ("thinking", "reasoning"),
    "input_json_delta": ("partial_json", "tool_args"),
}
_BLOCK_FIELDS: dict[str, tuple[str, Part]] = {"text": ("text", "content"), "thinking": ("thinking", "reasoning")}


def _walk_messages(payload: dict[str, Any]) -> tuple[list[_Slot], list[int], bool]:
    kind = payload.get("type")
    if kind == "message_stop":
        return [], [], True
    group = _index(payload.get("index"), 0)
    if kind == "content_block_stop":
        return [], [group], False
    holder = payload.get("delta") if kind == "content_block_delta" else None
    fields = _DELTA_FIELDS
    if kind == "content_block_start":
        holder, fields = payload.get("content_block"), _BLOCK_FIELDS
    if not isinstance(holder, dict):
        return [], [], False
    field = fields.get(str(holder.get("type")))
    if field is None or not isinstance(holder.get(field[0]), str):
        return [], [], False
    return [_Slot(("block", group), field[1], holder, (field[0],))], [], False


def _index(value: object, fallback: int) -> int:
    """An `index` field, or the item's position when the upstream left it out."""
    return value if isinstance(value, int) and not isinstance(value, bool) else fallback
