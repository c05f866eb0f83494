"""`relaygate` command line: serve | check | diff | apply | tokens | logs | migrate | cache | guardrails.

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

from relaygate.cli_parser import build_parser
from relaygate.database import DatabaseURLError
from relaygate.errors import DatabaseError


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
    "rollup_1m_retention_days",
    "rollup_1h_retention_days",
    "metrics",
    "metrics_token",
    "access_log",
    "admin_config_writes",
    "cache_redis_url",
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
    from relaygate.observe.tracing.config import TracingConfigError, tracing_config

    try:
        tracing_config(os.environ)
    except TracingConfigError as exc:
        print(f"relaygate: tracing: {exc}", file=sys.stderr)
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
        rows = store.query(
            limit=args.limit, model=args.model, user=args.user, metadata=metadata or None, trace_id=args.trace_id
        )
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
            ("--trace-id", args.trace_id),
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


def cmd_cache(args: argparse.Namespace) -> int:
    """`relaygate cache purge` (cli_cache.py)."""
    from relaygate.cli_cache import purge_command

    return purge_command(args, _config_path(args), _database_url(args))


def cmd_guardrails(args: argparse.Namespace) -> int:
    """`relaygate guardrails test` (cli_guardrails.py)."""
    from relaygate.cli_guardrails import test_command

    return test_command(args, _database_url(args))


# Commands that only read (or delete from) an existing database: they never create one.
_READ_ONLY = {("logs", None), ("tokens", "list"), ("tokens", "revoke"), ("diff", None), ("guardrails", None)}


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
        "cache": cmd_cache,
        "guardrails": cmd_guardrails,
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
