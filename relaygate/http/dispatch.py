"""Path tables: every OpenAI-compatible operation under `/api/llm`, `/api/llm/v1` and `/v1`."""

from __future__ import annotations

from dataclasses import dataclass

from relaygate.providers.base import MESSAGES, MESSAGES_COUNT_TOKENS, OPERATIONS, Operation

API_PREFIXES = ("/api/llm/v1/", "/api/llm/", "/v1/")
PROXY_PREFIX = "/proxy-api/"
PROXY_ROUTE_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Route:
    """What a path leads to: an LLM operation, or a named meta endpoint."""

    kind: str  # "llm" | "messages" | "resource" | "models" | "health" | "ready" | "metrics" | "proxy"
    methods: frozenset[str]
    operation: Operation | None = None


def build_routes() -> dict[str, Route]:
    """Exact-path table (one dict lookup per request); trailing slashes are accepted too."""
    routes: dict[str, Route] = {}
    post = frozenset({"POST"})
    get = frozenset({"GET", "HEAD"})
    for prefix in API_PREFIXES:
        for op in OPERATIONS:
            routes[prefix + op.path] = Route("llm", post, op)
        routes[prefix + "models"] = Route("models", get)
        routes[prefix + MESSAGES.path] = Route("messages", post, MESSAGES)
        routes[prefix + MESSAGES_COUNT_TOKENS.path] = Route("messages", post, MESSAGES_COUNT_TOKENS)
    routes["/health"] = Route("health", get)
    routes["/ready"] = Route("ready", get)
    routes["/metrics"] = Route("metrics", get)
    for path in list(routes):
        routes[path + "/"] = routes[path]
    return routes


def model_path_id(path: str) -> str | None:
    """The model id of `{prefix}models/{account}/{integration}` (OpenAI's retrieve-model), else None."""
    for prefix in API_PREFIXES:
        start = prefix + "models/"
        if path.startswith(start) and len(path) > len(start):
            return path[len(start) :].rstrip("/")
    return None
