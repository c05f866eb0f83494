"""Access-log lines: the fields, logfmt escaping (no forged lines), JSON, and no token secret ever."""

from __future__ import annotations

import orjson
import pytest

from relaygate.observe.access_format import FIELDS, access_fields, iso_time, json_line, mask_tokens, text_line
from tests.helpers.log_records import log_record

TOKEN = "rg-abcdefghij12-" + "S" * 43
ROUTE = "/api/llm/chat/completions"


def _text(**overrides: object) -> str:
    return text_line(access_fields(ROUTE, log_record(1, **overrides))).decode()


def test_text_line_has_every_field_in_order_and_ends_with_one_newline() -> None:
    line = _text(input_tokens=7, output_tokens=3, cost_usd=0.0125, latency_ms=12.5, ttft_ms=4.0, trace_id="ab" * 16)
    assert line.endswith("\n") and line.count("\n") == 1
    keys = [pair.partition("=")[0] for pair in line.rstrip("\n").split(" ")]
    assert keys == list(FIELDS)
    assert "time=2023-11-14T22:13:21.000Z " in line
    assert f"route={ROUTE} status=200 subject=user:alice@x.com model=openai-main/gpt-4o " in line
    assert "latency_ms=12.5 ttft_ms=4.0 input_tokens=7 output_tokens=3 cost_usd=0.0125 error_type=-" in line


def test_unknown_values_are_a_dash_and_a_real_dash_is_quoted() -> None:
    line = _text(subject=None, requested_model="-")
    assert " subject=- " in line and ' model="-" ' in line


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ("x\nforged=1 status=200", '"x\\nforged=1 status=200"'),
        ("a\r\nb", '"a\\r\\nb"'),
        ('q"uote\\', '"q\\"uote\\\\"'),
        ("bell\x07\x1b[31m", '"bell\\x07\\x1b[31m"'),
        ("sep\u2028x\u0085y", '"sep\\u2028x\\x85y"'),
        ("", '""'),
        ("two words", '"two words"'),
    ],
)
def test_caller_values_cannot_break_or_forge_a_text_line(model: str, shown: str) -> None:
    line = _text(requested_model=model)
    assert f" model={shown} " in line
    assert line.count("\n") == 1 and len(line.splitlines()) == 1


def test_non_ascii_printable_text_is_kept_readable() -> None:
    assert ' subject="user:zoë 東京" ' in _text(subject="user:zoë 東京")


def test_json_line_is_one_object_with_every_field() -> None:
    line = json_line(access_fields(ROUTE, log_record(1, requested_model="m\nforged\u2028", error_type="x")))
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and len(line.decode().splitlines()) == 1
    data = orjson.loads(line)
    assert list(data) == list(FIELDS)
    assert data["model"] == "m\nforged\u2028" and data["route"] == ROUTE and data["ttft_ms"] is None


def test_json_line_survives_a_lone_surrogate() -> None:
    data = orjson.loads(json_line(access_fields(ROUTE, log_record(1, requested_model="bad\ud800"))))
    assert data["model"] == "bad\\ud800"


def test_text_line_escapes_a_lone_surrogate() -> None:
    assert ' model="bad\\ud800" ' in _text(requested_model="bad\ud800")


def test_token_secrets_are_masked_wherever_a_caller_put_them() -> None:
    record = log_record(1, requested_model=f"x/{TOKEN}", subject=f"user:{TOKEN}", request_id=TOKEN)
    for line in (text_line(access_fields(ROUTE, record)), json_line(access_fields(ROUTE, record))):
        assert b"S" * 10 not in line
        assert b"rg-abcdefghij12-***" in line
    assert mask_tokens("no token here") == "no token here"


def test_route_is_the_template_never_the_raw_path() -> None:
    record = log_record(1, path=f"/proxy-api/a/b/c?api_key={TOKEN}")
    line = text_line(access_fields("/proxy-api/{account}/{endpoint}/{path}", record))
    assert b"route=/proxy-api/{account}/{endpoint}/{path} " in line and b"api_key" not in line


def test_iso_time_is_utc_with_milliseconds() -> None:
    assert iso_time(0.25) == "1970-01-01T00:00:00.250Z"
