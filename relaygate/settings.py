"""Process settings: from CLI flags and `RELAYGATE_*` environment variables, fixed at start.

`ENVIRONMENT` is the one table of variables: `from_env` reads it, and `to_env` writes it back for
worker processes (which rebuild their settings from the environment).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

from relaygate.database import DEFAULT_DATABASE_URL

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """What one gateway process needs to start; manifests (hot-reloadable) live in the snapshot."""

    config_path: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_request_body_bytes: int = 100 * MIB
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
    # HTTP request heads, enforced by the server protocol before the app sees a request.
    max_request_line_bytes: int = 8 * 1024  # longer: 414
    max_header_bytes: int = 64 * 1024  # all header lines together; more: 431
    max_headers: int = 100  # header lines; more: 431
    # Slow clients: a head not complete within header_timeout, a body silent for body_idle_timeout,
    # or a body slower than min_body_rate bytes/s on average after min_body_rate_grace seconds: 408.
    header_timeout: float = 30.0
    body_idle_timeout: float = 30.0
    min_body_rate: float = 240.0  # 0 turns the rate check off
    min_body_rate_grace: float = 5.0
    # Upstream answers: one SSE line longer than this ends the stream; a non-streaming LLM answer
    # larger than max_answer_bytes is a 502 (the proxy route streams any size).
    max_sse_line_bytes: int = 1 * MIB
    max_answer_bytes: int = 64 * MIB
    max_config_bytes: int = 1 * MIB  # a manifest file (or directory, all files together) larger: refused
    log_bodies: bool = True  # request/response bodies in log rows (per request also x-tfy-logging-config)
    log_retention_days: float | None = None  # rows older than this are purged in the background
    metrics: bool = True  # per-request metrics at /metrics (off: only the operational counters)
    metrics_token: str | None = None  # bearer token /metrics requires (None: open, as Prometheus expects)
    # With --workers: the directory (made and removed by the master, one per `relaygate serve`) where
    # each worker answers its siblings' scrapes, so every scrape returns the sum over workers.
    metrics_instance_dir: str | None = None
    access_log: str = "text"  # one line per request on stdout: text (logfmt), json or off
    # Admin API and dashboard (docs/admin.md). The bootstrap token is compared in constant time and
    # is an admin whatever the config says; config writes need the flag and a database-held config.
    admin_token: str | None = None
    admin_config_writes: bool = False
    # The response cache's Redis when a cache config says `backend: redis` (default: redis_url); the
    # cache always has its own connection pool, so it never takes connections from the limits.
    cache_redis_url: str | None = None
    # Signs dashboard session cookies. Unset: random per `relaygate serve` (its workers inherit it);
    # replicas behind one load balancer need the same value for a session to work on each.
    session_secret: str | None = None
    # Seals MCP session ids (relaygate/mcp/session.py). Unset: random per `relaygate serve` (its workers
    # inherit it); replicas need the same value for a session started on one to be served by another.
    mcp_session_secret: str | None = None
    mcp_session_secret_previous: str | None = None  # accepted during a rotation, for one session max age
    # MCP methods whose requests write a log row ("*": every one); `tools/call` writes one whatever it says.
    mcp_log_methods: frozenset[str] = frozenset({"tools/call"})
    rollup_1m_retention_days: float = 7.0  # usage rollups by the minute: older buckets are purged
    rollup_1h_retention_days: float = 400.0  # by the hour
    # This gateway's hop-marker id (`Via: 1.1 relaygate-<id>` on every upstream request; a request that
    # arrives with it is a loop: 508). Random per `relaygate serve`; its workers inherit it through
    # the environment, so they recognise each other's requests.
    instance_id: str = field(default_factory=lambda: os.urandom(6).hex(), compare=False)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then `RELAYGATE_*` variables, then explicit overrides (CLI flags) that are not None."""
        env = os.environ
        changes: dict[str, object] = {}
        for var, (field_name, parse, _) in ENVIRONMENT.items():
            raw = env.get(var, "").strip()
            if raw:
                try:
                    changes[field_name] = parse(raw)
                except ValueError as exc:
                    raise ValueError(f"{var}: {exc}") from None
        changes.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **changes)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The `RELAYGATE_*` variables that rebuild these settings with `from_env` (for worker processes)."""
        defaults = Settings()
        out: dict[str, str] = {}
        for var, (field_name, _, render) in ENVIRONMENT.items():
            value = getattr(self, field_name)
            if value != getattr(defaults, field_name) and value is not None:
                out[var] = render(value)
        return out


def parse_switch(raw: str) -> bool:
    """on/off, true/false, yes/no, 1/0."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected on or off, got {raw!r}")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {raw!r}")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError(f"must be a number >= 0, got {raw!r}")
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _instance_id(raw: str) -> str:
    value = raw.strip()
    if not value.isascii() or not all(c.isalnum() or c in "-_." for c in value) or len(value) > 64:
        raise ValueError(f"must be 1-64 letters, digits, '-', '_' or '.', got {raw!r}")
    return value


def _method_list(raw: str) -> frozenset[str]:
    methods = frozenset(part.strip() for part in raw.split(",") if part.strip())
    bad = sorted(m for m in methods if m != "*" and (len(m) > 128 or not all(c.isalnum() or c in "/_-" for c in m)))
    if bad:
        raise ValueError(f"must be JSON-RPC method names separated by commas (or *), got {bad[0]!r}")
    return methods


def _list_text(value: object) -> str:
    return ",".join(sorted(value)) if isinstance(value, frozenset) else str(value)


def _switch_text(value: object) -> str:
    return "on" if value else "off"


_Entry = tuple[str, Callable[[str], object], Callable[[object], str]]

# RELAYGATE_* variable -> (Settings field, parser, renderer). README "Running it" lists each.
ENVIRONMENT: dict[str, _Entry] = {
    "RELAYGATE_CONFIG": ("config_path", str, lambda path: os.path.abspath(str(path))),
    "RELAYGATE_DATABASE_URL": ("database_url", str, str),
    "RELAYGATE_REDIS_URL": ("redis_url", str, str),
    "RELAYGATE_MAX_REQUEST_BODY_BYTES": ("max_request_body_bytes", _positive_int, str),
    "RELAYGATE_REQUEST_TIMEOUT": ("request_timeout", _non_negative_float, str),
    "RELAYGATE_STREAM_IDLE_TIMEOUT": ("stream_idle_timeout", _non_negative_float, str),
    "RELAYGATE_LOG_QUEUE_SIZE": ("log_queue_size", _positive_int, str),
    "RELAYGATE_SHUTDOWN_GRACE_SECONDS": ("shutdown_grace_seconds", _non_negative_float, str),
    "RELAYGATE_COOLDOWN_THRESHOLD": ("cooldown_threshold", _positive_int, str),
    "RELAYGATE_COOLDOWN_WINDOW_SECONDS": ("cooldown_window", _non_negative_float, str),
    "RELAYGATE_COOLDOWN_SECONDS": ("cooldown_seconds", _non_negative_float, str),
    "RELAYGATE_COOLDOWN_MAX_SECONDS": ("cooldown_max_seconds", _non_negative_float, str),
    "RELAYGATE_LIMITS_ON_BACKEND_ERROR": ("limits_on_backend_error", _choice("allow", "deny"), str),
    "RELAYGATE_LIMITS_KEY_PREFIX": ("limits_key_prefix", str, str),
    "RELAYGATE_WATCH_CONFIG": ("watch_config", parse_switch, _switch_text),
    "RELAYGATE_MAX_REQUEST_LINE_BYTES": ("max_request_line_bytes", _positive_int, str),
    "RELAYGATE_MAX_HEADER_BYTES": ("max_header_bytes", _positive_int, str),
    "RELAYGATE_MAX_HEADERS": ("max_headers", _positive_int, str),
    "RELAYGATE_HEADER_TIMEOUT": ("header_timeout", _non_negative_float, str),
    "RELAYGATE_BODY_IDLE_TIMEOUT": ("body_idle_timeout", _non_negative_float, str),
    "RELAYGATE_MIN_BODY_RATE": ("min_body_rate", _non_negative_float, str),
    "RELAYGATE_MIN_BODY_RATE_GRACE": ("min_body_rate_grace", _non_negative_float, str),
    "RELAYGATE_MAX_SSE_LINE_BYTES": ("max_sse_line_bytes", _positive_int, str),
    "RELAYGATE_MAX_ANSWER_BYTES": ("max_answer_bytes", _positive_int, str),
    "RELAYGATE_MAX_CONFIG_BYTES": ("max_config_bytes", _positive_int, str),
    "RELAYGATE_LOG_BODIES": ("log_bodies", parse_switch, _switch_text),
    "RELAYGATE_LOG_RETENTION_DAYS": ("log_retention_days", _non_negative_float, str),
    "RELAYGATE_ACCESS_LOG": ("access_log", _choice("text", "json", "off"), str),
    "RELAYGATE_INSTANCE_ID": ("instance_id", _instance_id, str),
    "RELAYGATE_METRICS": ("metrics", parse_switch, _switch_text),
    "RELAYGATE_METRICS_TOKEN": ("metrics_token", str, str),
    "RELAYGATE_METRICS_INSTANCE_DIR": ("metrics_instance_dir", str, str),
    "RELAYGATE_ADMIN_TOKEN": ("admin_token", str, str),
    "RELAYGATE_ADMIN_CONFIG_WRITES": ("admin_config_writes", parse_switch, _switch_text),
    "RELAYGATE_CACHE_REDIS_URL": ("cache_redis_url", str, str),
    "RELAYGATE_SESSION_SECRET": ("session_secret", str, str),
    "RELAYGATE_MCP_SESSION_SECRET": ("mcp_session_secret", str, str),
    "RELAYGATE_MCP_SESSION_SECRET_PREVIOUS": ("mcp_session_secret_previous", str, str),
    "RELAYGATE_MCP_LOG_METHODS": ("mcp_log_methods", _method_list, _list_text),
    "RELAYGATE_ROLLUP_1M_RETENTION_DAYS": ("rollup_1m_retention_days", _non_negative_float, str),
    "RELAYGATE_ROLLUP_1H_RETENTION_DAYS": ("rollup_1h_retention_days", _non_negative_float, str),
    # The listen address, so worker processes know it too (a base URL pointing back at it is refused).
    "RELAYGATE_HOST": ("host", str, str),
    "RELAYGATE_PORT": ("port", _positive_int, str),
}

assert {entry[0] for entry in ENVIRONMENT.values()} <= {f.name for f in fields(Settings)}
