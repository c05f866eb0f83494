"""`WindowGuard`: span checks on a streamed answer with a bounded hold-back, so nothing found is ever sent.

Checking each chunk on its own leaks any value the model happens to split across chunks (LiteLLM
#41611). Here text is checked per channel (`events.py`: a choice's content, one tool call's arguments,
an Anthropic content block), and events are released only once all the text they carry is **final**.

**Why held-back text is enough.** Let `M` be the longest text one span of any check can cover
(`max_match_chars`) and `hold = max(overlap_chars, M)`. When a channel has text up to offset `end`, a
match starting before `P = end - hold` ends by `P + M <= end`: it is already whole in the text. So after
checking, every match starting before `P` is known and masked (or the stream is blocked), and text before
`P` is final: no later text can turn it into part of a match it was not already found in. A value split
at any character boundary, over any number of events, is therefore seen whole before any event holding
a byte of it is released. When a group ends (`finish_reason`, `content_block_stop`), or the stream ends
(`[DONE]`, `message_stop`, `finish()`), its text is complete and all of it becomes final the same way.

**Why the cost stays linear.** A channel is checked when its held text (`end - final`) exceeds
`max(window_chars, 2 * hold)` (`check_after_chars`), when its group ends and at the end, each time on
`[final - overlap_chars, end)`: the held text plus `overlap_chars` of final text as context (for `\\b`,
look-behinds). A mid-stream check moves `final` by `held - hold >= held / 2` and reads
`overlap + held <= 1.5 * held` characters: at most three characters read per character made final, never
a rescan of the whole channel. Only matches that touch the not-yet-final text and start before the new
`final` are acted on; those starting later are found again, with more context, by the next check. Checks
see the original text (never the masked one), so every check judges what the model actually wrote.

**What is released.** Events leave in the order they came, text-less ones too (a comment or ping
waits behind the text before it). A mask rewrites the events holding the span (`masking.py`): the
first carries the redaction text, the others lose their share. Overlapping spans are united and a span
reaching back into final text is clipped to the undecided part: masking more is always safe. On a
block, only events whose every piece ends before the first violating span (and is final) are released;
the event holding the span's first character, and everything after it, never is; `blocked` is set, the
blocked channel never moves on, and later calls return b"". (Channels ending at the same event are
still checked, so their clean text before the block can go out.)

**Memory.** A channel keeps about `overlap + check_after_chars` characters plus one delta for its
checks. Events queue behind a channel that waits for more text: when a choice's content stops short of
the hold while its tool-call deltas stream, everything after waits until the content grows or the
choice finishes. `held_bytes` says how much is queued, so the caller can bound it.

Checks must be local: a match is found in any text that holds it whole with `overlap_chars` before it.
A check reporting a violation without spans cannot be located, so it blocks (even when masking).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from relaygate.guardrails.checks.base import Span, TextCheck
from relaygate.guardrails.stream.events import Channel, EventSplitter, StreamKind, read_event, rebuild_event
from relaygate.guardrails.stream.masking import Mask, apply_masks, merge_masks


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """One output check in window mode; `mask`: mask its spans instead of blocking (mutate + action mask)."""

    ref: str  # "group/integration", for the verdict
    check: TextCheck
    mask: bool


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why the stream stopped: which check, and its reason (never the matched text)."""

    ref: str
    reason: str


class _ChannelText:
    """One channel's text still needed for checks (from `base`), its final offset and its pending masks."""

    __slots__ = ("text", "tail", "base", "end", "final", "masks", "blocked")

    def __init__(self) -> None:
        self.text = ""
        self.tail: list[str] = []  # appended since the last join
        self.base = 0  # channel offset of text[0]
        self.end = 0
        self.final = 0  # text before it is decided (checked, masks known)
        self.masks: list[Mask] = []  # sorted, not overlapping, not yet wholly released
        self.blocked = False  # a check blocked here: `final` never moves again

    def append(self, text: str) -> None:
        self.tail.append(text)
        self.end += len(text)

    def since(self, start: int) -> str:
        """The text from channel offset `start` (>= base) to the end."""
        if self.tail:
            self.text += "".join(self.tail)
            self.tail.clear()
        return self.text[start - self.base :]

    def forget_before(self, start: int) -> None:
        """Drop text before `start`, which no check will need again."""
        if start > self.base:
            self.since(start)
            self.text = self.text[start - self.base :]
            self.base = start


@dataclass(frozen=True, slots=True)
class _Piece:
    """An event's text for one channel, at channel offset `start`."""

    channel: Channel
    state: _ChannelText
    start: int
    text: str


@dataclass(frozen=True, slots=True)
class _Held:
    """An event waiting for its text to become final."""

    raw: bytes
    pieces: tuple[_Piece, ...]


class WindowGuard:
    """Filters a `kind` stream's whole events through span checks, holding back only the undecided text."""

    def __init__(
        self, kind: StreamKind, checks: Sequence[WindowCheck], *, window_chars: int = 512, overlap_chars: int = 256
    ) -> None:
        if window_chars < 1 or overlap_chars < 0:
            raise ValueError("window_chars must be at least 1 and overlap_chars at least 0")
        longest = 0
        for item in checks:
            width = item.check.max_match_chars
            if width is None:
                raise ValueError(f"guardrail {item.ref} has no bounded match length, so it cannot run in window mode")
            if width < 1:
                raise ValueError(f"guardrail {item.ref} has max_match_chars {width}; it must be at least 1")
            longest = max(longest, width)
        self.kind: StreamKind = kind
        self.hold = max(overlap_chars, longest)
        self.check_after_chars = max(window_chars, 2 * self.hold)
        self._checks = tuple(checks)
        self._overlap = overlap_chars
        self._splitter = EventSplitter()
        self._queue: deque[_Held] = deque()
        self._queued_bytes = 0
        self._channels: dict[Channel, _ChannelText] = {}
        self.blocked: Blocked | None = None
        self.released_text_chars = 0
        self.evaluations = 0  # check.evaluate calls
        self.checked_chars = 0  # characters those calls read

    @property
    def held_bytes(self) -> int:
        """Bytes received and not yet released (queued events and a partial event)."""
        return self._queued_bytes + self._splitter.pending_bytes

    def feed(self, data: bytes) -> bytes:
        """The whole events safe to send now, in order (b"" while held, and always once blocked)."""
        if self.blocked is not None:
            return b""
        out: list[bytes] = []
        for raw in self._splitter.take(data):
            self._accept(raw)
            self._release(out)
            if self.blocked is not None:
                self._drop()
                break
        return b"".join(out)

    def finish(self) -> bytes:
        """At the end of the stream: check all held text and release what passes (b"" once blocked)."""
        if self.blocked is not None:
            return b""
        rest = self._splitter.take_rest()
        if rest:
            self._accept(rest)
        for state in self._channels.values():
            self._check(state, at_end=True)
        out: list[bytes] = []
        self._release(out)
        if self.blocked is not None:
            self._drop()
        return b"".join(out)

    def _accept(self, raw: bytes) -> None:
        """Queue one event, add its text to its channels and check what became due."""
        event = read_event(self.kind, raw)
        pieces: list[_Piece] = []
        for piece in event.pieces:
            state = self._channels.get(piece.channel)
            if state is None:
                state = self._channels[piece.channel] = _ChannelText()
            pieces.append(_Piece(piece.channel, state, state.end, piece.text))
            state.append(piece.text)
        self._queue.append(_Held(raw, tuple(pieces)))
        self._queued_bytes += len(raw)
        for item in pieces:
            if self.blocked is None and item.state.end - item.state.final > self.check_after_chars:
                self._check(item.state, at_end=False)
        for channel, state in self._channels.items():
            if event.terminal or channel[1] in event.closes:
                self._check(state, at_end=True)  # even after a block: its text may then go out up to the block

    def _check(self, state: _ChannelText, *, at_end: bool) -> None:
        """Run every check on the channel's undecided text (plus context) and move its final offset."""
        previous = state.final
        if state.end == previous or state.blocked:
            return
        decided = state.end if at_end else max(previous, state.end - self.hold)
        start = max(state.base, previous - self._overlap)
        segment = state.since(start)
        block_at: int | None = None
        verdict: Blocked | None = None
        masks: list[Mask] = []
        for item in self._checks:
            self.evaluations += 1
            self.checked_chars += len(segment)
            evaluation = item.check.evaluate(segment)
            if not evaluation.violated:
                continue
            spans = [span for span in evaluation.spans if span.end > span.start]
            if spans:
                spans = [span for span in spans if start + span.start < decided and start + span.end > previous]
                if not spans:
                    continue  # in decided text (handled before) or starting after `decided` (seen next time)
                if item.mask:
                    masks.extend(self._mask(item.check, segment, start, previous, span) for span in spans)
                    continue
                at = max(previous, start + min(span.start for span in spans))
            else:
                at = previous  # a violation with no location: nothing undecided may go out
            if block_at is None or at < block_at:
                block_at, verdict = at, Blocked(item.ref, evaluation.reason)
        if masks:
            state.masks = merge_masks([*state.masks, *masks])
        if verdict is not None and block_at is not None:
            state.final = block_at
            state.blocked = True
            self.blocked = self.blocked or verdict
            return
        state.final = decided
        state.forget_before(max(state.base, decided - self._overlap))

    @staticmethod
    def _mask(check: TextCheck, segment: str, start: int, previous: int, span: Span) -> Mask:
        """The channel mask for a span found in `segment`, clipped to undecided text."""
        found = segment[span.start : span.end]
        replacement = check.mask(found, (Span(0, len(found), span.label),))
        return Mask(max(previous, start + span.start), start + span.end, replacement)

    def _release(self, out: list[bytes]) -> None:
        """Send queued events from the front while every piece they carry is final."""
        queue = self._queue
        while queue:
            held = queue[0]
            if any(piece.start + len(piece.text) > piece.state.final for piece in held.pieces):
                return
            queue.popleft()
            self._queued_bytes -= len(held.raw)
            out.append(self._render(held))

    def _render(self, held: _Held) -> bytes:
        """The event as it goes out: its own bytes unless a mask touches its text."""
        texts: dict[Channel, str] = {}
        for piece in held.pieces:
            state = piece.state
            text = piece.text
            if state.masks:
                masked = apply_masks(text, piece.start, state.masks)
                if masked is not None:
                    texts[piece.channel] = text = masked
                piece_end = piece.start + len(piece.text)
                while state.masks and state.masks[0].end <= piece_end:
                    state.masks.pop(0)
            self.released_text_chars += len(text)
        return rebuild_event(self.kind, held.raw, texts) if texts else held.raw

    def _drop(self) -> None:
        """After a block: forget everything held; nothing of it may leave."""
        self._queue.clear()
        self._queued_bytes = 0
        self._channels.clear()
        self._splitter.take_rest()
