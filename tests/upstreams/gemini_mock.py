"""A wire-faithful mock of the Gemini API and of Gemini on Vertex AI (plus Google's OAuth token endpoint).

Routes (POST):
- `/v1beta/models/{model}:generateContent | :streamGenerateContent | :batchEmbedContents | :countTokens` — the
  Gemini API; the key goes in `x-goog-api-key` (or `?key=`): missing -> 403 PERMISSION_DENIED, wrong -> 400
  INVALID_ARGUMENT with reason API_KEY_INVALID, as Google answers.
- `/v1/projects/{p}/locations/{r}/publishers/google/models/{model}:generateContent |
  :streamGenerateContent | :predict | :countTokens` — Vertex AI; `Authorization: Bearer <token>` must be a token this
  mock's `/token` issued (and not expired) or `static_bearer`; else 401 UNAUTHENTICATED. A project or
  region other than the configured one -> 403 PERMISSION_DENIED.
- `/token` — the service-account JWT-bearer exchange: the RS256 assertion is verified against the public
  key registered for its `iss`, with `aud` = Google's token endpoint and the cloud-platform scope.

Requests are validated the way Google does where it matters to a translator: unknown fields ("Cannot
find field"), empty OBJECT schemas, function-response counts, thought signatures on Gemini 3 models,
gs:// URIs on the Gemini API. `countTokens` takes what each API takes (see `counted_request`: the Gemini
API a `generateContentRequest` whose model is `models/...`, or bare `contents`, never both; Vertex the
GenerateContentRequest fields themselves) and answers `totalTokens` as `promptTokenCount` would count that
prompt (`prompt_tokens`; Vertex adds `totalBillableCharacters`). Streams are SSE
(`data: <GenerateContentResponse>\\r\\n\\r\\n`), or a JSON array without `alt=sse`.

Behaviour is chosen by the last user text: "blocked prompt" -> promptFeedback SAFETY (no candidates);
"unsafe" -> finishReason SAFETY; with tools declared, "weather"/"use tool" (or mode ANY) -> function
calls ("parallel": two); "think" -> thoughtsTokenCount (and a thought part with includeThoughts);
"cached" -> cachedContentTokenCount; "snake case" -> the answer uses the proto field names
(`usage_metadata`, `finish_reason`, ...), which Google's JSON mapping also produces. Gemini 3 models name
their function calls (`functionCall.id`, see `call_id_for`), as the real ones always do. Otherwise the
answer is `reply_text(...)`. Injection: `fail_next(...)`, `fail_stream_after(n)`, `drop_stream_after(n)`,
`chunk_delay`, `revoke_tokens()` (issued access tokens stop working); `token_lifetime=None` answers the
token exchange without `expires_in`.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.upstreams.mock_upstream import Fault, MockUpstream
from tests.upstreams.openai_mock import (
    RecordedRequest,
    count_tokens,
    embedding_vector,
    record_request,
    split_pieces,
)

JSON = dict[str, Any]
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# google-auth signs its assertions for Google's token endpoint whatever the key's token_uri says.
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
THOUGHT_TOKENS = 7
CACHED_TOKENS = 3
IMAGE_TOKENS = 258  # what Gemini counts per image


def reply_text(user_text: str, media: list[str] | None = None) -> str:
    """The mock's answer to a plain prompt (media: descriptions of the non-text parts it received)."""
    return "echo: " + user_text + "".join(f" [{m}]" for m in media or [])


def service_account_key(token_uri: str, project_id: str = "mock-project") -> tuple[JSON, bytes]:
    """A fresh service-account key file (as a dict) pointing at `token_uri`, and its public key PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    email = f"relaygate-test-{secrets.token_hex(3)}@{project_id}.iam.gserviceaccount.com"  # one account per key
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": email,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    return info, public_pem


# ---------------------------------------------------------------------------------------------------
# Google's error shapes.

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
UNREGISTERED_CALLER = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def google_error(
    status: int, message: str | None = None, google_status: str | None = None, details: list[JSON] | None = None
) -> JSON:
    """Google's error body: `{"error": {"code", "message", "status", "details"?}}`."""
    error: JSON = {
        "code": status,
        "message": message or DEFAULT_MESSAGES.get(status, "Unknown error."),
        "status": google_status or GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return {"error": error}


def invalid_key_error(key: str) -> JSON:
    """What the Gemini API answers to a wrong key (its DebugInfo quotes the key)."""
    message = "API key not valid. Please pass a valid API key."
    return google_error(
        400,
        message,
        "INVALID_ARGUMENT",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message},
            {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": f"Invalid API key: {key}"},
        ],
    )


# ---------------------------------------------------------------------------------------------------
# Routes and request validation.


@dataclass(frozen=True)
class GeminiRoute:
    vertex: bool
    model: str
    method: str
    project: str = ""
    region: str = ""


_GEMINI_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>\w+)$")
_VERTEX_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/publishers/google/"
    r"models/(?P<model>[^/:]+):(?P<method>\w+)$"
)
_TOP_LEVEL = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"}
)
_PART_DATA = frozenset(
    {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"}
)
_PART_META = frozenset({"thought", "thoughtSignature", "videoMetadata"})
_GENERATION = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "thinkingConfig",
        "responseModalities",
        "mediaResolution",
    }
)
_SCHEMA = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "minimum",
        "maximum",
    }
)
_SCHEMA_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
_MODES = frozenset({"AUTO", "ANY", "NONE", "VALIDATED"})


def match_route(path: str) -> GeminiRoute | None:
    found = _GEMINI_PATH.match(path)
    if found:
        return GeminiRoute(False, found["model"], found["method"])
    found = _VERTEX_PATH.match(path)
    if found:
        return GeminiRoute(True, found["model"], found["method"], found["project"], found["region"])
    return None


def _unknown(name: str, at: str) -> str:
    return f"Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."


def validate_generate(body: JSON, route: GeminiRoute) -> str | None:
    """Google's 400 message for a GenerateContentRequest, or None when it is acceptable."""
    for key in body:
        if key not in _TOP_LEVEL and not (route.vertex and key == "labels"):
            return f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified\n"
    pending_calls = 0
    for i, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            return "Please use a valid role: user, model."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
        problem = _validate_parts(parts, f"contents[{i}]", route, role)
        if problem:
            return problem
        responses = sum(1 for p in parts if "functionResponse" in p)
        if responses and responses != pending_calls:
            return (
                "Please ensure that the number of function response parts is equal to the number of function "
                "call parts of the function call turn."
            )
        pending_calls = sum(1 for p in parts if "functionCall" in p)
    system = body.get("systemInstruction")
    if system is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        if not isinstance(parts, list) or not all(isinstance(p, dict) and set(p) == {"text"} for p in parts):
            return "* GenerateContentRequest.system_instruction: only text parts are supported.\n"
    return _validate_tools(body) or _validate_generation(body.get("generationConfig"))


_VERTEX_COUNT_FIELDS = frozenset({"model", "instances", "contents", "systemInstruction", "tools", "generationConfig"})


def counted_request(body: JSON, route: GeminiRoute) -> tuple[JSON, str | None]:
    """(the GenerateContentRequest a countTokens body counts, Google's 400 message or None).

    Gemini API: `CountTokensRequest` is `contents` or `generateContentRequest` (with its `model`, which must
    be a `models/...` name), not both. Vertex AI: the GenerateContentRequest fields at the top level, plus
    `model` and `instances`.
    """
    if route.vertex:
        for key in body:
            if key not in _VERTEX_COUNT_FIELDS:
                return {}, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
        inner = {k: v for k, v in body.items() if k not in ("model", "instances")}
    else:
        for key in body:
            if key not in ("contents", "generateContentRequest"):
                return {}, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
        if "generateContentRequest" not in body:
            inner = {"contents": body.get("contents")}
        elif "contents" in body:
            return {}, "* CountTokensRequest: contents and generate_content_request cannot both be set.\n"
        else:
            request = body["generateContentRequest"]
            if not isinstance(request, dict):
                return {}, "Invalid value at 'generate_content_request': expected an object."
            model = request.get("model")
            if not isinstance(model, str) or not model.startswith("models/") or model == "models/":
                return {}, "* GenerateContentRequest.model: unexpected model name format\n"
            inner = {k: v for k, v in request.items() if k != "model"}
    return inner, validate_generate(inner, route)


def _validate_parts(parts: list[Any], where: str, route: GeminiRoute, role: str) -> str | None:
    first_call = True
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        if not isinstance(part, dict):
            return f"Invalid value at '{at}': expected an object."
        for key in part:
            if key not in _PART_DATA | _PART_META:
                return _unknown(key, at)
        data = [k for k in part if k in _PART_DATA]
        if len(data) != 1:
            return f"* GenerateContentRequest.{at}.data: required oneof field 'data' must have one initialized field\n"
        value = part[data[0]]
        if data[0] == "inlineData":
            try:
                base64.b64decode(value["data"], validate=True)
                assert isinstance(value["mimeType"], str) and set(value) == {"mimeType", "data"}
            except Exception:
                return f"Invalid value at '{at}.inline_data' (data must be base64 with a mimeType)."
        elif data[0] == "fileData":
            uri = value.get("fileUri", "") if isinstance(value, dict) else ""
            if not isinstance(value, dict) or not value.get("mimeType") or not uri:
                return f"* GenerateContentRequest.{at}.file_data: file_uri and mime_type are required.\n"
            if uri.startswith("gs://") and not route.vertex:
                return f"Unsupported file uri: {uri}"
        elif data[0] == "functionCall":
            if not isinstance(value.get("name"), str) or not isinstance(value.get("args", {}), dict):
                return f"* GenerateContentRequest.{at}.function_call: name and object args are required.\n"
            if route.model.startswith("gemini-3") and first_call and "thoughtSignature" not in part:
                return (
                    "Function call is missing a thought_signature in functionCall parts. This is required for "
                    "tools to work correctly. Please refer to https://ai.google.dev/gemini-api/docs/"
                    "thought-signatures for more details."
                )
            first_call = False
        elif data[0] == "functionResponse":
            if not isinstance(value.get("name"), str) or not isinstance(value.get("response"), dict):
                return f"* GenerateContentRequest.{at}.function_response: name and object response are required.\n"
        elif data[0] == "text" and not isinstance(value, str):
            return f"Invalid value at '{at}.text': expected a string."
    return None


def _validate_tools(body: JSON) -> str | None:
    for i, tool in enumerate(body.get("tools") or []):
        for key in tool:
            if key not in ("functionDeclarations", "googleSearch", "codeExecution", "urlContext"):
                return _unknown(key, f"tools[{i}]")
        for j, decl in enumerate(tool.get("functionDeclarations") or []):
            at = f"tools[{i}].function_declarations[{j}]"
            for key in decl:
                if key not in ("name", "description", "parameters", "response", "parametersJsonSchema"):
                    return _unknown(key, at)
            if not decl.get("name"):
                return f"* GenerateContentRequest.{at}.name: Name cannot be empty.\n"
            if "parameters" in decl:
                problem = _validate_schema(decl["parameters"], f"{at}.parameters")
                if problem:
                    return problem
    config = (body.get("toolConfig") or {}).get("functionCallingConfig")
    if config is not None and not any(t.get("functionDeclarations") for t in body.get("tools") or []):
        return "Function calling config is set without function_declarations."
    if config is not None:
        mode = config.get("mode", "AUTO")
        if mode not in _MODES:
            return (
                f"Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/"
                f'google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "{mode}"'
            )
        if config.get("allowedFunctionNames") and mode not in ("ANY", "VALIDATED"):
            return (
                "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                "allowed_function_names should be set only when function calling mode is ANY.\n"
            )
    return None


def _validate_schema(schema: Any, at: str) -> str | None:
    if not isinstance(schema, dict):
        return f"Invalid value at '{at}': expected a Schema object."
    for key in schema:
        if key not in _SCHEMA:
            return _unknown(key, at)
    if "type" in schema and schema["type"] not in _SCHEMA_TYPES:
        return (
            f"Invalid value at '{at}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), "
            f'"{schema["type"]}"'
        )
    if schema.get("type") == "OBJECT" and not schema.get("properties"):
        return f"* GenerateContentRequest.{at}.properties: should be non-empty for OBJECT type\n"
    if schema.get("type") == "ARRAY" and "items" not in schema:
        return f"* GenerateContentRequest.{at}.items: missing field.\n"
    if "enum" in schema and not all(isinstance(v, str) for v in schema["enum"]):
        return f"Invalid value at '{at}.enum': enum values must be strings."
    for name, sub in (schema.get("properties") or {}).items():
        problem = _validate_schema(sub, f"{at}.properties[{name}].value")
        if problem:
            return problem
    for key in ("items",):
        if key in schema:
            problem = _validate_schema(schema[key], f"{at}.{key}")
            if problem:
                return problem
    for k, sub in enumerate(schema.get("anyOf") or []):
        problem = _validate_schema(sub, f"{at}.any_of[{k}]")
        if problem:
            return problem
    return None


def _validate_generation(config: Any) -> str | None:
    if config is None:
        return None
    for key in config:
        if key not in _GENERATION:
            return _unknown(key, "generation_config")
    if "responseSchema" in config:
        return _validate_schema(config["responseSchema"], "generation_config.response_schema")
    return None


# ---------------------------------------------------------------------------------------------------
# Answers.


def _text_of(parts: list[JSON]) -> str:
    return " ".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))


def _media_of(parts: list[JSON]) -> list[str]:
    found = []
    for part in parts:
        if "inlineData" in part:
            size = len(base64.b64decode(part["inlineData"]["data"]))
            found.append(f"{part['inlineData']['mimeType']} {size} bytes")
        elif "fileData" in part:
            found.append(f"{part['fileData']['mimeType']} {part['fileData']['fileUri']}")
    return found


def sample_args(schema: Any) -> JSON:
    """The arguments the mock calls a function with: one value per declared property."""
    args: JSON = {}
    properties = schema.get("properties") if isinstance(schema, dict) else None
    for name, sub in (properties or {}).items():
        kind = sub.get("type")
        if sub.get("enum"):
            args[name] = sub["enum"][0]
        elif kind == "INTEGER":
            args[name] = 3
        elif kind == "NUMBER":
            args[name] = 1.5
        elif kind == "BOOLEAN":
            args[name] = True
        elif kind == "ARRAY":
            args[name] = []
        elif kind == "OBJECT":
            args[name] = sample_args(sub)
        else:
            args[name] = "Paris" if name == "city" else f"{name}-value"
    return args


def call_id_for(name: str, position: int) -> str:
    """The id a Gemini 3 model gives its `position`-th function call of `name`."""
    return f"{name}-{position}-id"


def snake_keys(value: Any) -> Any:
    """`value` with API field names as proto names (`usageMetadata` -> `usage_metadata`); args kept as they are."""
    if isinstance(value, dict):
        return {
            re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): v if k == "args" else snake_keys(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def signature_for(name: str) -> str:
    """The thought signature the mock attaches to its first function call."""
    return base64.b64encode(f"sig:{name}".encode()).decode()


@dataclass
class GeminiAnswer:
    """One generated answer, shaped whole (generateContent) or as stream events."""

    route: GeminiRoute
    response_id: str
    count: int  # candidates
    thought: str | None
    pieces: list[str]
    calls: list[JSON]
    finish: str
    prompt_tokens: int
    completion_tokens: int
    thoughts_tokens: int
    cached_tokens: int | None
    blocked: bool = False
    snake: bool = False  # answer with proto field names
    logprobs: int | None = None  # generationConfig.responseLogprobs: top candidates per step (0: chosen only)

    @property
    def usage(self) -> dict[str, int]:
        usage = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens + self.thoughts_tokens,
            "reasoning_tokens": self.thoughts_tokens,
        }
        if self.cached_tokens is not None:
            usage["cached_tokens"] = self.cached_tokens
        return usage

    def usage_metadata(self, final: bool = True) -> JSON:
        if not final:
            return (
                {"trafficType": "ON_DEMAND"}
                if self.route.vertex
                else {"promptTokenCount": self.prompt_tokens, "totalTokenCount": self.prompt_tokens}
            )
        total = self.prompt_tokens + (0 if self.blocked else self.completion_tokens + self.thoughts_tokens)
        meta: JSON = {"promptTokenCount": self.prompt_tokens}
        if not self.blocked:
            meta["candidatesTokenCount"] = self.completion_tokens
        meta["totalTokenCount"] = total
        if self.cached_tokens is not None:
            meta["cachedContentTokenCount"] = self.cached_tokens
        meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
        if self.thoughts_tokens:
            meta["thoughtsTokenCount"] = self.thoughts_tokens
        if self.route.vertex:
            meta["trafficType"] = "ON_DEMAND"
        return meta

    def _envelope(self, body: JSON) -> JSON:
        body["modelVersion"] = self.route.model
        if self.route.vertex:
            body["createTime"] = "2025-06-01T12:00:00.000000Z"
        body["responseId"] = self.response_id
        return snake_keys(body) if self.snake else body

    def _candidates(self, parts: list[JSON], finish: str | None) -> list[JSON]:
        out = []
        for index in range(self.count):
            candidate: JSON = {}
            if parts:
                candidate["content"] = {"role": "model", "parts": parts}
            if finish:
                candidate["finishReason"] = finish
            if finish == "SAFETY":
                candidate["safetyRatings"] = _SAFETY_RATINGS
            texts = [p["text"] for p in parts if "text" in p and not p.get("thought")]
            if self.logprobs is not None and texts:
                candidate["logprobsResult"] = logprobs_result("".join(texts).split(" "), self.logprobs)
            if self.count > 1 or not self.route.vertex:
                candidate["index"] = index
            out.append(candidate)
        return out

    def _parts(self) -> list[JSON]:
        parts: list[JSON] = [{"text": self.thought, "thought": True}] if self.thought else []
        if self.pieces:
            parts.append({"text": "".join(self.pieces)})
        return parts + [self._call_part(i, c) for i, c in enumerate(self.calls)]

    def _call_part(self, position: int, call: JSON) -> JSON:
        if self.route.model.startswith("gemini-3"):
            call = {"id": call_id_for(call["name"], position), **call}
        part: JSON = {"functionCall": call}
        if position == 0:
            part["thoughtSignature"] = signature_for(call["name"])
        return part

    def whole(self) -> JSON:
        if self.blocked:
            return self._envelope(
                {
                    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS},
                    "usageMetadata": self.usage_metadata(),
                }
            )
        return self._envelope(
            {"candidates": self._candidates(self._parts(), self.finish), "usageMetadata": self.usage_metadata()}
        )

    def chunks(self) -> list[JSON]:
        if self.blocked:
            return [self.whole()]
        events: list[list[JSON]] = []
        if self.thought:
            events.append([{"text": self.thought, "thought": True}])
        events.extend([{"text": piece}] for piece in self.pieces)
        if self.calls:
            events.append([self._call_part(i, c) for i, c in enumerate(self.calls)])
        if not events:
            events.append([])
        out = []
        for position, parts in enumerate(events):
            last = position == len(events) - 1
            out.append(
                self._envelope(
                    {
                        "candidates": self._candidates(parts, self.finish if last else None),
                        "usageMetadata": self.usage_metadata(final=last),
                    }
                )
            )
        return out


def token_logprob(token: str, rank: int = 0) -> float:
    """The log probability the mock reports for a token (its `rank`-th alternative is less likely)."""
    return -0.01 * len(token) - rank


def logprobs_result(tokens: list[str], top: int) -> JSON:
    """Gemini's `logprobsResult` for these decoding steps: the chosen token, and `top` alternatives
    (the token itself first, then `<token>~1`, `<token>~2`...)."""
    result: JSON = {
        "chosenCandidates": [
            {"token": t, "tokenId": i, "logProbability": token_logprob(t)} for i, t in enumerate(tokens)
        ],
        "logProbabilitySum": sum(token_logprob(t) for t in tokens),
    }
    if top:
        result["topCandidates"] = [
            {
                "candidates": [
                    {
                        "token": t if rank == 0 else f"{t}~{rank}",
                        "tokenId": rank,
                        "logProbability": token_logprob(t, rank),
                    }
                    for rank in range(top)
                ]
            }
            for t in tokens
        ]
    return result


_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]


def _prompt_parts(body: JSON) -> list[JSON]:
    return [p for c in body["contents"] for p in c["parts"]] + (
        (body.get("systemInstruction") or {}).get("parts") or []
    )


def prompt_tokens(body: JSON) -> int:
    """The mock's `promptTokenCount` for a (valid) GenerateContentRequest: words of every text part (system
    instruction included) plus `IMAGE_TOKENS` per media part. countTokens answers the same number."""
    parts = _prompt_parts(body)
    return count_tokens(_text_of(parts)) + IMAGE_TOKENS * len(_media_of(parts))


def count_answer(body: JSON, route: GeminiRoute) -> JSON:
    """The countTokens answer for a (valid) counted GenerateContentRequest."""
    parts = _prompt_parts(body)
    text, media = count_tokens(_text_of(parts)), IMAGE_TOKENS * len(_media_of(parts))
    details = [{"modality": "TEXT", "tokenCount": text}]
    if media:
        details.append({"modality": "IMAGE", "tokenCount": media})
    found: JSON = {"totalTokens": text + media, "promptTokensDetails": details}
    if route.vertex:
        found["totalBillableCharacters"] = len("".join(_text_of(parts).split()))
    return snake_keys(found) if "snake case" in _text_of(body["contents"][-1]["parts"]) else found


def answer(body: JSON, route: GeminiRoute, response_id: str) -> GeminiAnswer:
    """What the mock answers to a (valid) GenerateContentRequest."""
    contents: list[JSON] = body["contents"]
    last_parts = contents[-1]["parts"]
    text = _text_of(last_parts)
    config = body.get("generationConfig") or {}
    thinking = config.get("thinkingConfig") or {}
    prompt = prompt_tokens(body)
    thinks = "think" in text or thinking.get("thinkingBudget", 0) > 0 or "thinkingLevel" in thinking
    cached = CACHED_TOKENS if "cached" in text else None
    base: JSON = {
        "route": route,
        "response_id": response_id,
        "count": int(config.get("candidateCount", 1)),
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "thoughts_tokens": THOUGHT_TOKENS if thinks else 0,
        "thought": "Thinking it over." if thinks and thinking.get("includeThoughts") else None,
        "snake": "snake case" in text,
        "logprobs": int(config.get("logprobs", 0)) if config.get("responseLogprobs") else None,
    }
    if "blocked prompt" in text:
        return GeminiAnswer(
            **base | {"thoughts_tokens": 0, "thought": None},
            pieces=[],
            calls=[],
            finish="",
            completion_tokens=0,
            blocked=True,
        )
    if "unsafe" in text:
        return GeminiAnswer(**base, pieces=[], calls=[], finish="SAFETY", completion_tokens=0)
    declarations = {d["name"]: d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []}
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = calling.get("mode", "AUTO")
    responses = [p["functionResponse"] for p in last_parts if "functionResponse" in p]
    if not responses and declarations and mode != "NONE" and (mode == "ANY" or "weather" in text or "use tool" in text):
        names = calling.get("allowedFunctionNames") or list(declarations)
        names = names[:2] if "parallel" in text else names[:1]
        calls = [{"name": n, "args": sample_args(declarations[n].get("parameters"))} for n in names]
        return GeminiAnswer(**base, pieces=[], calls=calls, finish="STOP", completion_tokens=5 * len(calls))
    if responses:
        reply = "result: " + orjson.dumps([{"name": r["name"], "response": r["response"]} for r in responses]).decode()
    elif config.get("responseMimeType") == "application/json":
        reply = orjson.dumps({"echo": text}).decode()
    else:
        reply = reply_text(text, _media_of(last_parts))
    pieces, finish = split_pieces(reply), "STOP"
    limit = config.get("maxOutputTokens")
    if isinstance(limit, int) and 0 < limit < len(pieces):
        pieces, finish = pieces[:limit], "MAX_TOKENS"
    return GeminiAnswer(**base, pieces=pieces, calls=[], finish=finish, completion_tokens=len(pieces) * base["count"])


def embedding_inputs(body: JSON, route: GeminiRoute) -> tuple[list[str], int, str | None]:
    """(texts, dimensions, problem) of a batchEmbedContents or predict request."""
    texts: list[str] = []
    if route.vertex:
        for key in body:
            if key not in ("instances", "parameters"):
                return [], 0, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
        for instance in body.get("instances") or []:
            if not isinstance(instance, dict) or not isinstance(instance.get("content"), str):
                return [], 0, "Each instance must have a string 'content'."
            texts.append(instance["content"])
        dims = (body.get("parameters") or {}).get("outputDimensionality", 8)
    else:
        dims = 8
        for i, item in enumerate(body.get("requests") or []):
            if item.get("model") != f"models/{route.model}":
                return (
                    [],
                    0,
                    (
                        f"* BatchEmbedContentsRequest.requests[{i}].model: the model of each request must "
                        f"match the model in the URL (models/{route.model}).\n"
                    ),
                )
            texts.append(_text_of(item.get("content", {}).get("parts") or []))
            dims = item.get("outputDimensionality", dims)
    if not texts:
        return [], 0, "* BatchEmbedContentsRequest.requests: requests is not specified\n"
    return texts, int(dims), None


@dataclass
class _StreamFault:
    after_chunks: int
    remaining: int
    mode: str  # "drop" | "error"
    status: int


class GeminiMock(MockUpstream[RecordedRequest]):
    """The mock server; `api_key` guards the Gemini API routes, issued tokens the Vertex routes."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        project: str = "mock-project",
        region: str = "us-central1",
        static_bearer: str | None = None,
        token_lifetime: int | None = 3600,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.api_key = api_key
        self.project = project
        self.region = region
        self.static_bearer = static_bearer
        self.token_lifetime = token_lifetime
        self._faults: list[Fault] = []
        self._stream_faults: list[_StreamFault] = []
        self._public_keys: dict[str, Any] = {}
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    def register_service_account(self, email: str, public_pem: bytes) -> None:
        """Accept JWT assertions signed by this account's key at /token."""
        self._public_keys[email] = serialization.load_pem_public_key(public_pem)

    def new_service_account(self) -> JSON:
        """A key file for a fresh account registered with this mock (its token_uri is this mock)."""
        info, public_pem = service_account_key(self.token_uri, self.project)
        self.register_service_account(info["client_email"], public_pem)
        return info

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def revoke_tokens(self) -> None:
        """Make every access token issued so far invalid (Vertex answers 401 to them)."""
        with self._lock:
            self._tokens.clear()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._faults.clear()
            self._stream_faults.clear()

    def fail_next(
        self,
        status: int,
        *,
        message: str | None = None,
        google_status: str | None = None,
        details: list[JSON] | None = None,
        body: bytes | None = None,
        count: int = 1,
        path: str | None = None,
    ) -> None:
        """Answer the next `count` requests (whose path ends with `path`) with a Google error."""
        raw = body if body is not None else orjson.dumps(google_error(status, message, google_status, details))
        with self._lock:
            self._faults.append(Fault(status, raw, count, path=path))

    def fail_stream_after(self, chunks: int, *, status: int = 500, count: int = 1) -> None:
        """Send a Google error event after `chunks` stream events, then end the stream."""
        with self._lock:
            self._stream_faults.append(_StreamFault(chunks, count, "error", status))

    def drop_stream_after(self, chunks: int, *, count: int = 1) -> None:
        """Close the connection after `chunks` stream events."""
        with self._lock:
            self._stream_faults.append(_StreamFault(chunks, count, "drop", 0))

    # -- HTTP -----------------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        return await record_request(request)

    async def _answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if request.method == "POST" and request.path == "/token":
            return self._token(recorded)
        route = match_route(request.path)
        if request.method != "POST" or route is None:
            return self._error(recorded, 404, f"The requested URL {request.path} was not found on this server.")
        fault = self._take(self._faults, lambda f: f.matches(request.path))
        if fault is not None:
            recorded.status = fault.status
            return fault.response()
        denied = self._check_auth(request, route)
        if denied is not None:
            recorded.status = denied[0]
            return web.Response(status=denied[0], body=orjson.dumps(denied[1]), content_type="application/json")
        if not isinstance(recorded.json, dict):
            return self._error(recorded, 400, "Invalid JSON payload received. Expected an object.")
        if route.method in ("batchEmbedContents", "predict"):
            return self._embeddings(recorded, route)
        if route.method == "countTokens":
            return self._count_tokens(recorded, route)
        if route.method not in ("generateContent", "streamGenerateContent"):
            return self._error(recorded, 404, f"Method {route.method} is not found.", "NOT_FOUND")
        problem = validate_generate(recorded.json, route)
        if problem is not None:
            return self._error(recorded, 400, problem)
        if route.model.startswith("missing"):
            return self._error(
                recorded,
                404,
                f"models/{route.model} is not found for API version v1beta, or is not "
                "supported for generateContent. Call ListModels to see the list of available models "
                "and their supported methods.",
            )
        generated = answer(recorded.json, route, f"mock-{next(self._ids):06d}")
        recorded.usage = generated.usage
        if route.method == "generateContent":
            return self._json(recorded, generated.whole())
        if request.query.get("alt") != "sse":
            return self._json(recorded, generated.chunks())
        return await self._sse(request, recorded, generated.chunks())

    def _check_auth(self, request: web.Request, route: GeminiRoute) -> tuple[int, JSON] | None:
        if not route.vertex:
            if self.api_key is None:
                return None
            key = request.headers.get("x-goog-api-key") or request.query.get("key")
            if not key:
                return 403, google_error(403, UNREGISTERED_CALLER)
            if key != self.api_key:
                return 400, invalid_key_error(key)
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._lock:
            expiry = self._tokens.get(token)
        valid = (token == self.static_bearer and token) or (expiry is not None and expiry > time.monotonic())
        if scheme.lower() != "bearer" or not valid:
            return 401, google_error(401, INVALID_CREDENTIALS)
        if route.project != self.project or route.region != self.region:
            resource = f"projects/{route.project}/locations/{route.region}/publishers/google/models/{route.model}"
            return 403, google_error(
                403,
                f"Permission 'aiplatform.endpoints.predict' denied on resource "
                f"'//aiplatform.googleapis.com/{resource}' (or it may not exist).",
            )
        return None

    def _token(self, recorded: RecordedRequest) -> web.Response:
        form = {k: v[0] for k, v in parse_qs(recorded.body.decode()).items()}
        claims = None
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            claims = self._verified_claims(form.get("assertion", ""))
        if claims is None:
            recorded.status = 400
            error = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            return web.Response(status=400, body=orjson.dumps(error), content_type="application/json")
        token = f"ya29.mock-{next(self._ids)}-{secrets.token_hex(8)}"
        with self._lock:
            self._tokens[token] = time.monotonic() + (self.token_lifetime or 3600)
        grant: JSON = {"access_token": token, "token_type": "Bearer"}
        if self.token_lifetime is not None:
            grant["expires_in"] = self.token_lifetime
        return self._json(recorded, grant)

    def _verified_claims(self, assertion: str) -> JSON | None:
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            claims = orjson.loads(_b64url(claims_b64))
            header = orjson.loads(_b64url(header_b64))
            key = self._public_keys[claims["iss"]]
            key.verify(
                _b64url(signature_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:  # any malformed or badly signed assertion is an invalid grant
            return None
        fresh = claims.get("exp", 0) > time.time() and header.get("alg") == "RS256"
        ok = fresh and claims.get("aud") == TOKEN_AUDIENCE and SCOPE in str(claims.get("scope", "")).split()
        return claims if ok else None

    def _count_tokens(self, recorded: RecordedRequest, route: GeminiRoute) -> web.Response:
        counted, problem = counted_request(recorded.json, route)
        if problem is not None:
            return self._error(recorded, 400, problem)
        if route.model.startswith("missing"):
            return self._error(
                recorded,
                404,
                f"models/{route.model} is not found for API version v1beta, or is not "
                "supported for countTokens. Call ListModels to see the list of available models and "
                "their supported methods.",
            )
        recorded.usage = {"prompt_tokens": prompt_tokens(counted)}
        return self._json(recorded, count_answer(counted, route))

    def _embeddings(self, recorded: RecordedRequest, route: GeminiRoute) -> web.Response:
        body = recorded.json
        if route.vertex != (route.method == "predict"):
            return self._error(recorded, 404, f"Method {route.method} is not found.", "NOT_FOUND")
        texts, dims, problem = embedding_inputs(body, route)
        if problem is not None:
            return self._error(recorded, 400, problem)
        tokens = sum(count_tokens(t) for t in texts)
        recorded.usage = {"prompt_tokens": tokens}
        if route.vertex:
            predictions = [
                {
                    "embeddings": {
                        "statistics": {"truncated": False, "token_count": count_tokens(t)},
                        "values": embedding_vector(t, dims),
                    }
                }
                for t in texts
            ]
            return self._json(
                recorded,
                {"predictions": predictions, "metadata": {"billableCharacterCount": sum(len(t) for t in texts)}},
            )
        return self._json(
            recorded,
            {
                "embeddings": [{"values": embedding_vector(t, dims)} for t in texts],
                "usageMetadata": {"promptTokenCount": tokens},
            },
        )

    def _json(self, recorded: RecordedRequest, payload: Any, status: int = 200) -> web.Response:
        recorded.status = status
        recorded.completed = True
        return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")

    def _error(
        self, recorded: RecordedRequest, status: int, message: str, google_status: str | None = None
    ) -> web.Response:
        return self._json(recorded, google_error(status, message, google_status), status)

    async def _sse(self, request: web.Request, recorded: RecordedRequest, chunks: list[JSON]) -> web.StreamResponse:
        fault = self._take(self._stream_faults)
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        recorded.status = 200
        await response.prepare(request)
        for index, chunk in enumerate(chunks):
            if fault is not None and index == fault.after_chunks:
                if fault.mode == "error":
                    error = google_error(fault.status, None)
                    await response.write(b"data: " + orjson.dumps(error) + b"\r\n\r\n")
                    await response.write_eof()
                elif request.transport is not None:
                    request.transport.abort()
                return response
            if index and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await response.write(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
        await response.write_eof()
        recorded.completed = True
        return response


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


__all__ = [
    "GeminiMock",
    "reply_text",
    "prompt_tokens",
    "counted_request",
    "service_account_key",
    "split_pieces",
    "call_id_for",
    "THOUGHT_TOKENS",
    "CACHED_TOKENS",
    "IMAGE_TOKENS",
]
