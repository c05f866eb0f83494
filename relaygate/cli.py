"""`relaygate` command line: serve | check | diff | apply | tokens | logs | migrate.

Every subcommand reads RELAYGATE_CONFIG, RELAYGATE_DATABASE_URL and RELAYGATE_REDIS_URL; flags win.
`--help` of every command has a description and says each option's default (`cli_help.finish_help`
fills in what a definition left out, so an option added later cannot forget it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from relaygate.cli_help import finish_help, package_version, purge_age, retention_days, typed
from relaygate.database import DatabaseURLError
from relaygate.errors import DatabaseError


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


def _database_url(args: argparse.Namespace) -> str:
    from relaygate.database import DEFAULT_DATABASE_URL

    return args.database_url or os.environ.get("RELAYGATE_DATABASE_URL") or DEFAULT_DATABASE_URL


def _config_path(args: argparse.Namespace) -> str | None:
    return getattr(args, "config", None) or os.environ.get("RELAYGATE_CONFIG") or None


# `serve` flags named exactly like the Settings field they set.
_SERVE_SETTINGS = (
    "max_request_line_bytes",
    "max_header_bytes",
    "max_headers",
    "header_timeout",
    "body_idle_timeout",
    "min_body_rate",
    "min_body_rate_grace",
    "max_sse_line_bytes",
    "max_answer_bytes",
    "max_config_bytes",
    "log_bodies",
    "log_retention_days",
)


def cmd_serve(args: argparse.Namespace) -> int:
    from relaygate.config.options import LoadOptions
    from relaygate.config.problems import ConfigError, ConfigNotFound
    from relaygate.config.sources import check_sizes
    from relaygate.settings import Settings

    settings = Settings.from_env(
        config_path=args.config,
        database_url=args.database_url,
        redis_url=args.redis_url,
        host=args.host,
        port=args.port,
        workers=args.workers,
        watch_config=False if args.no_watch else None,
        limits_on_backend_error=args.limits_on_backend_error,
        **{name: getattr(args, name) for name in _SERVE_SETTINGS},
    )
    if settings.config_path:
        try:
            check_sizes(settings.config_path, settings.max_config_bytes)  # before importing the compiler
            from relaygate.config.compile import load_snapshot

            load_snapshot(settings.config_path, LoadOptions.for_settings(settings))  # warnings: logged at start-up
        except ConfigNotFound as exc:
            print(_not_found(exc, "--config"), file=sys.stderr)
            return 1
        except ConfigError as exc:
            print(f"relaygate: the config is invalid, not starting:\n{exc}", file=sys.stderr)
            return 1
    from relaygate.server import run

    return run(settings, log_level=args.log_level)


def _not_found(exc: Exception, what: str) -> str:
    """One line per missing path: `relaygate: --config gw.yaml: no such file or directory`."""
    return "\n".join(f"relaygate: {what} {p.file}: {p.rule}" for p in getattr(exc, "problems", ()))


def cmd_check(args: argparse.Namespace) -> int:
    """Every `-f` path (files and directories) is validated together, as `serve` would load them."""
    from relaygate.config.options import LoadOptions
    from relaygate.config.outbound import GatewayAddress
    from relaygate.config.problems import ConfigError, ConfigNotFound
    from relaygate.config.sources import check_sizes

    paths: list[str] = list(dict.fromkeys(args.paths))
    named = ", ".join(paths)
    max_bytes = _max_config_bytes(args)
    try:
        check_sizes(paths, max_bytes)  # an oversized config is refused before the compiler is even imported
        from relaygate.config.compile import load_snapshot

        snapshot = load_snapshot(paths, LoadOptions(max_bytes, GatewayAddress(args.host, args.port)))
    except ConfigNotFound as exc:
        print(_not_found(exc, "-f"), file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(str(exc))
        print(f"{len(exc.problems)} problem(s) found; nothing would be applied.")
        return 1
    except OSError as exc:
        print(f"relaygate: {named}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for warning in snapshot.warnings:
        print(f"warning: {warning}")
    print(
        f"OK: {named} {'is' if len(paths) == 1 else 'are'} valid ({snapshot.summary()})"
        + (f", {len(snapshot.warnings)} warning(s)" if snapshot.warnings else "")
    )
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    """`apply` and `diff`: validate against the stored config, show the changes, maybe store them."""
    from relaygate.config.problems import ConfigError, ConfigNotFound

    dry_run = args.command == "diff" or args.dry_run
    try:
        sources = _read_manifest_sources(args.path, _max_config_bytes(args))
    except ConfigNotFound as exc:
        print(_not_found(exc, "-f"), file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"relaygate: {args.path}: cannot be read ({exc.strerror or exc})", file=sys.stderr)
        return 2
    from relaygate.config.apply import commit, plan_apply  # after the size check: it imports the compiler
    from relaygate.config.diff import render
    from relaygate.config.open_store import open_config_store
    from relaygate.config.store import ConfigConflict

    store = open_config_store(_database_url(args))
    try:
        try:
            plan = plan_apply(store, sources, prune=args.prune)
        except ConfigError as exc:
            print(str(exc))
            print(f"{len(exc.problems)} problem(s) found; nothing was applied.")
            return 2 if args.command == "diff" else 1
        for warning in plan.snapshot.warnings:
            print(f"warning: {warning}")
        print(render(plan.changes, show_diff=args.command == "diff" or args.show_diff))
        if args.command == "diff":
            return 1 if plan.changed else 0
        if dry_run or not plan.changed:
            print("Dry run: nothing was stored." if dry_run else "Nothing to apply: the stored config already matches.")
            return 0
        try:
            revision = commit(store, plan)
        except ConfigConflict as exc:
            print(f"relaygate: {exc}", file=sys.stderr)
            return 1
        print(
            f"Applied: config revision {revision} ({plan.snapshot.summary()}); gateways serving from this "
            "database pick it up within seconds."
        )
        return 0
    finally:
        store.close()


def _max_config_bytes(args: argparse.Namespace) -> int:
    """`--max-config-bytes`, else RELAYGATE_MAX_CONFIG_BYTES, else the default (no other variable is read)."""
    from relaygate.settings import Settings

    raw = (
        args.max_config_bytes
        if args.max_config_bytes is not None
        else os.environ.get("RELAYGATE_MAX_CONFIG_BYTES", "").strip() or Settings().max_config_bytes
    )
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        where = "--max-config-bytes" if args.max_config_bytes is not None else "RELAYGATE_MAX_CONFIG_BYTES"
        raise SystemExit(f"relaygate: {where} must be a positive number of bytes, got {raw!r}")
    return value


def _read_manifest_sources(path: str, max_bytes: int) -> list[tuple[str, str]]:
    """(YAML text, file name) of a file, of each *.yaml/*.yml in a directory, or of - (stdin); sizes
    are checked against `max_bytes` before anything is parsed (ConfigError)."""
    from relaygate.config.problems import ConfigError
    from relaygate.config.sources import read_sources, read_stdin

    if path == "-":
        return [(read_stdin(sys.stdin.buffer, max_bytes), "<stdin>")]
    sources, problems = read_sources(path, max_bytes)
    if problems:
        raise ConfigError(problems)
    return sources


def cmd_tokens(args: argparse.Namespace) -> int:
    from relaygate.auth.open_store import open_token_store
    from relaygate.auth.store import KIND_PERSONAL, KIND_VIRTUAL_ACCOUNT
    from relaygate.auth.tokens import parse_duration

    store = open_token_store(_database_url(args))
    try:
        if args.tokens_command == "create":
            expires_at = None
            if args.expires_in:
                try:
                    expires_at = time.time() + parse_duration(args.expires_in)
                except ValueError as exc:
                    print(f"relaygate: --expires-in: {exc}", file=sys.stderr)
                    return 2
            if args.user:
                if "@" not in args.user:
                    print("relaygate: --user takes an email address", file=sys.stderr)
                    return 2
                kind, subject = KIND_PERSONAL, f"user:{args.user}"
            else:
                problem = _unknown_virtual_account(args)
                if problem:
                    print(f"relaygate: {problem}", file=sys.stderr)
                    return 1
                kind, subject = KIND_VIRTUAL_ACCOUNT, f"virtualaccount:{args.virtual_account}"
            token, record = store.create(kind, subject, args.name, expires_at)
            expiry = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(expires_at)) if expires_at else "never"
            print(f"Created {kind} token rg-{record.id} for {subject} (expires: {expiry}).")
            print("Copy it now; it is stored only as a hash and cannot be shown again:")
            print(token)
            return 0
        if args.tokens_command == "list":
            rows = store.list()
            now = time.time()
            print(f"{'ID':<16} {'KIND':<16} {'SUBJECT':<36} {'NAME':<16} {'CREATED':<20} {'EXPIRES':<20} STATUS")
            for r in rows:
                status = "revoked" if r.revoked_at else ("expired" if not r.active(now) else "active")
                print(
                    f"{'rg-' + r.id:<16} {r.kind:<16} {r.subject:<36} {(r.name or '-'):<16} "
                    f"{_fmt(r.created_at):<20} {_fmt(r.expires_at):<20} {status}"
                )
            return 0
        token_id = args.id[3:] if args.id.startswith("rg-") else args.id
        token_id = token_id[:12] if len(token_id) > 12 else token_id
        if store.revoke(token_id):
            print(f"revoked rg-{token_id}")
            _announce_revocation(args, token_id)
            return 0
        print(f"relaygate: no token with id {args.id}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _announce_revocation(args: argparse.Namespace, token_id: str) -> None:
    """With Redis configured, every replica drops the token from its cache now (not within the 1 s poll)."""
    redis_url = getattr(args, "redis_url", None) or os.environ.get("RELAYGATE_REDIS_URL")
    if not redis_url:
        return
    from relaygate.shared_state import publish_revocation

    try:
        publish_revocation(redis_url, token_id)
    except Exception as exc:  # the revocation itself is committed; replicas still see it within ~1 s
        print(
            f"relaygate: revoked, but could not announce it through Redis ({type(exc).__name__}); replicas "
            "will pick it up from the token store within a second",
            file=sys.stderr,
        )


def _unknown_virtual_account(args: argparse.Namespace) -> str | None:
    """Refuse tokens for virtual accounts the config does not declare: the --config files, else the
    config stored in the database (when something was applied there)."""
    from relaygate.config.compile import load_snapshot
    from relaygate.config.problems import ConfigError

    path = _config_path(args)
    try:
        if path:
            snapshot, where = load_snapshot(path), path
        else:
            from relaygate.config.apply import load_stored
            from relaygate.config.open_store import open_config_store

            store = open_config_store(_database_url(args))
            try:
                stored = store.load()
            finally:
                store.close()
            if not stored.manifests:
                return None
            snapshot, where = load_stored(stored), "the config stored in the database"
    except ConfigError as exc:
        return f"the config is invalid:\n{exc}"
    if args.virtual_account not in snapshot.virtual_accounts:
        return f"virtual account '{args.virtual_account}' is not declared in {where}"
    return None


def _fmt(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "never"


def cmd_logs(args: argparse.Namespace) -> int:
    from relaygate.observe.query import format_rows, parse_metadata_filters
    from relaygate.observe.store import open_log_store

    if args.action == "purge":
        return _purge_logs(args)
    if args.older_than is not None:
        print("relaygate: --older-than goes with purge: relaygate logs purge --older-than 30d", file=sys.stderr)
        return 2
    try:
        metadata = parse_metadata_filters(args.metadata)
    except ValueError as exc:
        print(f"relaygate: --metadata: {exc}", file=sys.stderr)
        return 2
    store = open_log_store(_database_url(args))
    try:
        rows = store.query(limit=args.limit, model=args.model, user=args.user, metadata=metadata or None)
    finally:
        store.close()
    text = format_rows(rows, as_json=args.json)
    if text:
        print(text)
    return 0


def _purge_logs(args: argparse.Namespace) -> int:
    """`relaygate logs purge --older-than 30d`: delete old rows now, say how many."""
    from relaygate.observe.store import open_log_store

    if args.older_than is None:
        print("relaygate: logs purge needs --older-than DURATION, such as 30d or 12h", file=sys.stderr)
        return 2
    filters = [
        flag
        for flag, value in (
            ("--model", args.model),
            ("--user", args.user),
            ("--metadata", args.metadata),
            ("--json", args.json),
        )
        if value
    ]
    if filters:
        print(f"relaygate: logs purge deletes by age only; {', '.join(filters)} would be ignored", file=sys.stderr)
        return 2
    before = time.time() - args.older_than
    store = open_log_store(_database_url(args))
    try:
        deleted = store.purge(before)
    finally:
        store.close()
    cutoff = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(before))
    print(f"deleted {deleted} request-log row{'' if deleted == 1 else 's'} older than {cutoff}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from relaygate.database import database_kind, redact_url

    url = _database_url(args)
    if database_kind(url) == "postgres":
        from relaygate.database import PostgresDatabase
        from relaygate.migrations import schema_version

        database = PostgresDatabase(url, name="relaygate-migrate", max_size=1)  # migrates on open
        try:
            version = database.call(schema_version)
        finally:
            database.close()
        applied = database.migration.applied if database.migration else ()
        steps = f"applied step(s) {', '.join(map(str, applied))}" if applied else "already up to date"
        print(f"{redact_url(url)}: {steps}; schema version {version}")
        return 0
    from relaygate.auth.store import SQLiteTokenStore
    from relaygate.observe.store.sqlite import SQLiteLogStore

    SQLiteTokenStore(url).close()
    SQLiteLogStore(url).close()
    print(f"{url}: tokens and request log tables are up to date")
    return 0


# Commands that only read (or delete from) an existing database: they never create one.
_READ_ONLY = {("logs", None), ("tokens", "list"), ("tokens", "revoke"), ("diff", None)}


def _missing_database(args: argparse.Namespace) -> str | None:
    """Why a read-only command cannot run: its SQLite file (or directory) does not exist. Opening
    it would create an empty database, which only hides a wrong --database-url or working directory."""
    from relaygate.database import database_kind, sqlite_path

    if (args.command, getattr(args, "tokens_command", None)) not in _READ_ONLY:
        return None
    url = _database_url(args)
    if database_kind(url) != "sqlite" or (path := sqlite_path(url)) == ":memory:" or os.path.isfile(path):
        return None
    if os.path.isdir(path):
        return f"database file {path} is a directory, not a SQLite file (check --database-url)"
    directory = os.path.dirname(os.path.abspath(path))
    where = "" if os.path.isdir(directory) else f"; its directory {directory} does not exist either"
    return (
        f"database file {path} does not exist{where} (nothing to show: `relaygate serve` or "
        "`relaygate tokens create` creates it; check --database-url / RELAYGATE_DATABASE_URL and the "
        "working directory)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = {
        "serve": cmd_serve,
        "check": cmd_check,
        "apply": cmd_apply,
        "diff": cmd_apply,
        "tokens": cmd_tokens,
        "logs": cmd_logs,
        "migrate": cmd_migrate,
    }
    try:
        problem = _missing_database(args)
        if problem:
            print(f"relaygate: {problem}", file=sys.stderr)
            return 1
        code = handlers[args.command](args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except BrokenPipeError:
        # `relaygate logs | head -1`: the reader left. Point stdout at /dev/null so the interpreter's
        # final flush cannot fail again, and exit quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except DatabaseURLError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    except DatabaseError as exc:  # unreachable or unusable PostgreSQL; the message has no password
        print(f"relaygate: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
