"""OpenAI chat request -> Gemini `GenerateContentRequest` (one body for the Gemini API and Vertex AI).

- system/developer messages (wherever they appear) -> `systemInstruction` parts, in order.
- user -> role `user`; assistant -> role `model`; tool results -> `functionResponse` parts in a
  `user` turn (named after the assistant tool call they answer, with its `id` when the id came from
  Google, see `tool_ids`; non-object results are wrapped as `{"output": ...}`, the key Gemini
  documents for a function's output). Adjacent turns of the same
  kind are merged, since Gemini pairs one function-response turn with one function-call turn.
- Content parts: text; images as `inlineData` (base64 data URLs) or `fileData` (remote URIs: http(s)
  on both APIs — the Gemini API fetches public and signed URLs — and gs:// on Vertex only; the Gemini
  API reads Cloud Storage objects only once registered through its Files API); `input_audio` and
  `file` (base64 `file_data`, or a URI `file_id`) likewise.
- tools -> one `functionDeclarations` tool (JSON Schema rewritten by `schema.to_gemini_schema`);
  tool_choice -> `toolConfig.functionCallingConfig` (AUTO / NONE / ANY + allowedFunctionNames), sent
  only beside function declarations (the Gemini API refuses it alone); without tools, auto and none
  are no-ops and a choice that demands a call is a 400.
- Sampling -> `generationConfig`; `reasoning_effort` -> `thinkingConfig` (thinkingLevel for Gemini 3
  models, a thinkingBudget otherwise).

- `logprobs` / `top_logprobs` -> `responseLogprobs` / `logprobs` (see logprobs.py).

Ignored (no Gemini equivalent): logit_bias, parallel_tool_calls, user,
metadata, store, service_tier, prediction, modalities, audio, stream_options.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from typing import Any
from urllib.parse import urlsplit

import orjson

from relaygate.errors import BadRequest
from relaygate.providers.gemini.logprobs import logprobs_config
from relaygate.providers.gemini.schema import to_gemini_schema
from relaygate.providers.gemini.tool_ids import google_call_id, split_call_id
from relaygate.wire_types import JSON

# reasoning_effort -> thinkingBudget (Gemini 2.5) in tokens; Gemini 3 takes the level by name.
THINKING_BUDGETS = {"none": 0, "minimal": 128, "low": 1024, "medium": 8192, "high": 24576}
THINKING_LEVELS = {"none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH"}
# Gemini-native request fields a caller may pass alongside the OpenAI ones (snake or camel case).
PASSTHROUGH = {
    "safety_settings": "safetySettings",
    "safetySettings": "safetySettings",
    "cached_content": "cachedContent",
    "cachedContent": "cachedContent",
    "labels": "labels",
}


def to_gemini_request(payload: JSON, *, vertex: bool = False, include_thoughts: bool = False) -> JSON:
    """The Gemini request body for an OpenAI chat request (BadRequest names the offending field)."""
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", param="messages")
    system, contents = _Conversation(vertex).convert(messages)
    if not contents:
        raise BadRequest("'messages' needs at least one user or assistant message with content", param="messages")
    body: JSON = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = _tools(payload.get("tools"), payload.get("functions"))
    if tools:
        body["tools"] = tools
    choice = payload.get("tool_choice", payload.get("function_call"))
    if choice is not None:
        calling = _function_calling(choice)
        if tools:
            body["toolConfig"] = {"functionCallingConfig": calling}
        elif calling["mode"] not in ("AUTO", "NONE"):  # Gemini: "config is set without function_declarations"
            raise BadRequest("'tool_choice' requires a function in 'tools'", param="tool_choice")
    config = _generation_config(payload, include_thoughts)
    if config:
        body["generationConfig"] = config
    for key, name in PASSTHROUGH.items():
        if payload.get(key) is not None and (name != "labels" or vertex):
            body[name] = payload[key]
    return body


class _Conversation:
    """Walks the OpenAI messages once, remembering tool-call names for the tool results."""

    __slots__ = ("_vertex", "_system", "_contents", "_kinds", "_call_names")

    def __init__(self, vertex: bool) -> None:
        self._vertex = vertex
        self._system: list[JSON] = []
        self._contents: list[JSON] = []
        self._kinds: list[str] = []  # per content: "user", "model" or "tool" (function responses)
        self._call_names: dict[str, str] = {}

    def convert(self, messages: list[Any]) -> tuple[list[JSON], list[JSON]]:
        for i, message in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(message, dict):
                raise BadRequest(f"'{where}' must be an object", param=where)
            role = message.get("role")
            if role in ("system", "developer"):
                self._system.extend(_text_parts(message.get("content"), f"{where}.content"))
            elif role == "user":
                self._add("user", self._user_parts(message.get("content"), f"{where}.content"))
            elif role == "assistant":
                self._add("model", self._assistant_parts(message, where))
            elif role in ("tool", "function"):
                self._add("tool", [self._function_response(message, where)])
            else:
                raise BadRequest(f"'{where}.role' {role!r} is not supported", param=f"{where}.role")
        return self._system, self._contents

    def _add(self, kind: str, parts: list[JSON]) -> None:
        if not parts:
            return
        if self._kinds and self._kinds[-1] == kind:
            self._contents[-1]["parts"].extend(parts)
            return
        self._contents.append({"role": "model" if kind == "model" else "user", "parts": parts})
        self._kinds.append(kind)

    def _user_parts(self, content: object, where: str) -> list[JSON]:
        if isinstance(content, str):
            return [{"text": content}] if content else []
        if not isinstance(content, list):
            raise BadRequest(f"'{where}' must be a string or an array of content parts", param=where)
        parts: list[JSON] = []
        for j, part in enumerate(content):
            parts.extend(self._user_part(part, f"{where}[{j}]"))
        return parts

    def _user_part(self, part: object, where: str) -> list[JSON]:
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(part, dict) or not isinstance(kind, str):
            raise BadRequest(f"'{where}' must be a content part object with a 'type'", param=where)
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"'{where}.text' must be a string", param=f"{where}.text")
            return [{"text": text}] if text else []
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise BadRequest(f"'{where}.image_url.url' must be a URL", param=f"{where}.image_url.url")
            return [media_part(url, f"{where}.image_url.url", self._vertex, "image/jpeg")]
        if kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            fmt = audio.get("format") if isinstance(audio, dict) else None
            if not isinstance(data, str) or not isinstance(fmt, str):
                raise BadRequest(
                    f"'{where}.input_audio' needs 'data' (base64) and 'format'", param=f"{where}.input_audio"
                )
            mime = "audio/mpeg" if fmt == "mp3" else f"audio/{fmt}"
            return [media_part(f"data:{mime};base64,{data}", f"{where}.input_audio.data", self._vertex, mime)]
        if kind == "file":
            return [self._file_part(part.get("file"), f"{where}.file")]
        raise BadRequest(f"'{where}.type' {kind!r} is not supported by Gemini", param=f"{where}.type")

    def _file_part(self, file: object, where: str) -> JSON:
        if not isinstance(file, dict):
            raise BadRequest(f"'{where}' must be an object", param=where)
        data, file_id = file.get("file_data"), file.get("file_id")
        filename = file.get("filename")
        guessed = mimetypes.guess_type(filename)[0] if isinstance(filename, str) else None
        if isinstance(data, str) and data:
            url = data if data.startswith("data:") else f"data:{guessed or 'application/pdf'};base64,{data}"
            return media_part(url, f"{where}.file_data", self._vertex, guessed or "application/pdf")
        if isinstance(file_id, str) and "://" in file_id:
            return media_part(file_id, f"{where}.file_id", self._vertex, guessed or "application/pdf")
        raise BadRequest(
            f"'{where}' needs 'file_data' (base64) or a 'file_id' that is a gs:// or https:// URI", param=where
        )

    def _assistant_parts(self, message: JSON, where: str) -> list[JSON]:
        parts = _text_parts(message.get("content"), f"{where}.content", allow_refusal=True)
        calls = message.get("tool_calls")
        legacy = message.get("function_call")
        if isinstance(legacy, dict) and not calls:
            calls = [{"id": "", "type": "function", "function": legacy}]
        if calls is None:
            return parts
        if not isinstance(calls, list):
            raise BadRequest(f"'{where}.tool_calls' must be an array", param=f"{where}.tool_calls")
        for j, call in enumerate(calls):
            parts.append(self._function_call(call, f"{where}.tool_calls[{j}]"))
        return parts

    def _function_call(self, call: object, where: str) -> JSON:
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict) or not isinstance(name, str) or not name:
            raise BadRequest(f"'{where}' must be a function tool call with a name", param=where)
        raw = function.get("arguments") or "{}"
        try:
            args = orjson.loads(raw) if isinstance(raw, str) else raw
        except orjson.JSONDecodeError:
            raise BadRequest(f"'{where}.function.arguments' is not valid JSON", param=f"{where}.function.arguments")
        if not isinstance(args, dict):
            raise BadRequest(f"'{where}.function.arguments' must be a JSON object", param=f"{where}.function.arguments")
        part: JSON = {"functionCall": {"name": name, "args": args}}
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            self._call_names[call_id] = name
            signature = split_call_id(call_id)[1]
            if signature is not None:
                part["thoughtSignature"] = signature
        return part

    def _function_response(self, message: JSON, where: str) -> JSON:
        if message.get("role") == "function":
            name = message.get("name")
        else:
            call_id = message.get("tool_call_id")
            name = self._call_names.get(call_id) if isinstance(call_id, str) else None
            if name is None:
                raise BadRequest(
                    f"'{where}.tool_call_id' {call_id!r} does not match a tool call of an earlier "
                    "assistant message (Gemini needs the function name)",
                    param=f"{where}.tool_call_id",
                )
        if not isinstance(name, str) or not name:
            raise BadRequest(f"'{where}.name' is required", param=f"{where}.name")
        response: JSON = {"name": name, "response": _response_object(message.get("content"), where)}
        call_id = message.get("tool_call_id")
        google_id = google_call_id(split_call_id(call_id)[0]) if isinstance(call_id, str) else None
        if google_id is not None:
            response["id"] = google_id
        return {"functionResponse": response}


def _response_object(content: object, where: str) -> JSON:
    """A tool result as the JSON object Gemini requires."""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise BadRequest(f"'{where}.content' must be a string or text parts", param=f"{where}.content")
    try:
        value: object = orjson.loads(content)
    except orjson.JSONDecodeError:
        value = content
    return value if isinstance(value, dict) else {"output": value}


def _text_parts(content: object, where: str, allow_refusal: bool = False) -> list[JSON]:
    """Text-only content (system and assistant messages) as Gemini text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(f"'{where}' must be a string or an array of text parts", param=where)
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        key = "refusal" if kind == "refusal" and allow_refusal else "text" if kind == "text" else None
        text = part.get(key) if key and isinstance(part, dict) else None
        if not isinstance(text, str):
            raise BadRequest(f"'{where}[{j}]' must be a text part", param=f"{where}[{j}]")
        if text:
            parts.append({"text": text})
    return parts


def media_part(url: str, where: str, vertex: bool, default_mime: str) -> JSON:
    """`inlineData` for a base64 data URL, `fileData` for a URI the API can read itself."""
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        if not sep or not header.endswith(";base64") or not header[:-7]:
            raise BadRequest(f"'{where}' must be a base64 data URL (data:<mime type>;base64,<data>)", param=where)
        data = data.strip()
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"'{where}' is not valid base64", param=where)
        return {"inlineData": {"mimeType": header[:-7], "data": data}}
    scheme = url.partition(":")[0].lower()
    if scheme in ("http", "https") or (scheme == "gs" and vertex):
        mime = mimetypes.guess_type(urlsplit(url).path)[0] or default_mime
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    if scheme == "gs":
        raise BadRequest(
            f"'{where}': the Gemini API does not read gs:// URIs directly; register the object with "
            "the Gemini Files API and send its URI, send the bytes as a base64 data URL, or use a "
            "google-vertex account",
            param=where,
        )
    raise BadRequest(f"'{where}' must be a base64 data URL or an http(s) URL", param=where)


def _tools(tools: object, functions: object) -> list[JSON]:
    declarations: list[JSON] = []
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("'tools' must be an array", param="tools")
    for i, tool in enumerate(tools or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise BadRequest(
                f"'tools[{i}].type' {kind!r} is not supported by Gemini (function tools only)", param=f"tools[{i}].type"
            )
        declarations.append(_declaration(tool.get("function"), f"tools[{i}].function"))
    for i, function in enumerate(functions if isinstance(functions, list) else []):
        declarations.append(_declaration(function, f"functions[{i}]"))
    return [{"functionDeclarations": declarations}] if declarations else []


def _declaration(function: object, where: str) -> JSON:
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(name, str) or not name:
        raise BadRequest(f"'{where}.name' is required", param=f"{where}.name")
    declaration: JSON = {"name": name}
    if isinstance(function.get("description"), str):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    if parameters is not None:
        schema = to_gemini_schema(parameters, f"{where}.parameters")
        # Gemini refuses an OBJECT without properties; a function without parameters omits them.
        if schema.get("type") != "OBJECT" or schema.get("properties"):
            declaration["parameters"] = schema
    return declaration


def _function_calling(choice: object) -> JSON:
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"mode": modes[choice]}
    if isinstance(choice, dict):
        function = choice.get("function") if choice.get("type") == "function" else choice
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"mode": "ANY", "allowedFunctionNames": [name]}
        allowed = choice.get("allowed_tools") if choice.get("type") == "allowed_tools" else None
        if isinstance(allowed, dict) and allowed.get("mode") in ("auto", "required"):
            names = [
                t["function"]["name"]
                for t in allowed.get("tools") or ()
                if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
            ]
            # VALIDATED: calls restricted to the names, but the model may also answer in text.
            return {"mode": "ANY" if allowed["mode"] == "required" else "VALIDATED", "allowedFunctionNames": names}
    raise BadRequest("'tool_choice' must be auto, none, required or a named function", param="tool_choice")


def _generation_config(payload: JSON, include_thoughts: bool) -> JSON:
    config: JSON = {}
    limit = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise BadRequest("'max_tokens' must be a positive integer", param="max_tokens")
        config["maxOutputTokens"] = limit
    for source, name in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = payload.get(source)
        if value is not None:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise BadRequest(f"'{source}' must be a number", param=source)
            config[name] = value
    stop = payload.get("stop")
    if stop is not None:
        sequences = [stop] if isinstance(stop, str) else stop
        if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
            raise BadRequest("'stop' must be a string or an array of strings", param="stop")
        if sequences:
            config["stopSequences"] = sequences
    n = payload.get("n")
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise BadRequest("'n' must be a positive integer", param="n")
        if n > 1:
            config["candidateCount"] = n
    config.update(_response_format(payload.get("response_format")))
    config.update(logprobs_config(payload))
    effort = payload.get("reasoning_effort")
    if effort is not None:
        if effort not in THINKING_BUDGETS:
            raise BadRequest("'reasoning_effort' must be none, minimal, low, medium or high", param="reasoning_effort")
        model = str(payload.get("model") or "")
        thinking: JSON = (
            {"thinkingLevel": THINKING_LEVELS[effort]}
            if "gemini-3" in model
            else {"thinkingBudget": THINKING_BUDGETS[effort]}
        )
        if include_thoughts and effort != "none":
            thinking["includeThoughts"] = True
        config["thinkingConfig"] = thinking
    return config


def _response_format(value: object) -> JSON:
    if value is None:
        return {}
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema" and isinstance(value, dict):
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None:
            return {"responseMimeType": "application/json"}
        converted = to_gemini_schema(schema, "response_format.json_schema.schema")
        if converted.get("type") == "OBJECT" and not converted.get("properties"):
            return {"responseMimeType": "application/json"}  # any object: Gemini refuses an empty OBJECT
        return {"responseMimeType": "application/json", "responseSchema": converted}
    raise BadRequest("'response_format.type' must be text, json_object or json_schema", param="response_format")
