"""Log probabilities: OpenAI's `logprobs` / `top_logprobs` <-> Gemini's `responseLogprobs` / `logprobs`.

Gemini answers a candidate's `logprobsResult` with one `chosenCandidates` entry per decoding step
(`token`, `logProbability`) and, when asked for top tokens, a `topCandidates` entry per step
(`candidates`, most likely first). OpenAI's `choices[].logprobs.content` has one item per token with
its own `top_logprobs`; `bytes` are the token's UTF-8 bytes, as OpenAI sends them.
"""

from __future__ import annotations

from relaygate.errors import BadRequest
from relaygate.wire_types import JSON

MAX_TOP_LOGPROBS = 20  # OpenAI's and Gemini's upper bound


def logprobs_config(payload: JSON) -> JSON:
    """The `generationConfig` fields for the caller's `logprobs` / `top_logprobs` (400 when malformed)."""
    wanted, top = payload.get("logprobs"), payload.get("top_logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise BadRequest("'logprobs' must be a boolean", param="logprobs")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise BadRequest(f"'top_logprobs' must be an integer from 0 to {MAX_TOP_LOGPROBS}", param="top_logprobs")
        if wanted is not True:
            raise BadRequest("'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    if wanted is not True:
        return {}
    return {"responseLogprobs": True, **({"logprobs": top} if top else {})}


def to_openai_logprobs(result: object) -> JSON | None:
    """OpenAI `logprobs` for a Gemini candidate's `logprobsResult` (None when it has none)."""
    if not isinstance(result, dict):
        return None
    chosen = result.get("chosenCandidates")
    if not isinstance(chosen, list):
        return None
    tops = result.get("topCandidates")
    tops = tops if isinstance(tops, list) else []
    content = []
    for step, pick in enumerate(chosen):
        if not isinstance(pick, dict):
            continue
        item = _token(pick)
        alternatives = tops[step].get("candidates") if step < len(tops) and isinstance(tops[step], dict) else None
        item["top_logprobs"] = (
            [_token(c) for c in alternatives if isinstance(c, dict)] if isinstance(alternatives, list) else []
        )
        content.append(item)
    return {"content": content, "refusal": None}


def _token(candidate: JSON) -> JSON:
    token = candidate.get("token")
    text = token if isinstance(token, str) else ""
    value = candidate.get("logProbability")
    return {
        "token": text,
        "logprob": float(value) if isinstance(value, int | float) else 0.0,
        "bytes": list(text.encode("utf-8")),
    }
