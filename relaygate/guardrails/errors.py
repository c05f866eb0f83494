"""The two answers a guardrail can force: blocked (400) and unavailable (503), OpenAI-shaped.

Both list every guardrail verdict of the request (`guardrails: [{name, stage, result, reason}]`), so a
caller sees which guardrail refused and why, never the text it found.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.errors import BadRequest, ServiceUnavailable


class GuardrailBlocked(BadRequest):
    type = "guardrail_blocked"
    code = "guardrail_blocked"

    def __init__(self, message: str, verdicts: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.verdicts = verdicts

    def body(self) -> bytes:
        return orjson.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "code": self.code,
                    "param": None,
                    "guardrails": self.verdicts,
                }
            }
        )


class GuardrailUnavailable(ServiceUnavailable):
    """A guardrail under `enforce` failed or timed out: the request is refused, never sent unchecked.
    Not retried to another target (the guardrail, not the model, failed)."""

    type = "guardrail_unavailable"
    code = "guardrail_unavailable"

    def __init__(self, message: str, verdicts: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.verdicts = verdicts

    def body(self) -> bytes:
        return orjson.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "code": self.code,
                    "param": None,
                    "guardrails": self.verdicts,
                }
            }
        )
