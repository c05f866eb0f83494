"""The two answers a guardrail can force: blocked (400) and unavailable (503), OpenAI-shaped.

Both list every guardrail verdict of the request (`guardrails: [{name, stage, result, reason}]`), so a
caller sees which guardrail refused and why, never the text it found.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.errors import BadRequest, GatewayError, ServiceUnavailable


class _WithVerdicts(GatewayError):
    """An error whose body also lists the request's guardrail verdicts."""

    def __init__(self, message: str, verdicts: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.verdicts = verdicts

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.type, "code": self.code, "param": None}
        return orjson.dumps({"error": {**error, "guardrails": self.verdicts}})


class GuardrailBlocked(_WithVerdicts, BadRequest):
    type = "guardrail_blocked"
    code = "guardrail_blocked"


class GuardrailUnavailable(_WithVerdicts, ServiceUnavailable):
    """A guardrail under `enforce` failed or timed out: the request is refused, never sent unchecked.
    Not retried to another target (the guardrail, not the model, failed)."""

    type = "guardrail_unavailable"
    code = "guardrail_unavailable"
