"""`relaygate guardrails test` through the real CLI (`python -m relaygate`): candidate rules replayed
over the rows a serving gateway logged for real requests (users, a team, a virtual account,
metadata, embeddings, a request that kept no body, a custom-endpoint call), on SQLite, and over rows
written to PostgreSQL. The counts per rule and per guardrail are checked exactly; a bad rules file
reads like `relaygate check`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from relaygate.observe.store.sqlite import SQLiteLogStore
from tests.admin.admin_config import start
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle, run_cli, subprocess_env
from tests.helpers.log_records import log_record

SECRET = "AKIAIOSFODNN7EXAMPLE"
RULES = """\
type: provider-account/guardrail-config-group
name: candidate
integrations:
  - {name: no-secrets, type: secrets, config: {kinds: [aws_access_key]}}
  - {name: pii-mask, type: pii, operation: mutate, config: {entities: [email], action: mask}}
  - {name: watch, type: keywords, enforcing_strategy: audit, config: {words: [watchlist]}}
  - {name: hook, type: webhook, config: {url: "http://127.0.0.1:9/never-called"}}
---
type: gateway-guardrails-config
name: guardrails
match: all
rules:
  - id: ml-secrets
    when: {models: [mock/echo], subjects: [team:ml]}
    llm_input_guardrails: [candidate/no-secrets, candidate/hook]
  - id: prod-watch
    when: {metadata: {env: prod}}
    llm_input_guardrails: [candidate/watch]
  - id: everyone
    when: {models: ["mock/*"]}
    llm_input_guardrails: [candidate/pii-mask, candidate/watch]
"""


def _tally(
    rows: int, block: int = 0, mask: int = 0, flags: int = 0, errors: int = 0, skipped: int = 0
) -> dict[str, Any]:
    def pct(n: int) -> float:
        return round(100.0 * n / rows, 1) if rows else 0.0

    return {
        "rows": rows,
        "would_block": block,
        "would_block_pct": pct(block),
        "would_mask": mask,
        "would_mask_pct": pct(mask),
        "flags": flags,
        "errors": errors,
        "skipped": skipped,
    }


def _guardrails_test(database_url: str, rules: Path, *args: str) -> Any:
    result = run_cli("guardrails", "test", "--rules", str(rules), "--database-url", database_url, *args)
    return result


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "candidate.yaml"
    path.write_text(RULES, encoding="utf-8")
    return path


@pytest.fixture
def logged(gateway_factory: GatewayFactory) -> GatewayHandle:
    """A gateway without guardrails that served (and logged) eight requests of every kind."""
    gateway = start(gateway_factory)
    alice, bob = gateway.create_token(user="alice@example.com"), gateway.create_token(user="bob@example.com")
    bot = gateway.create_token(virtual_account="bot")

    def chat(token: str, text: str, model: str = "mock/echo", **headers: str) -> None:
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        gateway.request("POST", "/api/llm/chat/completions", token=token, json=body, headers=headers)

    chat(alice, "please mail carol.jones@corp.example.com")  # everyone: masked
    chat(bob, f"my key is {SECRET}")  # team ml: blocked
    chat(bob, "hello there", **{"x-tfy-metadata": '{"env": "prod"}'})  # all three rules
    chat(bot, "a watchlist item")  # a virtual account: flagged
    chat(alice, f"unlogged {SECRET}", **{"x-tfy-logging-config": '{"enabled": false}'})  # no body logged
    embed = {"model": "mock/echo", "input": f"embed {SECRET}"}
    assert gateway.request("POST", "/api/llm/embeddings", token=bob, json=embed).status == 200  # blocked
    chat(bob, "no rule for this model", model="closed/gpt")  # no input guardrail
    gateway.request("POST", "/proxy-api/tools/search/q", token=alice, json={"q": SECRET})  # not an LLM request
    assert len(gateway.wait_for_logs(8, limit=100)) == 8
    return gateway


def test_counts_per_rule_and_guardrail_over_real_logged_requests(logged: GatewayHandle, rules: Path) -> None:
    result = _guardrails_test(logged.database_url, rules, "--since", "1h", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    report = orjson.loads(result.stdout)
    assert report["rows"] == {
        "read": 8,
        "checked": 5,
        "no_body_logged": 1,
        "not_an_llm_request": 1,
        "unreadable_body": 0,
        "no_input_guardrail": 1,
    }
    assert report["capped"] is False and report["rules_file"] == str(rules)
    assert report["rules"] == [
        {"id": "ml-secrets", **_tally(3, block=2, skipped=3)},
        {"id": "prod-watch", **_tally(1)},
        {"id": "everyone", **_tally(5, mask=1, flags=1)},
    ]
    assert report["guardrails"] == [
        {"ref": "candidate/no-secrets", **_tally(3, block=2)},
        {"ref": "candidate/hook", **_tally(3, skipped=3)},
        {"ref": "candidate/watch", **_tally(5, flags=1)},
        {"ref": "candidate/pii-mask", **_tally(5, mask=1)},
    ]
    assert SECRET not in result.stdout  # counts and names only, never the text that was found


def test_the_text_report_and_the_since_window(logged: GatewayHandle, rules: Path) -> None:
    old = log_record(
        99,
        time=time.time() - 2 * 86_400,
        subject="user:bob@example.com",
        team="ml",
        requested_model="mock/echo",
        request_body=orjson.dumps({"model": "mock/echo", "messages": [{"role": "user", "content": SECRET}]}),
    )
    store = SQLiteLogStore(logged.database_url)
    store.write_many([old])
    store.close()
    text = _guardrails_test(logged.database_url, rules)  # default --since 24h: the old row is not read
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "rows read 8, checked 5" in lines[1] and "no body logged 1" in lines[1]
    ml = next(line.split() for line in lines if line.startswith("ml-secrets"))
    assert ml == ["ml-secrets", "3", "2", "(66.7%)", "0", "(0.0%)", "0", "0"]
    hook = next(line.split() for line in lines if line.startswith("candidate/hook"))
    assert hook[-1] == "3" and "not called in a dry run" in text.stdout
    week = orjson.loads(_guardrails_test(logged.database_url, rules, "--since", "3d", "--json").stdout)
    assert week["rows"]["read"] == 9 and week["rules"][0]["would_block"] == 3
    capped = orjson.loads(
        _guardrails_test(logged.database_url, rules, "--since", "3d", "--json", "--max-rows", "3").stdout
    )
    assert capped["capped"] is True and capped["rows"]["read"] == 3


def test_rows_in_postgresql(pg_url: str, rules: Path) -> None:
    from relaygate.observe.store.postgres import PostgresLogStore

    now = time.time()

    def body(text: str) -> bytes:
        return json.dumps({"model": "mock/echo", "messages": [{"role": "user", "content": text}]}).encode()

    store = PostgresLogStore(pg_url)
    store.write_many(
        [
            log_record(1, time=now - 60, subject="user:bob@example.com", team="ml", requested_model="mock/echo",
                       request_body=body(f"key {SECRET}")),
            log_record(2, time=now - 50, subject="user:eve@example.com", requested_model="mock/priced",
                       request_body=body("write eve@corp.example.com"), metadata={"env": "prod"}),
            log_record(3, time=now - 40, subject="user:eve@example.com", requested_model="mock/echo",
                       request_body=b'{"model": "mock/echo", "messages": [{"role": "user", "content": "cut'),
            log_record(4, time=now - 30, path="/v1/messages", subject="user:eve@example.com",
                       requested_model="mock/echo", request_body=body("a watchlist message")),
        ]
    )  # fmt: skip
    store.close()
    result = _guardrails_test(pg_url, rules, "--json")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["rows"]["read"] == 4 and report["rows"]["checked"] == 3 and report["rows"]["unreadable_body"] == 1
    rules_by_id = {r["id"]: r for r in report["rules"]}
    assert rules_by_id["ml-secrets"]["would_block"] == 1
    assert rules_by_id["prod-watch"]["rows"] == 1
    assert rules_by_id["everyone"] == {"id": "everyone", **_tally(3, mask=1, flags=1)}


def test_a_bad_rules_file_reads_like_check(tmp_path: Path, logged: GatewayHandle) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.replace("[candidate/watch]", "[candidate/nope]"), encoding="utf-8")
    result = _guardrails_test(logged.database_url, bad)
    check = run_cli("check", "-f", str(bad), env=subprocess_env())
    assert result.returncode == 1 and check.returncode == 1
    problem = check.stdout.splitlines()[0]
    assert "candidate/nope" in problem and problem in result.stdout
    assert "problem(s) found" in result.stdout

    output_only = tmp_path / "output.yaml"
    output_only.write_text(RULES.replace("llm_input_guardrails", "llm_output_guardrails"), encoding="utf-8")
    result = _guardrails_test(logged.database_url, output_only)
    assert result.returncode == 1 and "no gateway-guardrails-config rule with llm_input_guardrails" in result.stderr

    missing = _guardrails_test(logged.database_url, tmp_path / "absent.yaml")
    assert missing.returncode == 1 and "absent.yaml" in missing.stderr


def test_a_missing_database_is_not_created(tmp_path: Path, rules: Path) -> None:
    database = tmp_path / "nowhere.db"
    result = _guardrails_test(f"sqlite:///{database}", rules)
    assert result.returncode == 1 and "does not exist" in result.stderr
    assert not database.exists()
