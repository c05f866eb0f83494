"""The route table: each path leads to its handler, its methods and its error renderer.

Every OpenAI-compatible operation and the Messages API are served under `/api/llm`, `/api/llm/v1` and
`/v1`; exact paths are one dict lookup (trailing slashes accepted), and the three path families with
ids in them (custom endpoints, retrieve-model, stateful resources) are matched by prefix after that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relaygate.dialects.anthropic_messages import ANTHROPIC_MESSAGES
from relaygate.dialects.openai import OPENAI
from relaygate.handlers import llm, mcp, messages, meta, proxy, resources
from relaygate.http.dispatch import API_PREFIXES, PROXY_PREFIX, PROXY_ROUTE_METHODS, model_path_id
from relaygate.providers.base import MESSAGES, MESSAGES_COUNT_TOKENS, OPERATIONS

if TYPE_CHECKING:
    from relaygate.errors import GatewayError
    from relaygate.http.types import RawHeaders, Send
    from relaygate.pipeline.call import Call

Handler = Callable[["Call"], Awaitable[None]]
ErrorRenderer = Callable[["Send", "GatewayError", "RawHeaders"], Awaitable[None]]
_POST = frozenset({"POST"})
_GET = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Route:
    """What a path leads to."""

    handler: Handler
    methods: frozenset[str]
    render_error: ErrorRenderer = OPENAI.send_error  # the OpenAI error shape unless the route's API has its own
    logged: bool = False  # a finished-request record is written (every API call; not health or metrics)
    template: str = ""  # the path template metrics and spans name the route by (never the raw path)


class Routes:
    """Path -> `Route`, built once per process; `mounts` serve whole path prefixes (the admin API, the
    dashboard), given by the app so this layer never imports them."""

    def __init__(self, mounts: dict[str, Route] | None = None) -> None:
        self.mounts = tuple((mounts or {}).items())
        exact: dict[str, Route] = {}
        for prefix in API_PREFIXES:
            for op in OPERATIONS:
                exact[prefix + op.path] = Route(llm.handler_for(op), _POST, logged=True, template=prefix + op.path)
            exact[prefix + "models"] = Route(meta.models, _GET)
            for op in (MESSAGES, MESSAGES_COUNT_TOKENS):
                exact[prefix + op.path] = Route(
                    messages.handler_for(op),
                    _POST,
                    ANTHROPIC_MESSAGES.send_error,
                    logged=True,
                    template=prefix + op.path,
                )
        exact["/health"] = Route(meta.health, _GET)
        exact["/ready"] = Route(meta.ready, _GET)
        exact["/metrics"] = Route(meta.metrics, _GET)
        for path in list(exact):
            exact[path + "/"] = exact[path]
        self.exact = exact
        self.proxy = Route(
            proxy.handle, PROXY_ROUTE_METHODS, logged=True, template=PROXY_PREFIX + "{account}/{endpoint}/{path}"
        )
        self.model = Route(meta.model, _GET)
        self.resource = Route(resources.handle, resources.RESOURCE_METHODS, logged=True, template="/api/llm/{resource}")
        self.mcp = Route(mcp.handle, mcp.METHODS, mcp.send_error, logged=True, template=mcp.TEMPLATE)

    def match(self, path: str) -> Route | None:
        """The route serving `path`, or None (404)."""
        route = self.exact.get(path)
        if route is not None:
            return route
        if path.startswith(PROXY_PREFIX):
            return self.proxy
        if model_path_id(path) is not None:
            return self.model
        if mcp.server_name(path) is not None:
            return self.mcp
        if resources.resource_path(path) is not None:
            return self.resource
        for prefix, route in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                return route
        return None

    def prefix_hint(self, path: str) -> str:
        """'; did you mean /api/llm/<path> (or /v1/<path>)?' when the path is an API route missing its prefix."""
        found = [
            prefix + path
            for prefix in ("/api/llm", "/v1")
            if prefix + path in self.exact
            or model_path_id(prefix + path) is not None
            or resources.resource_path(prefix + path) is not None
        ]
        if not found:
            return ""
        return (
            f"; did you mean {found[0]}"
            + (f" (or {found[1]})" if len(found) > 1 else "")
            + "? API paths start with /api/llm, /api/llm/v1 or /v1"
        )
