"""Gemini `GenerateContentResponse` -> OpenAI `chat.completion` (and the pieces the stream reuses).

- The answer is read in either JSON name style (`usageMetadata` or `usage_metadata`, see `casing`).
- candidates -> choices (by `index`): text parts joined into `content` (None when there is none),
  `functionCall` parts -> `tool_calls` with Google's call `id` when it sent one (Gemini 3 always does),
  else a minted id, carrying any thought signature (see `tool_ids`), and JSON-string arguments.
  Thought parts (`thought: true`) are model reasoning: dropped, or returned as `reasoning_content`
  when the caller sent `x-tfy-strict-openai: false`.
- finishReason: STOP -> stop (tool_calls when the candidate called functions), MAX_TOKENS -> length,
  SAFETY/RECITATION/BLOCKLIST/PROHIBITED_CONTENT/SPII/IMAGE_SAFETY (and the image variants) ->
  content_filter, anything else (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...) -> stop.
- A blocked prompt (`promptFeedback.blockReason`, no candidates) answers 200 with one choice whose
  content is null and finish_reason content_filter, as LiteLLM does and as OpenAI-compatible clients
  expect for filtered output; the prompt's tokens are still reported, since Google bills them.
- usageMetadata -> usage: prompt = promptTokenCount (which already includes cachedContentTokenCount)
  + toolUsePromptTokenCount; completion = candidatesTokenCount + thoughtsTokenCount (reasoning tokens
  are billed as output); cached_tokens and reasoning_tokens are reported when Google reports them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from relaygate.providers.gemini.casing import camel_keys
from relaygate.providers.gemini.logprobs import to_openai_logprobs
from relaygate.providers.gemini.tool_ids import IdFactory, join_call_id, new_call_id
from relaygate.providers.translated import json_object_answer
from relaygate.wire_types import JSON

FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)


def finish_reason(reason: object, called_tools: bool) -> str:
    """The OpenAI finish_reason for a Gemini finishReason."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if called_tools else "stop"


def openai_usage(meta: object) -> JSON:
    """OpenAI usage for Gemini usageMetadata (zeros when Google sent none)."""
    meta = meta if isinstance(meta, dict) else {}

    def count(name: str) -> int:
        value = meta.get(name)
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

    prompt = count("promptTokenCount") + count("toolUsePromptTokenCount")
    completion = count("candidatesTokenCount") + count("thoughtsTokenCount")
    usage: JSON = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if "cachedContentTokenCount" in meta:
        usage["prompt_tokens_details"] = {"cached_tokens": count("cachedContentTokenCount")}
    if "thoughtsTokenCount" in meta:
        usage["completion_tokens_details"] = {"reasoning_tokens": count("thoughtsTokenCount")}
    return usage


@dataclass(slots=True)
class CandidateParts:
    """What one candidate's parts say, in OpenAI terms."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[JSON] = field(default_factory=list)


def read_parts(content: object, new_id: IdFactory) -> CandidateParts:
    """Text, thoughts and function calls of a candidate's `content.parts`."""
    found = CandidateParts()
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        call = part.get("functionCall")
        if isinstance(call, dict):
            google_id = call.get("id")
            base = google_id if isinstance(google_id, str) and google_id else new_id()
            found.tool_calls.append(
                {
                    "id": join_call_id(base, part.get("thoughtSignature")),
                    "type": "function",
                    "function": {
                        "name": str(call.get("name") or ""),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
            continue
        text = part.get("text")
        if isinstance(text, str) and text:
            (found.reasoning if part.get("thought") is True else found.text).append(text)
    return found


def response_id(body: JSON, new_id: IdFactory = new_call_id) -> str:
    """`chatcmpl-<Google responseId>` (a fresh one when Google sent none)."""
    rid = body.get("responseId")
    return f"chatcmpl-{rid}" if isinstance(rid, str) and rid else f"chatcmpl-{new_id().removeprefix('call_')}"


def from_gemini_response(
    body: JSON,
    model: str,
    *,
    include_reasoning: bool = False,
    created: int | None = None,
    new_id: IdFactory = new_call_id,
) -> JSON:
    """The OpenAI chat.completion for a Gemini GenerateContentResponse."""
    body = camel_keys(body)
    completion_id = response_id(body, new_id)
    candidates = body.get("candidates")
    choices: list[JSON] = []
    for position, candidate in enumerate(candidates if isinstance(candidates, list) else ()):
        if not isinstance(candidate, dict):
            continue
        parts = read_parts(candidate.get("content"), new_id)
        message: JSON = {"role": "assistant", "content": "".join(parts.text) if parts.text else None}
        if parts.tool_calls:
            message["tool_calls"] = parts.tool_calls
        message["refusal"] = None
        if include_reasoning and parts.reasoning:
            message["reasoning_content"] = "".join(parts.reasoning)
        index = candidate.get("index")
        choices.append(
            {
                "index": index if isinstance(index, int) else position,
                "message": message,
                "finish_reason": finish_reason(candidate.get("finishReason"), bool(parts.tool_calls)),
                "logprobs": to_openai_logprobs(candidate.get("logprobsResult")),
            }
        )
    if not choices:
        # No candidates: the prompt was blocked (promptFeedback.blockReason) or nothing was generated.
        feedback = body.get("promptFeedback")
        blocked = isinstance(feedback, dict) and bool(feedback.get("blockReason"))
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": None},
                "finish_reason": "content_filter" if blocked else "stop",
                "logprobs": None,
            }
        )
    choices.sort(key=lambda c: c["index"])
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model,
        "choices": choices,
        "usage": openai_usage(body.get("usageMetadata")),
    }


def body_translator(model: str, include_reasoning: bool) -> Callable[[bytes], JSON]:
    """The `TranslatedResponse` body hook: raw Gemini JSON in, the OpenAI object out."""

    def translate(raw: bytes) -> JSON:
        body = json_object_answer(raw, model, "something other than a Gemini response")
        return from_gemini_response(body, model, include_reasoning=include_reasoning)

    return translate
