"""`BufferedStream`: a whole streamed answer held until its output checks have run, then replayed.

Buffer mode is the only stream mode safe for every check (JSON schema, classifiers, webhooks), so it is
the default when an output guardrail applies. The caller feeds the relayed bytes in, sends
`KEEP_ALIVE` (an SSE comment every client ignores) now and then while it holds them so proxies do not
time out, runs the checks on `text` at the end, then sends `replay(...)`.

Memory is bounded by `max_bytes`: once the stream is longer, `overflowed` is set, the events are
dropped (nothing was checked, so nothing may be sent) and later feeds are ignored. The caller must then
end the stream as a block, with a reason that says the answer was too long to check, e.g.
`OVERFLOW_REASON`, never send the stream unchecked.

`replay(masks)` rewrites only the channels a mutating check changed. For each, the changed region is
the text between the longest common prefix and the longest common suffix of the old and new text, and
it is rewritten as one mask (`masking.py`): events before and after it keep their bytes, the event
holding its first character carries all of the new middle text, the others lose their share of the old
one (an insertion at the very end goes to the channel's last event). Text a client sees before the
change streams exactly as the model wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping

from relaygate.guardrails.stream.events import Channel, EventSplitter, StreamKind, read_event, rebuild_event
from relaygate.guardrails.stream.masking import Mask, apply_masks
from relaygate.guardrails.stream.text import StreamText

KEEP_ALIVE = b": keep-alive\n\n"
OVERFLOW_REASON = "the streamed answer was longer than the guardrail buffer allows, so it could not be checked"


class BufferedStream:
    """Collects a stream's whole events and their text, up to `max_bytes`."""

    __slots__ = ("kind", "max_bytes", "events", "text", "size", "overflowed", "_splitter")

    def __init__(self, kind: StreamKind, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.kind: StreamKind = kind
        self.max_bytes = max_bytes
        self.events: list[bytes] = []  # whole events, each ending in its blank line, as received
        self.text = StreamText(kind)
        self.size = 0  # bytes received
        self.overflowed = False
        self._splitter = EventSplitter()

    def feed(self, data: bytes) -> None:
        """Hold `data` (whole events are read as they complete); past `max_bytes`, overflow."""
        if self.overflowed:
            return
        self.size += len(data)
        if self.size > self.max_bytes:
            self._overflow()
            return
        for raw in self._splitter.take(data):
            self._keep(raw)

    def finish(self) -> None:
        """At the end of the stream: keep a last event that had no closing blank line."""
        rest = self._splitter.take_rest()
        if rest and not self.overflowed:
            self._keep(rest)

    def replay(self, masks: Mapping[Channel, str] | None = None) -> bytes:
        """The stream to send: as received, or with each channel in `masks` spelling its new full text.

        Raises `ValueError` for a channel the stream never carried (there is no event to put it in).
        """
        changes: dict[Channel, Mask] = {}
        for channel, new in (masks or {}).items():
            if channel not in self.text.channels:
                raise ValueError(f"the stream has no text channel {channel!r}")
            old = self.text.text_of(channel)
            if new != old:
                changes[channel] = _changed_region(old, new)
        if not changes:
            return b"".join(self.events)
        return b"".join(self._rewritten(changes))

    def _keep(self, raw: bytes) -> None:
        self.events.append(raw)
        self.text.feed_event(raw)

    def _overflow(self) -> None:
        self.overflowed = True
        self.events = []
        self.text = StreamText(self.kind)
        self._splitter.take_rest()

    def _rewritten(self, changes: dict[Channel, Mask]) -> list[bytes]:
        """Every event, those holding changed text rebuilt."""
        lengths = {channel: len(self.text.text_of(channel)) for channel in changes}
        offsets = dict.fromkeys(changes, 0)
        placed: set[Channel] = set()
        out: list[bytes] = []
        for raw in self.events:
            texts: dict[Channel, str] = {}
            for piece in read_event(self.kind, raw).pieces:
                change = changes.get(piece.channel)
                if change is None:
                    continue
                start = offsets[piece.channel]
                offsets[piece.channel] = end = start + len(piece.text)
                new = apply_masks(piece.text, start, (change,))
                if new is not None:
                    texts[piece.channel] = new
                    placed.add(piece.channel)
                elif end == lengths[piece.channel] == change.start and piece.channel not in placed:
                    texts[piece.channel] = piece.text + change.replacement  # an insertion at the very end
                    placed.add(piece.channel)
            out.append(rebuild_event(self.kind, raw, texts) if texts else raw)
        return out


def _changed_region(old: str, new: str) -> Mask:
    """The one mask turning `old` into `new`: between their common prefix and common suffix."""
    prefix = _common_prefix(old, new)
    suffix = _common_prefix(old[prefix:][::-1], new[prefix:][::-1])
    return Mask(prefix, len(old) - suffix, new[prefix : len(new) - suffix])


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on slice equality (C-speed compares, no per-char loop)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
