"""Database URL handling: which backend a URL selects, and passwords kept out of every message."""

from __future__ import annotations

import pytest

from relaygate.auth.open_store import open_token_store
from relaygate.auth.store import SQLiteTokenStore
from relaygate.database import (
    DatabaseError,
    DatabaseURLError,
    PostgresDatabase,
    database_kind,
    redact_url,
    scrub,
    sqlite_path,
)
from relaygate.observe.store import open_log_store
from relaygate.observe.store.sqlite import SQLiteLogStore
from tests.helpers.gateway import free_port, run_cli


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///./relaygate.db", "sqlite"),
        ("sqlite:///:memory:", "sqlite"),
        ("postgresql://u:p@db:5432/relaygate", "postgres"),
        ("postgres://u@db/relaygate", "postgres"),
        ("PostgreSQL://u@db/relaygate", "postgres"),
    ],
)
def test_database_kind_by_scheme(url: str, kind: str) -> None:
    assert database_kind(url) == kind


@pytest.mark.parametrize("url", ["mysql://u@h/db", "relaygate.db", "postgresql:relaygate"])
def test_unsupported_url_is_refused(url: str) -> None:
    with pytest.raises(DatabaseURLError):
        database_kind(url)


def test_sqlite_path_refuses_postgres_url_without_password() -> None:
    with pytest.raises(DatabaseURLError) as info:
        sqlite_path("postgresql://app:s3cret-pw@db/relaygate")
    assert "s3cret-pw" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://app:s3cret@db:5432/rg", "postgresql://app:***@db:5432/rg"),
        ("postgres://app@db/rg", "postgres://app@db/rg"),
        ("postgresql://db/rg?password=s3cret&sslmode=require", "postgresql://db/rg?password=***&sslmode=require"),
        ("postgresql://app:p%40ss@db/rg", "postgresql://app:***@db/rg"),
        ("sqlite:///./relaygate.db", "sqlite:///./relaygate.db"),
    ],
)
def test_redact_url_hides_password(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_scrub_removes_raw_and_decoded_password() -> None:
    url = "postgresql://app:p%40ss-w0rd@db/rg"
    text = f"failed: {url} (password p@ss-w0rd, raw p%40ss-w0rd)"
    cleaned = scrub(text, url)
    assert "p@ss-w0rd" not in cleaned and "p%40ss-w0rd" not in cleaned
    assert "postgresql://app:***@db/rg" in cleaned


def test_unreachable_postgres_error_has_no_password() -> None:
    url = f"postgresql://app:hunter2-secret@127.0.0.1:{free_port()}/relaygate"
    with pytest.raises(DatabaseError) as info:
        PostgresDatabase(url, name="test")
    message = str(info.value)
    assert "hunter2-secret" not in message
    assert "postgresql://app:***@127.0.0.1" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_bad_url_parameter_error_has_no_password() -> None:
    url = "postgresql://app:hunter2-secret@127.0.0.1:1/relaygate?bogus=1"
    with pytest.raises(DatabaseError) as info:
        PostgresDatabase(url, name="test")
    assert "hunter2-secret" not in str(info.value)


def test_cli_reports_unreachable_postgres_without_password() -> None:
    url = f"postgresql://app:hunter2-secret@127.0.0.1:{free_port()}/relaygate"
    for args in (["tokens", "list"], ["logs"], ["migrate"]):
        result = run_cli(*args, "--database-url", url)
        assert result.returncode == 1, (args, result.stderr)
        assert "cannot connect to PostgreSQL" in result.stderr
        assert "hunter2-secret" not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


def test_sqlite_stays_the_default_backend(tmp_path: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path}/relaygate.db"
    tokens = open_token_store(url)
    logs = open_log_store(url)
    try:
        assert isinstance(tokens, SQLiteTokenStore)
        assert isinstance(logs, SQLiteLogStore)
    finally:
        tokens.close()
        logs.close()
