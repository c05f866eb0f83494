"""One entry point from a recorded stream to the non-streaming body it stands for (§4.6 point 6).

The assembled body is what a non-stream request hitting a stream entry gets, and what is checked
before storing (a stream that never reached its terminal event, carried an error, or cannot be
parsed assembles to None and must not be cached).
"""

from __future__ import annotations

from collections.abc import Sequence

from relaygate.cache.assemble_anthropic import assemble_anthropic
from relaygate.cache.assemble_openai import assemble_openai
from relaygate.cache.entry import EntryKind


def assemble(kind: EntryKind, events: Sequence[bytes]) -> bytes | None:
    """The JSON body equivalent to `events`; None when incomplete or unparseable (never cache those)."""
    try:
        if kind == "openai_chat":
            return assemble_openai(events, chat=True)
        if kind == "openai_completions":
            return assemble_openai(events, chat=False)
        if kind == "anthropic_messages":
            return assemble_anthropic(events)
    except (TypeError, ValueError, KeyError, AttributeError):  # valid JSON of a shape no API sends
        return None
    return None  # json kinds are never streamed
