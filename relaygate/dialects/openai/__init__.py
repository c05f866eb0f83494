"""The OpenAI wire format (chat chunks, JSON answers, `{"error": ...}` bodies): the default dialect."""

from __future__ import annotations

from relaygate.context import Usage
from relaygate.dialects.base import Dialect, SSEFilter
from relaygate.dialects.openai.errors import error_event, send_error
from relaygate.dialects.openai.stream import StreamFilter, first_verdict
from relaygate.dialects.openai.usage import read_usage


def _new_filter(wants_usage: bool, max_event_bytes: int) -> SSEFilter:
    return StreamFilter(wants_usage, Usage(), max_event_bytes)


OPENAI = Dialect("openai", _new_filter, first_verdict, error_event, read_usage, send_error)
