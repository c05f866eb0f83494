"""The gateway served from a thread of the test process: the real app, server protocol and port, no process.

`GatewayThread(root, yaml_text)` is a `GatewayHandle` like `GatewayProcess` (same config file, SQLite
database, clients and CLI helpers), but `start()` builds the settings exactly as `relaygate serve` would
from the same flags and `RELAYGATE_*` environment, then runs `uvicorn.Server` with the gateway's own
protocol (`relaygate.server.GatewayConfig`) on a background thread with its own event loop. Start-up
takes tens of milliseconds instead of seconds, and the request path runs under the test's coverage.

What it cannot do is what only a process has: signals, exit codes, `--workers`, stdout. `output()`
holds the `relaygate` log records written while it ran (formatted as the CLI's logging does).
Tests of process behaviour use `GatewayProcess` (tests/e2e/).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Self

import uvicorn

from relaygate.app import build_app
from relaygate.cli import _SERVE_SETTINGS
from relaygate.cli_parser import build_parser
from relaygate.server import GatewayConfig, listen
from relaygate.server_protocol import GatewayProtocol, ServerLimits
from relaygate.settings import ENVIRONMENT, Settings
from relaygate.upstream.session import ConnectorFactory
from tests.helpers.gateway import READY_TIMEOUT, GatewayFailed, GatewayHandle

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class GatewayThread(GatewayHandle):
    """`relaygate serve` as a uvicorn server on a thread of this process (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        config_text: str,
        *,
        env: dict[str, str] | None = None,
        connector_factory: ConnectorFactory | None = None,
    ) -> None:
        super().__init__(root, config_text, env=env)
        self.connector_factory = connector_factory
        self.settings: Settings | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._records = _Records()
        self._saved_env: dict[str, str | None] = {}
        self._saved_level: int | None = None

    def serve_settings(self) -> Settings:
        """The settings `relaygate serve` would build from this gateway's flags and environment."""
        config = ["--config", str(self.config_path)] if self.use_config_file else []
        args = build_parser().parse_args(
            ["serve", *config, "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--database-url", self.database_url, *self.serve_args]
        )
        env = self.env()
        changes: dict[str, object] = {}
        for var, (name, parse, _) in ENVIRONMENT.items():
            raw = env.get(var, "").strip()
            if raw:
                changes[name] = parse(raw)
        flags: dict[str, object] = {
            "config_path": args.config,
            "database_url": args.database_url,
            "redis_url": args.redis_url,
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "watch_config": False if args.no_watch else None,
            "limits_on_backend_error": args.limits_on_backend_error,
            **{name: getattr(args, name) for name in _SERVE_SETTINGS},
        }
        changes.update({k: v for k, v in flags.items() if v is not None})
        settings = replace(Settings(), **changes)  # type: ignore[arg-type]
        if settings.workers != 1:
            raise GatewayFailed("--workers needs processes: use GatewayProcess")
        return settings

    def start(self, timeout: float = READY_TIMEOUT) -> Self:
        settings = self.settings = self.serve_settings()
        # Config files may reference ${VARIABLES}: the process would have them in its environment.
        for name, value in self.extra_env.items():
            if not name.startswith("RELAYGATE_"):
                self._saved_env.setdefault(name, os.environ.get(name))
                os.environ[name] = value
        relaygate_log = logging.getLogger("relaygate")
        relaygate_log.addHandler(self._records)
        if relaygate_log.level == logging.NOTSET:  # the CLI logs at INFO: so does this
            self._saved_level = relaygate_log.level
            relaygate_log.setLevel(logging.INFO)
        sock = listen(settings.host, settings.port)
        config = GatewayConfig(
            build_app(settings, connector_factory=self.connector_factory),
            host=settings.host,
            port=settings.port,
            loop="asyncio",
            http=GatewayProtocol,
            lifespan="on",
            access_log=False,
            server_header=False,
            log_config=None,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
            timeout_keep_alive=75,
            proxy_headers=False,
            relaygate_limits=ServerLimits.from_settings(settings),
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"gateway-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                sock.close()
                raise GatewayFailed(f"the gateway did not start\n{self.output()}")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise GatewayFailed(f"the gateway was not ready within {timeout}s\n{self.output()}")
            time.sleep(0.005)
        gc.unfreeze()  # the app's start-up froze the test process's objects; let the collector see them again
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 40.0) -> int | None:
        """Stop accepting, drain, run the lifespan shutdown (the log flushes), join the thread."""
        self.close_clients()
        if self._server is None or self._thread is None:
            return None
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(10)
        logging.getLogger("relaygate").removeHandler(self._records)
        if self._saved_level is not None:
            logging.getLogger("relaygate").setLevel(self._saved_level)
            self._saved_level = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        self._server = None
        return 0

    def output(self) -> str:
        """The `relaygate` log records written while this gateway ran (other in-process gateways' too)."""
        return "--- gateway log ---\n" + "\n".join(self._records.lines)
