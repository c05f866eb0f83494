"""The ASGI application: dispatch, the error boundary, and the lifespan that owns every resource.

`build_app(settings)` returns a raw ASGI callable (no framework on the hot path). Resources (the
upstream session, the log sink, the token store, the config watcher: `gateway.py`) open in lifespan
startup and close in shutdown, after uvicorn has drained in-flight requests, so the log queue flushes last.
"""

from __future__ import annotations

import gc
import logging
import os
import re

from relaygate.context import RequestContext
from relaygate.errors import GatewayError, LoopDetected, MethodNotAllowed, NotFound
from relaygate.gateway import Gateway, open_gateway
from relaygate.handlers import llm, messages, meta, proxy, resources
from relaygate.http.body import ClientDisconnected
from relaygate.http.dispatch import PROXY_PREFIX, PROXY_ROUTE_METHODS, Route, build_routes, model_path_id
from relaygate.http.headers import header
from relaygate.http.responses import send_error
from relaygate.http.types import Receive, Scope, Send
from relaygate.observe.record import finished_record
from relaygate.settings import Settings
from relaygate.upstream.session import ConnectorFactory

log = logging.getLogger("relaygate")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
__all__ = ["App", "Gateway", "app_from_env", "build_app", "open_gateway"]


class App:
    """Raw ASGI entry point: one dict lookup routes a request; every error leaves OpenAI-shaped."""

    def __init__(self, settings: Settings, *, connector_factory: ConnectorFactory | None = None) -> None:
        self.settings = settings
        self.connector_factory = connector_factory
        self.routes = build_routes()
        self.proxy_route = Route("proxy", PROXY_ROUTE_METHODS)
        self.model_route = Route("model", frozenset({"GET", "HEAD"}))
        self.resource_route = Route("resource", resources.RESOURCE_METHODS)
        self.gateway: Gateway | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.gateway = await open_gateway(self.settings, connector_factory=self.connector_factory)
                except Exception as exc:  # a config or database problem: refuse to start, say why
                    log.error("startup failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                gc.freeze()  # config and module objects are long-lived: keep them out of GC passes
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.gateway is not None:
                    await self.gateway.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self.gateway
        assert gateway is not None, "lifespan startup has not run"
        incoming = header(scope, b"x-request-id")
        if incoming is not None and _SAFE_REQUEST_ID.match(incoming.decode("latin-1")):
            request_id = incoming.decode("latin-1")
        else:
            request_id = os.urandom(12).hex()
        path: str = scope["path"]
        ctx = RequestContext(request_id, scope["method"], path)
        base_headers = [(b"x-request-id", request_id.encode("latin-1"))]
        route = self.routes.get(path)
        resource: str | None = None
        if route is None:
            if path.startswith(PROXY_PREFIX):
                route = self.proxy_route
            elif model_path_id(path) is not None:
                route = self.model_route
            elif (resource := resources.resource_path(path)) is not None:
                route = self.resource_route
        try:
            if gateway.hops.arrived(scope):
                raise LoopDetected(
                    f"request loop: {scope['method']} {path} already passed through this gateway "
                    "(its Via header names it); a base URL leads back here"
                )
            if route is None:
                raise NotFound(
                    f"no such endpoint: {scope['method']} {path}{self._prefix_hint(path)}", code="unknown_url"
                )
            if scope["method"] not in route.methods:
                raise MethodNotAllowed(f"{path} accepts {', '.join(sorted(route.methods))}")
            if route.kind == "llm":
                assert route.operation is not None
                await llm.handle(gateway, scope, receive, send, route.operation, ctx, base_headers)
            elif route.kind == "messages":
                assert route.operation is not None
                await messages.handle(gateway, scope, receive, send, route.operation, ctx, base_headers)
            elif route.kind == "resource":
                assert resource is not None
                await resources.handle(gateway, scope, receive, send, ctx, base_headers, resource)
            elif route.kind == "proxy":
                await proxy.handle(gateway, scope, receive, send, ctx, base_headers)
            elif route.kind == "model":
                await meta.model(gateway, scope, send, ctx, base_headers, model_path_id(path) or "")
            elif route.kind == "models":
                await meta.models(gateway, scope, send, ctx, base_headers)
            elif route.kind == "metrics":
                await meta.metrics(gateway, send, base_headers)
            elif route.kind == "health":
                await meta.health(send, base_headers)
            else:
                await meta.ready(gateway, send, base_headers)
        except GatewayError as exc:
            ctx.status = exc.status
            ctx.error_type = exc.type
            ctx.error_message = exc.message
            await _send_error_safely(send, exc, base_headers, route)
        except ClientDisconnected:
            ctx.status = 499
            ctx.error_type = "client_disconnected"
        except Exception:
            log.exception("unhandled error serving %s %s (request %s)", scope["method"], path, request_id)
            ctx.status = 500
            ctx.error_type = "internal_error"
            await _send_error_safely(send, GatewayError("internal gateway error"), base_headers, route)
        finally:
            if route is not None and route.kind in ("llm", "messages", "resource", "proxy"):
                gateway.sink.submit(finished_record(ctx, gateway.settings.log_body_max_bytes))

    def _prefix_hint(self, path: str) -> str:
        """'; did you mean /api/llm/<path> (or /v1/<path>)?' when the path is an API route missing its prefix."""
        found = [
            prefix + path
            for prefix in ("/api/llm", "/v1")
            if prefix + path in self.routes
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


async def _send_error_safely(
    send: Send, error: GatewayError, headers: list[tuple[bytes, bytes]], route: Route | None
) -> None:
    """Send an error unless the response already started or the client is gone (Anthropic-shaped on /messages)."""
    render = messages.send_error if route is not None and route.kind == "messages" else send_error
    try:
        await render(send, error, headers)
    except Exception:  # response already started or connection closed: nothing more to say
        pass


def build_app(settings: Settings, *, connector_factory: ConnectorFactory | None = None) -> App:
    """The ASGI app for these settings (`connector_factory`: the upstream session's connector, for tests)."""
    return App(settings, connector_factory=connector_factory)


def app_from_env() -> App:
    """Factory for ASGI servers (`uvicorn --factory relaygate.app:app_from_env`): settings from env."""
    if not logging.getLogger().handlers:  # worker processes start without the CLI's logging setup
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return build_app(Settings.from_env())
