"""`relaygate logs` presentation: filter parsing and both output modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from relaygate.observe.query import format_rows, parse_metadata_filters
from relaygate.observe.record import LogRecord
from relaygate.observe.store.sqlite import SQLiteLogStore


def _rows(tmp_path: Path) -> list[dict[str, Any]]:
    store = SQLiteLogStore(f"sqlite:///{tmp_path / 'logs.db'}")
    store.write_many(
        [
            LogRecord(
                request_id="req-1",
                time=1_700_000_000.7,
                method="POST",
                path="/api/llm/chat/completions",
                subject="user:alice@x.com",
                requested_model="group/chat",
                resolved_model="openai-main/gpt-4o",
                status=200,
                streaming=True,
                input_tokens=12,
                output_tokens=34,
                cost_usd=0.000123,
                latency_ms=456.7,
                metadata={"team": "ml"},
                request_body=b'{"model":"group/chat"}',
                response_body=b"\xffok",
            ),
            LogRecord(
                request_id="req-2",
                time=1_700_000_060.0,
                method="POST",
                path="/api/llm/chat/completions",
                subject="virtualaccount:bot",
                requested_model="local/llama\x1b[2J",
                status=502,
                cost_unknown=True,
            ),
        ]
    )
    rows = store.query()
    store.close()
    return rows


def test_parse_metadata_filters() -> None:
    assert parse_metadata_filters(["team=ml", "q=a=b", "empty="]) == {"team": "ml", "q": "a=b", "empty": ""}


def test_parse_metadata_filter_without_equals_is_clear_error() -> None:
    with pytest.raises(ValueError, match="'team' must be KEY=VALUE"):
        parse_metadata_filters(["team"])


def test_parse_metadata_filter_with_empty_key_is_error() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_metadata_filters(["=ml"])


def test_json_mode_is_one_object_per_line_with_bodies(tmp_path: Path) -> None:
    lines = format_rows(_rows(tmp_path), as_json=True).splitlines()
    assert len(lines) == 2
    newest, oldest = (orjson.loads(line) for line in lines)
    assert newest["request_id"] == "req-2" and newest["request_body"] is None
    assert oldest["request_body"] == '{"model":"group/chat"}'
    assert oldest["response_body"] == "\ufffdok"
    assert oldest["metadata"] == {"team": "ml"}


def test_json_mode_accepts_byte_bodies() -> None:
    out = format_rows([{"request_id": "r", "request_body": b"hi"}], as_json=True)
    assert orjson.loads(out) == {"request_id": "r", "request_body": "hi"}


def test_table_mode_shows_columns(tmp_path: Path) -> None:
    header, newest, oldest = format_rows(_rows(tmp_path), as_json=False).splitlines()
    assert header.split()[:3] == ["time", "request_id", "subject"]
    assert "2023-11-14T22:13:20Z" in oldest
    assert "group/chat → openai-main/gpt-4o" in oldest
    assert "12/34" in oldest and "0.000123" in oldest and "457" in oldest and "yes" in oldest
    assert "unknown" in newest and "502" in newest and "-/-" in newest


def test_table_mode_strips_control_characters(tmp_path: Path) -> None:
    table = format_rows(_rows(tmp_path), as_json=False)
    assert "\x1b" not in table
    assert "local/llama?[2J" in table


def test_table_mode_with_no_rows() -> None:
    assert format_rows([], as_json=False) == "no matching requests"
    assert format_rows([], as_json=True) == ""
