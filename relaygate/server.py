"""Running the ASGI app under uvicorn (uvloop + httptools), chosen by measurement (bench/README.md)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import uvicorn

from relaygate.settings import Settings


def run(settings: Settings, *, log_level: str = "info") -> int:
    """Serve until SIGTERM/SIGINT: stop accepting, drain in-flight requests, flush the log, exit."""
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
        "timeout_keep_alive": 75,
        "proxy_headers": False,  # the gateway never reads the client address; saves a middleware hop
    }
    if settings.workers > 1:
        # Worker processes rebuild the settings from the environment, so put every flag there.
        _export(settings)
        uvicorn.run("relaygate.app:app_from_env", factory=True, workers=settings.workers, **common)
        return 0
    from relaygate.app import build_app

    config = uvicorn.Config(build_app(settings), **common)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it; after a clean drain that should read as exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    server.run()
    return 0 if server.started else 1


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def _export(settings: Settings) -> None:
    os.environ.update(settings.to_env())
