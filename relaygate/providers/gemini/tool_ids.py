"""OpenAI tool-call ids for Gemini function calls, carrying the call's thought signature.

Gemini returns function calls without ids (we mint `call_<hex>`), and thinking models (Gemini 2.5+, 3)
attach an opaque `thoughtSignature` to the call part that must come back verbatim when the caller sends
the conversation again, or Gemini 3 refuses the request. OpenAI clients echo tool-call ids untouched, so
the signature rides inside the id after `__thought__` (the separator LiteLLM uses, so histories move
between the two gateways).

When Gemini names its calls (`functionCall.id`; Gemini 3 always does) that id is the base instead, and
it goes back as `functionResponse.id` with the result, as Google asks, so parallel calls of one
function are told apart. Ids we minted ourselves are never sent to Google.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

SIGNATURE_SEPARATOR = "__thought__"

IdFactory = Callable[[], str]
_MINTED = re.compile(r"call_[0-9a-f]{24}")


def new_call_id() -> str:
    """A fresh OpenAI-style tool-call id."""
    return "call_" + secrets.token_hex(12)


def join_call_id(base: str, signature: object) -> str:
    """The id to hand the caller: `base`, plus the thought signature when Gemini sent one."""
    if isinstance(signature, str) and signature:
        return f"{base}{SIGNATURE_SEPARATOR}{signature}"
    return base


def split_call_id(call_id: str) -> tuple[str, str | None]:
    """(id, thought signature or None) from an id made by `join_call_id`."""
    base, sep, signature = call_id.partition(SIGNATURE_SEPARATOR)
    return (base, signature) if sep and signature else (call_id, None)


def google_call_id(base: str) -> str | None:
    """The id to send back to Google for a call id's base: None for ids we minted (Google never saw them)."""
    return None if not base or _MINTED.fullmatch(base) else base
