"""The arguments of the operations commands `relaygate cache purge` and `relaygate guardrails test`
(`cli_parser` adds them to the command tree; `cli_cache` and `cli_guardrails` run them)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from relaygate.cli_help import purge_age, typed

AddCommon = Callable[[argparse.ArgumentParser], None]
DEFAULT_MAX_ROWS = 100_000


def add_cache_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], add_common: AddCommon) -> None:
    cache = sub.add_parser(
        "cache",
        help="drop response-cache entries (`cache purge`)",
        description="Drop response-cache entries: from Redis directly when the served config's cache backend "
        "is redis, else through the running gateway's admin API (memory entries live in its process).",
    )
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="{purge}", required=True)
    purge = cache_sub.add_parser(
        "purge",
        help="drop a namespace's entries, one request's entry, or every entry",
        description="Drop a namespace's entries (--namespace), the entry one request produced (--request-id), "
        "or every entry (neither), and print how many were dropped.",
    )
    add_common(purge)
    what = purge.add_mutually_exclusive_group()
    what.add_argument(
        "--namespace",
        metavar="NAME",
        help="drop this namespace's entries (x-tfy-cache-config.namespace; '' is the default namespace) "
        "(default: every entry)",
    )
    what.add_argument(
        "--request-id", metavar="ID", help="drop the entry this request produced (its x-request-id) (default: none)"
    )
    purge.add_argument(
        "--cache-redis-url",
        metavar="URL",
        help="the cache's Redis (env RELAYGATE_CACHE_REDIS_URL; default: --redis-url / RELAYGATE_REDIS_URL)",
    )
    purge.add_argument(
        "--gateway-url",
        metavar="URL",
        help="the running gateway, e.g. http://127.0.0.1:8080, called with RELAYGATE_ADMIN_TOKEN when the "
        "entries are in its memory (env RELAYGATE_GATEWAY_URL; default: none)",
    )


def add_guardrails_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    guardrails = sub.add_parser(
        "guardrails",
        help="try guardrail rules on logged requests (`guardrails test`)",
        description="Try candidate guardrail rules on the requests the log kept, offline.",
    )
    guardrails_sub = guardrails.add_subparsers(dest="guardrails_command", metavar="{test}", required=True)
    test = guardrails_sub.add_parser(
        "test",
        help="what candidate rules would have blocked, masked and flagged in logged requests",
        description="Run the input guardrails of the rules in --rules over the request bodies the log kept "
        "since --since, offline (webhooks and judges are not called: reported skipped), and print per rule "
        "and per guardrail how many rows each would have blocked, masked or flagged. Never creates a "
        "database.",
    )
    test.add_argument(
        "--rules",
        required=True,
        metavar="PATH",
        help="YAML file or directory with provider-account/guardrail-config-group and gateway-guardrails-config "
        "manifests, validated as `relaygate check` does",
    )
    test.add_argument(
        "--since",
        default="24h",
        metavar="DURATION",
        type=typed(purge_age),
        help="read rows logged within this long, such as 24h, 7d or 90m (default 24h)",
    )
    test.add_argument(
        "--database-url",
        metavar="URL",
        help="the request log's database (env RELAYGATE_DATABASE_URL; default sqlite:///./relaygate.db)",
    )
    test.add_argument(
        "--max-rows",
        type=int,
        default=DEFAULT_MAX_ROWS,
        metavar="N",
        help=f"read at most this many rows, newest first (default {DEFAULT_MAX_ROWS})",
    )
    test.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
