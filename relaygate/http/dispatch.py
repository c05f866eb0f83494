"""Path shapes the gateway serves: the API prefixes, the proxy prefix, the retrieve-model path."""

from __future__ import annotations

API_PREFIXES = ("/api/llm/v1/", "/api/llm/", "/v1/")
PROXY_PREFIX = "/proxy-api/"
PROXY_ROUTE_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def model_path_id(path: str) -> str | None:
    """The model id of `{prefix}models/{account}/{integration}` (OpenAI's retrieve-model), else None."""
    for prefix in API_PREFIXES:
        start = prefix + "models/"
        if path.startswith(start) and len(path) > len(start):
            return path[len(start) :].rstrip("/")
    return None
