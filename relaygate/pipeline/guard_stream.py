"""Output guardrails on a streamed answer: a `StreamTap` between the relayed events and the client.

- `buffer` (the default whenever an output guardrail applies: the only mode safe for every check)
  holds the whole stream, sending SSE keep-alive comments meanwhile, checks it, then replays it
  (masked where a mutator changed it).
- `window` releases text as soon as it is final for the span checks (`guardrails/stream/window.py`);
  a value split across chunks is still seen whole, and a block stops the upstream generation at once.
  Guardrails under `audit` are not held for: they read the whole answer at the end.
- `post_hoc` relays freely and checks at the end; it can only audit (`relaygate check` enforces it).

A block mid-stream ends the stream with the caller's dialect error event (no `[DONE]`, no
`message_stop`), so an SDK raises instead of taking a cut answer as complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from relaygate.errors import GatewayError
from relaygate.guardrails.engine import StageReport, Verdict, run_stage
from relaygate.guardrails.errors import GuardrailBlocked
from relaygate.guardrails.stream.buffer import OVERFLOW_REASON, BufferedStream
from relaygate.guardrails.stream.events import EventSplitter
from relaygate.guardrails.stream.text import StreamText
from relaygate.guardrails.stream.window import WindowCheck, WindowGuard
from relaygate.guardrails.text import Slot, Texts

if TYPE_CHECKING:
    from relaygate.guardrails.checks.base import TextCheck
    from relaygate.guardrails.stream.events import Channel, StreamKind
    from relaygate.pipeline.guard import Guarded
    from relaygate.runtime.guardrails import Guardrail

STREAM_KINDS: dict[str, StreamKind] = {
    "chat": "openai_chat",
    "completions": "openai_completions",
    "messages": "anthropic_messages",
}
KEEP_ALIVE_SECONDS = 5.0
_WINDOW_TYPES = ("regex", "keywords", "pii", "secrets")


class StreamTap:
    """What the relay asks of an output guard."""

    holding = False  # holds everything until the end (the relay sends keep-alives meanwhile)
    blocked: GatewayError | None = None

    def feed(self, data: bytes) -> bytes:
        """Bytes to send now for relayed `data`."""
        raise NotImplementedError

    async def finish(self) -> bytes:
        """At the end of the stream: the rest to send (sets `blocked` instead when a guardrail blocks)."""
        raise NotImplementedError


def tap_for(guarded: Guarded | None, operation: str) -> StreamTap | None:
    """The output guard of a stream, or None when no output guardrail applies to it."""
    if guarded is None or not guarded.selection.output:
        return None
    kind = STREAM_KINDS.get(operation)
    if kind is None:
        return None
    mode = guarded.selection.stream_mode
    if mode == "window":
        return WindowTap(guarded, kind)
    if mode == "post_hoc":
        return PostHocTap(guarded, kind)
    return BufferTap(guarded, kind)


def _texts_of(stream: StreamText, include_reasoning: bool) -> tuple[Texts, dict[Channel, str]]:
    """One slot per text channel of the stream (masks write into the returned mapping)."""
    holder: dict[Channel, str] = {}
    texts = Texts()
    for channel in stream.channels:
        if stream.part_of(channel) == "reasoning" and not include_reasoning:
            continue
        holder[channel] = stream.text_of(channel)
        texts.slots.append(Slot(holder, channel, holder[channel], str(stream.part_of(channel))))
    return texts, holder


async def _check_whole(
    guarded: Guarded, guardrails: tuple[Guardrail, ...], stream: StreamText
) -> tuple[StageReport, dict[Channel, str]]:
    texts, holder = _texts_of(stream, guarded.selection.include_reasoning)
    report = await run_stage(guardrails, guarded.stage_input("output", texts, None))
    return report, holder


def _comment(guarded: Guarded) -> bytes:
    """`: relaygate-guardrails g/a=pass, ...`: the output verdicts, as an SSE comment every SDK ignores."""
    output = [f"{v.ref}={v.result}" for v in guarded.verdicts if v.stage == "output"]
    return f": relaygate-guardrails {', '.join(output)}\n\n".encode() if output else b""


class BufferTap(StreamTap):
    holding = True

    def __init__(self, guarded: Guarded, kind: StreamKind) -> None:
        self.guarded = guarded
        self.buffer = BufferedStream(kind, guarded.call.gateway.snapshot.guardrails.max_buffer_bytes)

    def feed(self, data: bytes) -> bytes:
        self.buffer.feed(data)
        return b""

    async def finish(self) -> bytes:
        buffer, guarded = self.buffer, self.guarded
        buffer.finish()
        if buffer.overflowed:
            verdict = Verdict("(buffer)", "output", "validate", "block", 0.0, OVERFLOW_REASON)
            guarded.verdicts.append(verdict)
            guarded.call.ctx.extra["guardrails"] = [v.row() for v in guarded.verdicts]
            self.blocked = GuardrailBlocked(f"Blocked: {OVERFLOW_REASON}", [v.row() for v in guarded.verdicts])
            return b""
        report, holder = await _check_whole(guarded, guarded.selection.output, buffer.text)
        guarded.call.ctx.timings.output_guardrails = report.duration_ms
        try:
            guarded.note(report)
        except GatewayError as exc:
            self.blocked = exc
            return b""
        masks = {channel: text for channel, text in holder.items() if text != buffer.text.text_of(channel)}
        return _comment(guarded) + buffer.replay(masks or None)


class WindowTap(StreamTap):
    def __init__(self, guarded: Guarded, kind: StreamKind) -> None:
        self.guarded = guarded
        selection = guarded.selection
        held = [g for g in selection.output if not g.audit and g.type in _WINDOW_TYPES]
        self.later = tuple(g for g in selection.output if g not in held)  # audit: read at the end
        self.window = WindowGuard(
            kind,
            [
                WindowCheck(
                    g.ref,
                    cast("TextCheck", g.check),
                    g.operation == "mutate" and getattr(g.check, "action", "") == "mask",
                )
                for g in held
            ],
            window_chars=selection.window_chars,
            overlap_chars=selection.overlap_chars,
        )
        self.held = tuple(held)
        self.text = StreamText(kind) if self.later else None
        self.splitter = EventSplitter() if self.later else None

    def feed(self, data: bytes) -> bytes:
        if self.splitter is not None and self.text is not None:
            for raw in self.splitter.take(data):
                self.text.feed_event(raw)
        out = self.window.feed(data)
        if self.window.blocked is not None:
            self._block()
        return out

    async def finish(self) -> bytes:
        rest = self.window.finish()
        if self.window.blocked is not None:
            self._block()
            return rest
        report = StageReport(verdicts=[Verdict(g.ref, "output", g.operation, "pass", 0.0) for g in self.held])
        if self.later and self.text is not None:
            later, _ = await _check_whole(self.guarded, self.later, self.text)
            report.verdicts += later.verdicts
        self.guarded.note(report)  # only audit guardrails ran at the end: never refuses
        return _comment(self.guarded) + rest

    def _block(self) -> None:
        if self.blocked is not None:
            return
        blocked = self.window.blocked
        assert blocked is not None
        guarded = self.guarded
        guarded.verdicts.append(Verdict(blocked.ref, "output", "validate", "block", 0.0, blocked.reason))
        guarded.call.ctx.extra["guardrails"] = [v.row() for v in guarded.verdicts]
        reason = f": {blocked.reason}" if blocked.reason else ""
        self.blocked = GuardrailBlocked(
            f"Blocked by guardrail {blocked.ref} (output){reason}", [v.row() for v in guarded.verdicts]
        )


class PostHocTap(StreamTap):
    def __init__(self, guarded: Guarded, kind: StreamKind) -> None:
        self.guarded = guarded
        self.text = StreamText(kind)
        self.splitter = EventSplitter()

    def feed(self, data: bytes) -> bytes:
        for raw in self.splitter.take(data):
            self.text.feed_event(raw)
        return data

    async def finish(self) -> bytes:
        report, _ = await _check_whole(self.guarded, self.guarded.selection.output, self.text)
        report.blocked = report.failed = None  # after the fact: recorded, never refused
        self.guarded.note(report)
        return b""
