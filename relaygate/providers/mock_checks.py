"""The built-in mock model's input checks: the 400s the OpenAI API gives for the same mistakes.

Someone trying the gateway with `mock/...` should see the error a real model would give them (a
missing or malformed `messages`, an `n` the model does not support, embeddings without input), in
OpenAI's words and shape (`message`, `type`, `param`, `code`), rather than a cheerful echo.
"""

from __future__ import annotations

from typing import Any

ROLES = ("system", "assistant", "user", "function", "tool", "developer")


class InvalidInput(Exception):
    """One OpenAI `invalid_request_error`: what is wrong, the parameter, and OpenAI's code for it."""

    def __init__(self, message: str, param: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def error(self) -> dict[str, Any]:
        return {
            "error": {"message": self.message, "type": "invalid_request_error", "param": self.param, "code": self.code}
        }


def _kind(value: object) -> str:
    """How OpenAI names a JSON value's type in its messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _missing(param: str) -> InvalidInput:
    return InvalidInput(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str, value: object) -> InvalidInput:
    return InvalidInput(
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.", param, "invalid_type"
    )


def check_n(body: dict[str, Any]) -> None:
    """`n`: an integer >= 1, and the mock writes one choice only (as models without `n` support answer)."""
    n = body.get("n")
    if n is None:
        return
    if not isinstance(n, int) or isinstance(n, bool):
        raise _wrong_type("n", "an integer", n)
    if n < 1:
        raise InvalidInput(
            f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} instead.",
            "n",
            "integer_below_min_value",
        )
    if n > 1:
        raise InvalidInput(
            f"Unsupported value: 'n' does not support {n} with this model. Only the default (1) value is supported.",
            "n",
            "unsupported_value",
        )


def check_chat(body: dict[str, Any]) -> None:
    """`messages` present, a non-empty array of objects with a known `role`; `n` as `check_n`."""
    if "messages" not in body:
        raise _missing("messages")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array", messages)
    if not messages:
        raise InvalidInput(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        if "role" not in message:
            raise _missing(f"{where}.role")
        role = message["role"]
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f", and '{ROLES[-1]}'"
            raise InvalidInput(
                f"Invalid value: '{role}'. Supported values are: {supported}.", f"{where}.role", "invalid_value"
            )
    check_n(body)


def check_input(body: dict[str, Any]) -> None:
    """Embeddings and moderations: `input` present, a non-empty string or array."""
    if "input" not in body:
        raise _missing("input")
    value = body["input"]
    if isinstance(value, str):
        if not value:
            raise InvalidInput(
                "Invalid 'input': string too short. Expected a string with minimum length 1, but got "
                "an empty string instead.",
                "input",
                "string_too_short",
            )
        return
    if not isinstance(value, list):
        raise _wrong_type("input", "a string or an array", value)
    if not value:
        raise InvalidInput(
            "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "input",
            "empty_array",
        )
