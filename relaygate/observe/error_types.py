"""The closed list of `error_type` label values, from how a request ended.

A label must never carry free text (an upstream's error type, a message): every ending maps to one of
`ERROR_TYPES`, and anything unforeseen to `_OTHER`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relaygate.routing.router import AttemptRecord

ERROR_TYPES = frozenset(
    {
        "",  # no error
        "timeout",
        "rate_limited",
        "budget_exceeded",
        "unauthorized",
        "forbidden",
        "invalid_request",
        "no_healthy_upstream",
        "connection_failure",
        "upstream_reset",
        "cancelled",
        "guardrail_blocked",
        "internal",
        "_OTHER",
    }
)  # plus upstream_<status> (100-599)

_BY_TYPE = {
    "client_disconnected": "cancelled",
    "authentication_error": "unauthorized",
    "permission_denied": "forbidden",
    "rate_limit_exceeded": "rate_limited",
    "budget_exceeded": "budget_exceeded",
    "invalid_request_error": "invalid_request",
    "not_found_error": "invalid_request",
    "request_timeout": "timeout",
    "upstream_timeout": "timeout",
    "service_unavailable": "no_healthy_upstream",
    "guardrail_blocked": "guardrail_blocked",
    "internal_error": "internal",
}


def error_type_of(status: int, error_type: str | None, truncated: bool, attempts: Sequence[AttemptRecord]) -> str:
    """The `error_type` label of a finished request ("" for a success)."""
    if truncated:
        return "cancelled" if error_type == "client_disconnected" else "upstream_reset"
    if status == 499:
        return "cancelled"
    if error_type is None and status < 400:
        return ""
    if error_type == "upstream_error" or (error_type is None and status >= 400):
        last = attempts[-1] if attempts else None
        if last is not None and last.status is None:
            return "timeout" if last.error == "upstream_timeout" else "connection_failure"
        if last is not None and last.status is not None and 100 <= last.status <= 599:
            return f"upstream_{last.status}"
        return f"upstream_{status}" if 100 <= status <= 599 and error_type is None else "connection_failure"
    if error_type is None:
        return "_OTHER"
    return _BY_TYPE.get(error_type, "_OTHER")
