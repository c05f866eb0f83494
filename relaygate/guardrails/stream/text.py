"""`StreamText`: a streamed answer's text, per channel, for the checks that need the whole output.

Buffer mode holds the stream, then runs every output check on what it said; those checks must see the
same text a client assembles from the deltas, channel by channel (`events.py` says what a channel is).
Text is kept as a list of pieces per channel and joined on demand, so feeding stays linear in the text.
"""

from __future__ import annotations

from collections.abc import Iterable

from relaygate.guardrails.stream.events import Channel, EventText, Part, StreamKind, TextPiece, read_event

_PART_ORDER: dict[Part, int] = {"content": 0, "reasoning": 1, "tool_args": 2}


def channel_order(channel: Channel, part: Part) -> tuple[int, tuple[int, ...], str]:
    """Where a channel sorts in the joined output: content, then reasoning, then tool arguments; then by index."""
    return (_PART_ORDER[part], tuple(item for item in channel[1:] if isinstance(item, int)), channel[0])


class StreamText:
    """The text of a stream's channels, accumulated event by event."""

    __slots__ = ("kind", "_pieces", "_parts", "_joined", "total_chars")

    def __init__(self, kind: StreamKind) -> None:
        self.kind: StreamKind = kind
        self._pieces: dict[Channel, list[str]] = {}
        self._parts: dict[Channel, Part] = {}
        self._joined: dict[Channel, str] = {}
        self.total_chars = 0

    def feed_event(self, raw: bytes) -> EventText:
        """Read one whole event (see `events.read_event`), keep its text and return what was read."""
        event = read_event(self.kind, raw)
        if event.pieces:
            self.add(event.pieces)
        return event

    def add(self, pieces: Iterable[TextPiece]) -> None:
        """Append already-read pieces to their channels."""
        for piece in pieces:
            if piece.channel not in self._pieces:
                self._pieces[piece.channel] = []
                self._parts[piece.channel] = piece.part
            self._pieces[piece.channel].append(piece.text)
            self._joined.pop(piece.channel, None)
            self.total_chars += len(piece.text)

    @property
    def channels(self) -> tuple[Channel, ...]:
        """Every channel seen, in output order (content, reasoning, tool arguments; by choice/block, then call)."""
        return tuple(sorted(self._pieces, key=lambda channel: channel_order(channel, self._parts[channel])))

    def part_of(self, channel: Channel) -> Part:
        """What the channel's text is (content, reasoning or tool arguments)."""
        return self._parts[channel]

    def text_of(self, channel: Channel) -> str:
        """The channel's whole text so far ("" for a channel never seen)."""
        joined = self._joined.get(channel)
        if joined is None:
            joined = "".join(self._pieces.get(channel, ()))
            if channel in self._pieces:
                self._pieces[channel] = [joined]
                self._joined[channel] = joined
        return joined

    def output_text(self, include_reasoning: bool = True) -> str:
        """All channels' text joined by newlines in `channels` order, for checks on the whole output.

        A newline keeps a pattern from matching across the end of one channel and the start of the next.
        """
        return "\n".join(
            self.text_of(channel)
            for channel in self.channels
            if include_reasoning or self._parts[channel] != "reasoning"
        )
