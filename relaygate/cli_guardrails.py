"""`relaygate guardrails test`: candidate guardrail rules against the requests the log kept.

The rules file is loaded and validated by the same loader and compiler as `relaygate check` (so its
problems read alike), the log is read newest first in cursor pages with bodies (never all at once),
and each row is replayed offline by `guardrails.dry_run`. The report gives, per rule and per
guardrail, rows checked and how many would have been blocked, masked, flagged or had errors, plus
why the other rows were not checked (no body logged, not an LLM request, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from relaygate.guardrails.dry_run import DryRun
    from relaygate.observe.store.base import LogStore
    from relaygate.runtime.guardrails import GuardrailPolicy

PAGE_ROWS = 500
NOTHING_SERVED = "nothing to serve"  # the compile warning every rules-only file gets


def test_command(args: argparse.Namespace, database_url: str) -> int:
    """Run `relaygate guardrails test`; 0 when it ran, 1 when the rules are invalid or hold no rule."""
    policy = load_rules(args.rules)
    if policy is None:
        return 1
    if not any(rule.input for rule in policy.rules):
        print(
            f"relaygate: {args.rules} has no gateway-guardrails-config rule with llm_input_guardrails: "
            "nothing to test (only the input stage is replayed: answers are not re-generated)",
            file=sys.stderr,
        )
        return 1
    from relaygate.guardrails.dry_run import Replayer
    from relaygate.observe.store import open_log_store

    since = time.time() - args.since
    store = open_log_store(database_url)
    try:
        result = asyncio.run(Replayer(policy).replay_all(logged_rows(store, since, max(args.max_rows, 0))))
    finally:
        store.close()
    capped = result.rows_read >= args.max_rows
    if args.json:
        print(orjson.dumps({"rules_file": args.rules, "since": since, "capped": capped, **result.as_dict()}).decode())
        return 0
    print(render(result, args.rules, since))
    if capped:
        print(f"\nstopped after --max-rows {args.max_rows} rows (the newest); older rows were not read.")
    return 0


def load_rules(path: str) -> GuardrailPolicy | None:
    """The guardrail policy the file compiles to, or None after printing its problems as `check` does."""
    from relaygate.config.problems import ConfigError, ConfigNotFound
    from relaygate.config.sources import check_sizes
    from relaygate.settings import Settings

    try:
        check_sizes(path, Settings().max_config_bytes)
        from relaygate.config.compile import load_snapshot

        snapshot = load_snapshot(path)
    except ConfigNotFound as exc:
        for problem in exc.problems:
            print(f"relaygate: --rules {problem.file}: {problem.rule}", file=sys.stderr)
        return None
    except ConfigError as exc:
        print(str(exc))
        print(f"{len(exc.problems)} problem(s) found in {path}; nothing was tested.")
        return None
    except OSError as exc:
        print(f"relaygate: {path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return None
    for warning in snapshot.warnings:
        if NOTHING_SERVED not in warning:
            print(f"warning: {warning}")
    return snapshot.guardrails


def logged_rows(store: LogStore, since: float, max_rows: int) -> Iterator[dict[str, Any]]:
    """Rows logged since `since`, newest first, with their bodies, one page at a time."""
    from relaygate.observe.store.search import LogFilter

    flt = LogFilter(start=since)
    cursor: tuple[float, int] | None = None
    read = 0
    while read < max_rows:
        wanted = min(PAGE_ROWS, max_rows - read)
        rows = store.search(flt, cursor, wanted, bodies=True)
        yield from rows
        read += len(rows)
        if len(rows) < wanted:
            return
        cursor = (float(rows[-1]["time"]), int(rows[-1]["id"]))


def render(result: DryRun, rules_file: str, since: float) -> str:
    """The report as text: what was read, then one table per rule and one per guardrail."""
    started = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(since))
    lines = [
        f"Guardrails in {rules_file}, input stage, on request-log rows since {started}:",
        f"  rows read {result.rows_read}, checked {result.checked}; not checked: no body logged "
        f"{result.no_body}, no input guardrail applies {result.no_guardrail}, not an LLM request "
        f"{result.not_llm}, unreadable body {result.unreadable}",
        "",
    ]
    lines += _table("RULE", [(rule_id, t) for rule_id, t in result.rules.items()], skipped=False)
    lines.append("")
    lines += _table("GUARDRAIL", list(result.guardrails.items()), skipped=True)
    if any(t.skipped for t in result.guardrails.values()):
        lines += ["", "skipped: webhooks and judges are not called in a dry run."]
    return "\n".join(lines)


def _table(title: str, tallies: list[tuple[str, Any]], *, skipped: bool) -> list[str]:
    width = max([len(title), *(len(name) for name, _ in tallies)])
    header = f"{title:<{width}}  {'ROWS':>7}  {'WOULD BLOCK':>16}  {'WOULD MASK':>16}  {'FLAGS':>7}  {'ERRORS':>7}"
    out = [header + (f"  {'SKIPPED':>7}" if skipped else "")]
    for name, tally in tallies:
        line = (
            f"{name:<{width}}  {tally.rows:>7}  {_share(tally.blocked, tally.percent(tally.blocked)):>16}  "
            f"{_share(tally.masked, tally.percent(tally.masked)):>16}  {tally.flagged:>7}  {tally.errors:>7}"
        )
        out.append(line + (f"  {tally.skipped:>7}" if skipped else ""))
    return out


def _share(count: int, percent: float) -> str:
    return f"{count} ({percent:.1f}%)"
