"""The ASGI application: dispatch, the error boundary, and the lifespan that owns every resource.

`build_app(settings)` returns a raw ASGI callable (no framework on the hot path). Resources (the
upstream session, the log sink, the token store, the config watcher: `gateway.py`) open in lifespan
startup and close in shutdown, after uvicorn has drained in-flight requests, so the log queue flushes last.
"""

from __future__ import annotations

import gc
import logging
import re

from relaygate.admin.api import admin_router
from relaygate.admin.router import PREFIX as ADMIN_PREFIX
from relaygate.context import RequestContext
from relaygate.dialects.openai import OPENAI
from relaygate.errors import GatewayError, LoopDetected, MethodNotAllowed, NotFound
from relaygate.gateway import Gateway, open_gateway
from relaygate.handlers.routes import ErrorRenderer, Route, Routes
from relaygate.http.body import ClientDisconnected
from relaygate.http.headers import header
from relaygate.http.types import STOPPING_HOOK, Receive, Scope, Send
from relaygate.observe.trace_context import new_trace_id, parse_traceparent
from relaygate.pipeline.call import Call
from relaygate.pipeline.finish import finish
from relaygate.settings import Settings
from relaygate.ui.serve import UI_PREFIX, serve_ui
from relaygate.upstream.session import ConnectorFactory

log = logging.getLogger("relaygate")
ADMIN_METHODS = frozenset({"GET", "HEAD", "POST", "DELETE"})
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
__all__ = ["App", "Gateway", "app_from_env", "build_app", "open_gateway"]


class App:
    """Raw ASGI entry point: one dict lookup routes a request; every error leaves in its route's API shape."""

    def __init__(self, settings: Settings, *, connector_factory: ConnectorFactory | None = None) -> None:
        self.settings = settings
        self.connector_factory = connector_factory  # the upstream session's connector (tests swap it)
        self.admin = admin_router(settings.session_secret)
        self.routes = Routes(
            {
                ADMIN_PREFIX: Route(self.admin.serve, ADMIN_METHODS),
                UI_PREFIX: Route(serve_ui, frozenset({"GET", "HEAD"})),
            }
        )
        self.gateway: Gateway | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A coroutine function, so any ASGI server (uvicorn --factory, hypercorn) detects ASGI 3 by itself.
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send, scope.get("state"))

    async def _lifespan(self, receive: Receive, send: Send, state: dict[str, object] | None = None) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.gateway = await open_gateway(self.settings, connector_factory=self.connector_factory)
                except Exception as exc:  # a config or database problem: refuse to start, say why
                    log.error("startup failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if state is not None:  # the server protocol calls it when shutdown begins (server_protocol.py)
                    state[STOPPING_HOOK] = self.gateway.tail.close
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
            # 96 random bits from the process's generator (seeded from os.urandom at start): an id, not a
            # secret, and a getrandom() system call per request cost ~2% of a chat request's CPU.
            request_id = f"{gateway.rng.getrandbits(96):024x}"
        path: str = scope["path"]
        ctx = RequestContext(request_id, scope["method"], path)
        parent = parse_traceparent(header(scope, b"traceparent"))
        ctx.parent = parent
        ctx.trace_id = trace_id = parent.trace_id if parent is not None else new_trace_id(gateway.rng)
        traced = trace_id.encode("ascii")
        call = Call(
            gateway,
            scope,
            receive,
            send,
            ctx,
            [
                (b"x-request-id", request_id.encode("latin-1")),
                (b"x-relaygate-trace-id", traced),
                (b"x-tfy-trace-id", traced),
            ],
        )
        route = self.routes.match(path)
        active = gateway.metrics.active.by_route
        if route is not None and route.logged:
            ctx.route = template = route.template
            active[template] += 1
        try:
            if gateway.hops.arrived(scope):
                raise LoopDetected(
                    f"request loop: {scope['method']} {path} already passed through this gateway "
                    "(its Via header names it); a base URL leads back here"
                )
            if route is None:
                raise NotFound(
                    f"no such endpoint: {scope['method']} {path}{self.routes.prefix_hint(path)}", code="unknown_url"
                )
            if scope["method"] not in route.methods:
                raise MethodNotAllowed(f"{path} accepts {', '.join(sorted(route.methods))}")
            await route.handler(call)
        except GatewayError as exc:
            ctx.status = exc.status
            ctx.error_type = exc.type
            ctx.error_message = exc.message
            await _send_error_safely(call, exc, route.render_error if route is not None else OPENAI.send_error)
        except ClientDisconnected:
            ctx.status = 499
            ctx.error_type = "client_disconnected"
        except Exception:
            log.exception("unhandled error serving %s %s (request %s)", scope["method"], path, request_id)
            ctx.status = 500
            ctx.error_type = "internal_error"
            error = GatewayError("internal gateway error")
            await _send_error_safely(call, error, route.render_error if route is not None else OPENAI.send_error)
        finally:
            if route is not None and route.logged:
                active[ctx.route] -= 1
                if call.row:
                    finish(call)


async def _send_error_safely(call: Call, error: GatewayError, render: ErrorRenderer) -> None:
    """Send an error in the route's API shape unless the response already started or the client is gone."""
    try:
        await render(call.send, error, call.base_headers)
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
