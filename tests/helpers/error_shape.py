"""The one error shape every gateway error must have: `{"error": {"message", "type", "code"}}`."""

from __future__ import annotations

from typing import Any


def assert_error_shape(payload: Any) -> dict[str, Any]:
    """Assert the OpenAI error shape and return the inner `error` object."""
    assert isinstance(payload, dict), payload
    error = payload.get("error")
    assert isinstance(error, dict), payload
    assert isinstance(error.get("message"), str) and error["message"], payload
    assert isinstance(error.get("type"), str) and error["type"], payload
    assert "code" in error, payload
    return error
