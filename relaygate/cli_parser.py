"""The `relaygate` argument parser: every subcommand, flag, default and help text (`cli.py` runs them).

`cli_help.finish_help` fills in what a definition left out (a description, each option's default),
so an option added later cannot forget it.
"""

from __future__ import annotations

import argparse

from relaygate.cli_help import finish_help, package_version, purge_age, retention_days, typed
from relaygate.cli_parser_ops import add_cache_parser, add_guardrails_parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="manifest file or directory (env RELAYGATE_CONFIG; default: none, the config "
        "`relaygate apply` stored in the database)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB "
        "(env RELAYGATE_DATABASE_URL; default sqlite:///./relaygate.db)",
    )
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        help="redis://HOST:PORT[/DB] (env RELAYGATE_REDIS_URL; default: none, limits and cooldowns per process)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relaygate",
        description="Relaygate, a self-hosted AI gateway: one OpenAI-compatible entry point "
        "and one token in front of every model and HTTP service.",
        epilog="Run `relaygate COMMAND --help` for a command's options. Every command also reads "
        "RELAYGATE_CONFIG, RELAYGATE_DATABASE_URL and RELAYGATE_REDIS_URL; flags win.",
    )
    parser.add_argument(
        "--version", action="version", version=f"relaygate {package_version()}", help="print the version and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway: the OpenAI-compatible "
        "API under /api/llm, the Messages API, custom endpoints under /proxy-api, /health, "
        "/ready and /metrics. Stops gracefully on SIGTERM.",
    )
    _add_common(serve)
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8080)")
    serve.add_argument(
        "--workers", type=int, default=None, metavar="N", help="worker processes sharing the port (default 1)"
    )
    serve.add_argument(
        "--no-watch",
        action="store_true",
        help="do not reload the config on change (env RELAYGATE_WATCH_CONFIG=off; default: reload)",
    )
    serve.add_argument(
        "--limits-on-backend-error",
        choices=["allow", "deny"],
        default=None,
        help="when Redis-held limits are unreachable: allow (default) or deny with 503 "
        "(env RELAYGATE_LIMITS_ON_BACKEND_ERROR)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="server log verbosity (default info)",
    )
    _add_server_limits(serve)
    _add_max_config_bytes(serve)

    check = sub.add_parser("check", help="validate manifests; exit 1 listing every problem")
    check.add_argument(
        "-f",
        "--file",
        required=True,
        dest="paths",
        action="append",
        metavar="PATH",
        help="file or directory to validate; repeat to check several together as one config",
    )
    check.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address the gateway will listen on: a base URL pointing back at it is refused (default 127.0.0.1)",
    )
    check.add_argument("--port", type=int, default=8080, help="the port the gateway will listen on (default 8080)")
    _add_max_config_bytes(check)

    apply = sub.add_parser(
        "apply",
        help="validate manifests with the config stored in the database, show "
        "the changes and store them atomically (replicas serving without --config reload)",
    )
    _add_stored_config_args(apply)
    apply.add_argument("--dry-run", action="store_true", help="validate and show the changes; store nothing")
    apply.add_argument("--show-diff", action="store_true", help="show each change as a unified diff")
    diff = sub.add_parser(
        "diff", help="show what `apply` would change in the stored config (exit 0: no change, 1: changes, 2: invalid)"
    )
    _add_stored_config_args(diff)

    tokens = sub.add_parser(
        "tokens",
        help="create, list and revoke access tokens",
        description="Create, list and revoke the tokens callers use (stored hashed).",
    )
    tokens_sub = tokens.add_subparsers(dest="tokens_command", metavar="{create,list,revoke}", required=True)
    create = tokens_sub.add_parser(
        "create",
        help="create a token (printed once, on the last line)",
        description="Create a personal or virtual-account token. The token is printed "
        "once, on the last line; only a hash of it is stored.",
    )
    _add_common(create)
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--user", metavar="EMAIL", help="personal token for this user email (required: this or --virtual-account)"
    )
    who.add_argument(
        "--virtual-account",
        metavar="NAME",
        help="token for this virtual account, declared in the config (required: this or --user)",
    )
    create.add_argument("--name", help="a label for the token (default: none)")
    create.add_argument(
        "--expires-in", metavar="DURATION", help="lifetime such as 30d, 12h, 90m (default: never expires)"
    )
    listing = tokens_sub.add_parser(
        "list",
        help="list tokens (ids only, never secrets)",
        description="List every token: id, kind, subject, name, dates and status "
        "(never a secret). Never creates a database.",
    )
    _add_common(listing)
    revoke = tokens_sub.add_parser(
        "revoke",
        help="revoke a token by id",
        description="Revoke a token by id; running gateways refuse it within about "
        "a second (at once with --redis-url).",
    )
    _add_common(revoke)
    revoke.add_argument("id", help="token id (the part after rg-, or the whole rg-<id>)")

    logs = sub.add_parser(
        "logs",
        help="recent request-log rows, or `logs purge` old ones",
        description="Show the newest request-log rows, filtered (`relaygate logs --limit 20 "
        "--model M`), or delete old rows (`relaygate logs purge --older-than 30d`). Never "
        "creates a database.",
    )
    logs.add_argument(
        "action",
        nargs="?",
        choices=["purge"],
        metavar="purge",
        help="delete rows older than --older-than instead of showing rows (default: show)",
    )
    _add_common(logs)
    logs.add_argument("--limit", type=int, default=20, metavar="N", help="rows to show (default 20)")
    logs.add_argument(
        "--json", action="store_true", help="one JSON object per line, bodies included (default: a table)"
    )
    logs.add_argument("--model", help="only rows whose requested or resolved model is this (default: any)")
    logs.add_argument("--user", help="only rows of this user email or subject (default: any)")
    logs.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only rows with this metadata; repeat for several (default: any)",
    )
    logs.add_argument(
        "--trace-id",
        metavar="ID",
        help="only the row of this trace id (32 hex digits, as in x-relaygate-trace-id) (default: any)",
    )
    logs.add_argument(
        "--older-than",
        metavar="DURATION",
        type=typed(purge_age),
        help="with purge: delete rows older than this, such as 30d, 12h or 90m (default: none; purge requires it)",
    )

    migrate = sub.add_parser(
        "migrate",
        help="create or upgrade the database schema, then exit (serve and the other commands also do this on start)",
    )
    _add_common(migrate)
    add_cache_parser(sub, _add_common)
    add_guardrails_parser(sub)
    finish_help(parser)
    return parser


def _add_server_limits(serve: argparse.ArgumentParser) -> None:
    """Protocol limits, slow-client timeouts, upstream read caps and the request log's bodies/retention."""
    from relaygate.settings import Settings, parse_switch

    d = Settings()
    group = serve.add_argument_group("request limits (enforced before a request reaches the gateway)")
    group.add_argument(
        "--max-request-line-bytes",
        type=int,
        default=None,
        metavar="N",
        help=f"longest request line; longer gets 414 (env RELAYGATE_MAX_REQUEST_LINE_BYTES; "
        f"default {d.max_request_line_bytes})",
    )
    group.add_argument(
        "--max-header-bytes",
        type=int,
        default=None,
        metavar="N",
        help=f"all request header lines together; more gets 431 (env RELAYGATE_MAX_HEADER_BYTES; "
        f"default {d.max_header_bytes})",
    )
    group.add_argument(
        "--max-headers",
        type=int,
        default=None,
        metavar="N",
        help=f"request header lines; more gets 431 (env RELAYGATE_MAX_HEADERS; default {d.max_headers})",
    )
    group.add_argument(
        "--header-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"a request head not complete within this is closed with 408 (env "
        f"RELAYGATE_HEADER_TIMEOUT; default {d.header_timeout:g})",
    )
    group.add_argument(
        "--body-idle-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"a request body silent this long is closed with 408 (env RELAYGATE_BODY_IDLE_TIMEOUT; "
        f"default {d.body_idle_timeout:g})",
    )
    group.add_argument(
        "--min-body-rate",
        type=float,
        default=None,
        metavar="BYTES_PER_SECOND",
        help=f"a request body arriving slower than this on average (after the grace period) is "
        f"closed with 408; 0 turns it off (env RELAYGATE_MIN_BODY_RATE; default "
        f"{d.min_body_rate:g})",
    )
    group.add_argument(
        "--min-body-rate-grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"seconds before --min-body-rate applies (env RELAYGATE_MIN_BODY_RATE_GRACE; default "
        f"{d.min_body_rate_grace:g})",
    )
    group.add_argument(
        "--max-sse-line-bytes",
        type=int,
        default=None,
        metavar="N",
        help=f"an upstream stream line longer than this ends the stream with an error event (env "
        f"RELAYGATE_MAX_SSE_LINE_BYTES; default {d.max_sse_line_bytes})",
    )
    group.add_argument(
        "--max-answer-bytes",
        type=int,
        default=None,
        metavar="N",
        help=f"a non-streaming model answer larger than this is a 502 (env RELAYGATE_MAX_ANSWER_BYTES; "
        f"default {d.max_answer_bytes}); custom endpoints stream any size",
    )
    log_group = serve.add_argument_group("request log")
    log_group.add_argument(
        "--log-bodies",
        type=typed(parse_switch),
        default=None,
        metavar="on|off",
        help="keep request and response bodies in log rows; off: no row keeps any content, "
        "whatever a request's x-tfy-logging-config says (env RELAYGATE_LOG_BODIES; default on)",
    )
    log_group.add_argument(
        "--log-retention-days",
        type=typed(retention_days),
        default=None,
        metavar="N",
        help="purge log rows older than N days, in the background (env "
        "RELAYGATE_LOG_RETENTION_DAYS; default: keep everything; 0 also keeps everything)",
    )
    log_group.add_argument(
        "--rollup-1m-retention-days",
        type=typed(retention_days),
        default=None,
        metavar="N",
        help="purge per-minute usage rollups older than N days (env RELAYGATE_ROLLUP_1M_RETENTION_DAYS; "
        "default 7; 0 keeps them); independent of --log-retention-days",
    )
    log_group.add_argument(
        "--rollup-1h-retention-days",
        type=typed(retention_days),
        default=None,
        metavar="N",
        help="purge hourly usage rollups older than N days (env RELAYGATE_ROLLUP_1H_RETENTION_DAYS; "
        "default 400; 0 keeps them)",
    )
    log_group.add_argument(
        "--access-log",
        choices=["text", "json", "off"],
        default=None,
        help="one line per request on stdout: time, request id, route, status, subject, models, latency, "
        "tokens, cost, error type; never a token, key or body (env RELAYGATE_ACCESS_LOG; default text)",
    )

    metrics_group = serve.add_argument_group("metrics")
    metrics_group.add_argument(
        "--metrics",
        type=typed(parse_switch),
        default=None,
        metavar="on|off",
        help="per-request metrics (requests, latency, tokens, cost) at GET /metrics; off keeps only the "
        "operational counters (env RELAYGATE_METRICS; default on)",
    )
    metrics_group.add_argument(
        "--metrics-token",
        default=None,
        metavar="TOKEN",
        help="require `Authorization: Bearer TOKEN` on GET /metrics (env RELAYGATE_METRICS_TOKEN; "
        "default: open, for a Prometheus scraping from inside the network)",
    )

    admin_group = serve.add_argument_group("admin API and dashboard")
    admin_group.add_argument(
        "--admin-config-writes",
        action="store_const",
        const=True,
        default=None,
        help="let admins apply config through POST /api/admin/v1/config/apply and the dashboard; only "
        "for a config held in the database (no --config) (env RELAYGATE_ADMIN_CONFIG_WRITES; default off)",
    )
    serve.add_argument_group("response cache").add_argument(
        "--cache-redis-url",
        default=None,
        metavar="URL",
        help="redis://HOST:PORT[/DB] for a cache config with backend: redis (env RELAYGATE_CACHE_REDIS_URL; "
        "default: --redis-url); the cache keeps its own connection pool either way",
    )


def _add_max_config_bytes(parser: argparse.ArgumentParser) -> None:
    from relaygate.settings import Settings

    parser.add_argument(
        "--max-config-bytes",
        type=int,
        default=None,
        metavar="N",
        help=f"largest manifest file (a directory: all its files together) "
        f"(env RELAYGATE_MAX_CONFIG_BYTES; default {Settings().max_config_bytes})",
    )


def _add_stored_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--file", required=True, dest="path", help="manifest file or directory to apply; - reads standard input"
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="also delete stored manifests the file does not contain (the file becomes the whole config)",
    )
    parser.add_argument(
        "--database-url",
        help="where the config is stored (env RELAYGATE_DATABASE_URL; default sqlite:///./relaygate.db)",
    )
    _add_max_config_bytes(parser)
