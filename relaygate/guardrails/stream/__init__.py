"""Output guardrails on streamed answers: per-channel text, window mode (hold back, check, release) and buffer mode.

See `window.py` for why a held-back window never leaks a value split across chunks, and `buffer.py` for
holding a whole stream and replaying it (rewritten when a mutating check changed its text).
"""

from relaygate.guardrails.stream.buffer import KEEP_ALIVE, OVERFLOW_REASON, BufferedStream
from relaygate.guardrails.stream.events import (
    Channel,
    EventText,
    Part,
    StreamKind,
    TextPiece,
    read_event,
    rebuild_event,
)
from relaygate.guardrails.stream.text import StreamText
from relaygate.guardrails.stream.window import Blocked, WindowCheck, WindowGuard

__all__ = [
    "KEEP_ALIVE",
    "OVERFLOW_REASON",
    "Blocked",
    "BufferedStream",
    "Channel",
    "EventText",
    "Part",
    "StreamKind",
    "StreamText",
    "TextPiece",
    "WindowCheck",
    "WindowGuard",
    "read_event",
    "rebuild_event",
]
