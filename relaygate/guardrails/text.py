"""Which text of a request or an answer a guardrail reads, and where a mask writes it back.

A `Slot` is one string inside the parsed JSON (a message's content, a text part, a prompt, an
embedding input, an answer's content or tool-call arguments) with the container and key that hold
it, so a mutator rewrites it in place and the upstream, the log row and the spans all see the
masked text. Images, audio and token arrays carry no text: they are counted as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Scope = Literal["last_user", "user", "all"]


@dataclass(slots=True)
class Slot:
    container: Any  # a dict or list inside the payload
    key: Any  # the str key or int index of the text in `container`
    text: str
    role: str = "user"

    def write(self, text: str) -> None:
        """Replace the text in the payload."""
        self.container[self.key] = text
        self.text = text


@dataclass(slots=True)
class Texts:
    """The slots of one stage, and how many non-text parts were left out."""

    slots: list[Slot] = field(default_factory=list)
    skipped: int = 0

    def joined(self) -> str:
        return "\n".join(slot.text for slot in self.slots)


def input_texts(
    operation: str, payload: dict[str, Any], scope: Scope, include_system: bool, include_tool_results: bool
) -> Texts:
    """The request text a guardrail checks, by operation (chat, messages, completions, embeddings...)."""
    texts = Texts()
    if operation == "messages":
        _anthropic_input(payload, texts, scope, include_system, include_tool_results)
    elif isinstance(payload.get("messages"), list):
        _openai_messages(payload["messages"], texts, scope, include_system, include_tool_results)
    else:
        for key in ("prompt", "input", "query"):
            if key in payload:
                _strings(payload, key, texts, "user")
        documents = payload.get("documents")
        if isinstance(documents, list):
            for i, document in enumerate(documents):
                if isinstance(document, str):
                    texts.slots.append(Slot(documents, i, document))
    return texts


def _strings(container: dict[str, Any], key: str, texts: Texts, role: str) -> None:
    value = container[key]
    if isinstance(value, str):
        texts.slots.append(Slot(container, key, value, role))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                texts.slots.append(Slot(value, i, item, role))
            else:
                texts.skipped += 1  # token ids


def _wanted(role: str, scope: Scope, include_system: bool, include_tool_results: bool) -> bool:
    if role in ("system", "developer"):
        return include_system
    if role == "tool":
        return include_tool_results
    if role == "user":
        return True
    return scope == "all"


def _openai_messages(
    messages: list[Any], texts: Texts, scope: Scope, include_system: bool, include_tool_results: bool
) -> None:
    last_user = _last_index(messages, "user") if scope == "last_user" else None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", ""))
        if last_user is not None and role == "user" and i != last_user:
            continue
        if not _wanted(role, scope, include_system, include_tool_results):
            continue
        _content(message, "content", texts, role, text_types=("text", "input_text"))


def _content(holder: dict[str, Any], key: str, texts: Texts, role: str, text_types: tuple[str, ...]) -> None:
    """A `content` that is a string or a list of typed parts (only text parts are read)."""
    content = holder.get(key)
    if isinstance(content, str):
        texts.slots.append(Slot(holder, key, content, role))
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") in text_types and isinstance(part.get("text"), str):
                texts.slots.append(Slot(part, "text", part["text"], role))
            elif isinstance(part, dict) and part.get("type") == "tool_result":
                _content(part, "content", texts, "tool", text_types)
            else:
                texts.skipped += 1


def _last_index(messages: list[Any], role: str) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if isinstance(message, dict) and message.get("role") == role:
            return i
    return None


def _anthropic_input(
    payload: dict[str, Any], texts: Texts, scope: Scope, include_system: bool, include_tool_results: bool
) -> None:
    if include_system and "system" in payload:
        _content(payload, "system", texts, "system", text_types=("text",))
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return
    last_user = _last_index(messages, "user") if scope == "last_user" else None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", ""))
        if (last_user is not None and role == "user" and i != last_user) or not _wanted(
            role, scope, include_system, include_tool_results
        ):
            continue
        content = message.get("content")
        if isinstance(content, list) and not include_tool_results:
            kept = [p for p in content if not (isinstance(p, dict) and p.get("type") == "tool_result")]
            sub = Texts()
            _content({"content": kept}, "content", sub, role, text_types=("text",))
            texts.slots += sub.slots
            texts.skipped += sub.skipped
        else:
            _content(message, "content", texts, role, text_types=("text",))


def output_texts(operation: str, answer: dict[str, Any], include_reasoning: bool) -> Texts:
    """The answer text a guardrail checks: content, reasoning (when asked) and tool-call arguments."""
    texts = Texts()
    if operation == "messages":
        for block in answer.get("content") or ():
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                texts.slots.append(Slot(block, "text", block["text"], "assistant"))
            elif kind == "thinking" and include_reasoning and isinstance(block.get("thinking"), str):
                texts.slots.append(Slot(block, "thinking", block["thinking"], "reasoning"))
            elif kind == "tool_use":
                texts.slots.append(_JsonSlot(block, "input", _dumps(block.get("input")), "tool"))
        return texts
    for choice in answer.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            texts.slots.append(Slot(choice, "text", choice["text"], "assistant"))
        message = choice.get("message")
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str):
            texts.slots.append(Slot(message, "content", message["content"], "assistant"))
        for key in ("reasoning_content", "reasoning"):
            if include_reasoning and isinstance(message.get(key), str):
                texts.slots.append(Slot(message, key, message[key], "reasoning"))
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                texts.slots.append(Slot(function, "arguments", function["arguments"], "tool"))
    return texts


class _JsonSlot(Slot):
    """A JSON value (Anthropic's tool input) checked as text; a mask writes it back parsed when it can be."""

    __slots__ = ()

    def write(self, text: str) -> None:
        import orjson

        try:
            self.container[self.key] = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.container[self.key] = {"masked": text}
        self.text = text


def _dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()
