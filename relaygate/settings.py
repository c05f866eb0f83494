"""Process settings: from CLI flags and `RELAYGATE_*` environment variables, fixed at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from relaygate.database import DEFAULT_DATABASE_URL


@dataclass(frozen=True, slots=True)
class Settings:
    """What one gateway process needs to start; manifests (hot-reloadable) live in the snapshot."""

    config_path: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_request_body_bytes: int = 100 * 1024 * 1024
    request_timeout: float = 600.0  # seconds per upstream attempt unless x-tfy-request-timeout says
    stream_idle_timeout: float = 300.0  # longest silence tolerated mid-stream
    log_body_max_bytes: int = 256 * 1024  # request/response bodies are clipped to this in the log
    log_queue_size: int = 10_000
    token_cache_ttl: float = 10.0
    shutdown_grace_seconds: float = 30.0
    watch_config: bool = True
    cooldown_threshold: int = 3  # upstream failures within the window that cool a pooled target
    cooldown_window: float = 60.0
    cooldown_seconds: float = 30.0  # first cooldown; repeats double up to cooldown_max_seconds
    cooldown_max_seconds: float = 300.0
    # Shared limits when Redis fails: "allow" (admit, count in metrics) or "deny" (503 + retry-after).
    limits_on_backend_error: str = "allow"
    # Prefix of every Redis limits key: replicas of one gateway share it; gateways sharing one Redis
    # keep apart with their own (on Redis Cluster, put a hash tag in it, e.g. "{rg}:limits:").
    limits_key_prefix: str = "relaygate:limits:"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then `RELAYGATE_*` variables, then explicit overrides (CLI flags) that are not None."""
        env = os.environ
        base = cls(
            config_path=env.get("RELAYGATE_CONFIG") or None,
            database_url=env.get("RELAYGATE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("RELAYGATE_REDIS_URL") or None,
        )
        numeric = {
            "RELAYGATE_MAX_REQUEST_BODY_BYTES": ("max_request_body_bytes", int),
            "RELAYGATE_REQUEST_TIMEOUT": ("request_timeout", float),
            "RELAYGATE_STREAM_IDLE_TIMEOUT": ("stream_idle_timeout", float),
            "RELAYGATE_LOG_QUEUE_SIZE": ("log_queue_size", int),
            "RELAYGATE_SHUTDOWN_GRACE_SECONDS": ("shutdown_grace_seconds", float),
            "RELAYGATE_COOLDOWN_THRESHOLD": ("cooldown_threshold", int),
            "RELAYGATE_COOLDOWN_WINDOW_SECONDS": ("cooldown_window", float),
            "RELAYGATE_COOLDOWN_SECONDS": ("cooldown_seconds", float),
            "RELAYGATE_COOLDOWN_MAX_SECONDS": ("cooldown_max_seconds", float),
        }
        changes: dict[str, object] = {}
        for var, (field_name, kind) in numeric.items():
            if env.get(var):
                changes[field_name] = kind(env[var])
        on_error = env.get("RELAYGATE_LIMITS_ON_BACKEND_ERROR", "").strip().lower()
        if on_error:
            if on_error not in ("allow", "deny"):
                raise ValueError("RELAYGATE_LIMITS_ON_BACKEND_ERROR must be allow or deny")
            changes["limits_on_backend_error"] = on_error
        if env.get("RELAYGATE_LIMITS_KEY_PREFIX"):
            changes["limits_key_prefix"] = env["RELAYGATE_LIMITS_KEY_PREFIX"]
        if env.get("RELAYGATE_WATCH_CONFIG", "").lower() in ("0", "false", "no"):
            changes["watch_config"] = False
        changes.update({k: v for k, v in overrides.items() if v is not None})
        return replace(base, **changes)  # type: ignore[arg-type]
