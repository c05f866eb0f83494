"""The versioned PostgreSQL schema: steps apply once, in order, atomically, and replicas do not race."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest

from relaygate.migrations import (
    SCHEMA_TABLE,
    MigrationError,
    Step,
    latest_version,
    migrate_postgres,
    postgres_steps,
    schema_version,
)
from tests.helpers.gateway import run_cli, subprocess_env


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _migrate(url: str, steps: list[Step] | None = None) -> Any:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await migrate_postgres(conn, steps)


async def _version(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await schema_version(conn)


def recorded_versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(f"SELECT version FROM {SCHEMA_TABLE} ORDER BY version")]


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
    return {row[0] for row in rows}


def test_packaged_steps_are_numbered_from_one() -> None:
    steps = postgres_steps()
    assert [s.version for s in steps] == list(range(1, len(steps) + 1))
    assert [s.name for s in steps[:2]] == ["tokens", "request_logs"]
    assert latest_version() == steps[-1].version


def test_first_migration_applies_every_step(pg_url: str) -> None:
    assert run(_version(pg_url)) == 0
    result = run(_migrate(pg_url))
    assert result.applied == tuple(range(1, latest_version() + 1))
    assert result.version == latest_version()
    assert recorded_versions(pg_url) == list(range(1, latest_version() + 1))
    assert {"tokens", "request_logs", SCHEMA_TABLE} <= tables(pg_url)


def test_second_migration_is_a_no_op(pg_url: str) -> None:
    run(_migrate(pg_url))
    again = run(_migrate(pg_url))
    assert again.applied == ()
    assert again.version == latest_version()
    assert recorded_versions(pg_url) == list(range(1, latest_version() + 1))


def test_only_missing_steps_are_applied(pg_url: str) -> None:
    steps = list(postgres_steps())
    run(_migrate(pg_url, steps[:1]))
    assert recorded_versions(pg_url) == [1]
    result = run(_migrate(pg_url, steps))
    assert result.applied == tuple(s.version for s in steps[1:])


def test_failed_step_rolls_back_the_whole_run(pg_url: str) -> None:
    steps = [Step(1, "good", "CREATE TABLE good_step (x int)"), Step(2, "bad", "CREATE TABLE broken (")]
    with pytest.raises(psycopg.errors.SyntaxError):
        run(_migrate(pg_url, steps))
    assert tables(pg_url) == set()


def test_newer_schema_is_refused(pg_url: str) -> None:
    run(_migrate(pg_url))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version, name) VALUES (999, 'from_the_future')")
    with pytest.raises(MigrationError, match="upgrade Relaygate"):
        run(_migrate(pg_url))


def test_two_processes_migrating_together_apply_each_step_once(pg_url: str) -> None:
    start_at = time.time() + 1.5  # both processes wake at the same instant, then migrate
    script = (
        "import sys, time\n"
        "import psycopg, psycopg_pool\n"
        "from relaygate.cli import main\n"
        "import relaygate.migrations, relaygate.database\n"
        f"time.sleep(max(0.0, {start_at!r} - time.time()))\n"
        "sys.exit(main(['migrate', '--database-url', sys.argv[1]]))\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, pg_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    stdout = [out for out, _ in outputs]
    assert sum("applied step(s)" in out for out in stdout) == 1, stdout
    assert sum("already up to date" in out for out in stdout) == 1, stdout
    assert recorded_versions(pg_url) == list(range(1, latest_version() + 1))


def test_migrate_command_reports_version(pg_url: str) -> None:
    first = run_cli("migrate", "--database-url", pg_url)
    second = run_cli("migrate", "--database-url", pg_url)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert f"schema version {latest_version()}" in first.stdout
    assert "already up to date" in second.stdout
