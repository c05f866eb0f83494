"""The Anthropic Messages wire format (`/messages`): events, answers and errors in Anthropic's shape.

Also the translation between it and the OpenAI shape the adapters speak (`translation.py` for
requests and answers, `from_openai.py` for streams), used when a Messages call goes to a model that
is not Anthropic's.
"""

from __future__ import annotations

from relaygate.context import Usage
from relaygate.dialects.anthropic_messages.errors import error_event, send_error
from relaygate.dialects.anthropic_messages.stream import MessagesStreamFilter, messages_first_verdict
from relaygate.dialects.anthropic_messages.usage import read_messages_usage
from relaygate.dialects.base import Dialect, SSEFilter


def _new_filter(wants_usage: bool, max_event_bytes: int) -> SSEFilter:
    return MessagesStreamFilter(Usage(), max_event_bytes)  # Anthropic clients always get usage


ANTHROPIC_MESSAGES = Dialect(
    "anthropic_messages", _new_filter, messages_first_verdict, error_event, read_messages_usage, send_error
)
