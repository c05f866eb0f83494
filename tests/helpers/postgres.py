"""Real PostgreSQL for tests: a fresh database per module, a fresh schema per test, gateways on it.

`ADMIN_URL` (env RELAYGATE_TEST_POSTGRES_URL) must be able to create and drop databases; tests that
need PostgreSQL are skipped only when nothing answers there.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from tests.helpers.gateway import GatewayProcess

ADMIN_URL = os.environ.get("RELAYGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def admin_connection() -> psycopg.Connection[Any]:
    """An autocommit connection to the admin database (skips the test when PostgreSQL is unreachable)."""
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database (dropped on exit); yields its URL."""
    name = "relaygate_test_" + secrets.token_hex(6)
    with admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(ADMIN_URL)._replace(path="/" + name).geturl()
    finally:
        with admin_connection() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fresh_schema(database_url: str) -> str:
    """A URL whose connections work in a new, empty schema of that database."""
    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return f"{database_url}?options=-csearch_path%3D{schema}"


class PostgresGateway(GatewayProcess):
    """The standard gateway harness with its database URL (server and CLI) pointed at PostgreSQL."""

    def __init__(self, root: Path, config_text: str, database_url: str, *, env: dict[str, str] | None = None) -> None:
        super().__init__(root, config_text, env=env)
        self._postgres_url = database_url

    @property
    def database_url(self) -> str:
        return self._postgres_url
