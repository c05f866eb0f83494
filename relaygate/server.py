"""Running the ASGI app under uvicorn (uvloop + httptools), chosen by measurement (bench/README.md).

The port is bound and listening before anything else starts (a busy port is one clear line and exit 1,
before the lifespan says "ready"), and the HTTP protocol is the gateway's own (`server_protocol`: head
limits and slow-client timeouts). Its limits travel on the uvicorn config, which `--workers` processes
receive pickled, so every worker enforces the same ones.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import replace
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from relaygate.mcp.session import GENERATED_SECRET_WARNING
from relaygate.server_protocol import GatewayProtocol, ServerLimits
from relaygate.settings import Settings

log = logging.getLogger("relaygate")
BACKLOG = 2048  # uvicorn's default


class GatewayConfig(uvicorn.Config):
    """uvicorn's config plus the protocol limits (`server_protocol.limits_of` reads them)."""

    def __init__(self, app: Any, *, relaygate_limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.relaygate_limits = relaygate_limits


def run(settings: Settings, *, log_level: str = "info") -> int:
    """Serve until SIGTERM/SIGINT: stop accepting, drain in-flight requests, flush the log, exit."""
    try:
        limits = ServerLimits.from_settings(settings)
    except ValueError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 1
    try:
        sock = listen(settings.host, settings.port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"relaygate: cannot listen on {settings.host}:{settings.port}: {reason.lower()}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    if not settings.mcp_session_secret:
        # One random key per `serve` (its workers get it below): replicas need the same secret set.
        log.warning("%s", GENERATED_SECRET_WARNING)
    log.info("listening on http://%s:%d", settings.host, port)
    log.info(
        "dashboard: http://%s:%d/ui (log in with a Relaygate token; docs/admin.md)", _display_host(settings.host), port
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": GatewayProtocol,
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
        "timeout_keep_alive": 75,
        "proxy_headers": False,  # the gateway never reads the client address; saves a middleware hop
        "backlog": BACKLOG,
        "relaygate_limits": limits,
    }
    if settings.workers > 1:
        # One metrics directory per `relaygate serve`, made here and removed at exit: the workers sum
        # their metrics through it (observe/workers.py), and no other gateway on the host shares it.
        metrics_dir = tempfile.mkdtemp(prefix="relaygate-metrics-", dir=os.environ.get("RELAYGATE_METRICS_DIR") or None)
        # Worker processes rebuild the settings from the environment, so put every flag there.
        # The session-cookie key too: a dashboard session must hold on whichever worker takes the request.
        _export(
            replace(
                settings,
                metrics_instance_dir=metrics_dir,
                session_secret=settings.session_secret or secrets.token_urlsafe(32),
                mcp_session_secret=settings.mcp_session_secret or secrets.token_urlsafe(32),
            )
        )
        config = GatewayConfig("relaygate.app:app_from_env", factory=True, workers=settings.workers, **common)
        try:
            Multiprocess(config, sockets=[sock]).run()
        except KeyboardInterrupt:
            pass
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 0
    from relaygate.app import build_app

    config = GatewayConfig(build_app(settings), **common)
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it; after a clean drain that should read as exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a busy port fails before startup (as uvicorn binds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)  # a second process binding the same port with SO_REUSEADDR fails here
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _display_host(host: str) -> str:
    """The address a browser on this machine reaches a wildcard listener by."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def _export(settings: Settings) -> None:
    os.environ.update(settings.to_env())
