"""Config held in the database: `relaygate apply` / `relaygate diff` against gateways serving without --config.

Real `relaygate serve` processes on SQLite (one) and on a shared PostgreSQL (two replicas); the CLI
applies files as an operator would, and the running gateways pick the change up without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.gateway import GatewayProcess
from tests.helpers.manifests import ALICE, MOCK_ONLY
from tests.helpers.postgres import PostgresGateway, fresh_database

SECOND = """\
type: provider-account/mock
name: second
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-2, model_types: [chat]}
"""
PICKUP_BUDGET = 3.0  # seconds: replicas poll the stored revision every second


def chat_status(gateway: GatewayProcess, token: str, model: str) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": "stored config"}]}
    return gateway.request("POST", "/api/llm/chat/completions", token=token, json=body).status


def wait_for_status(
    gateway: GatewayProcess, token: str, model: str, status: int, timeout: float = PICKUP_BUDGET + 2
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if chat_status(gateway, token, model) == status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{model} never answered {status} within {timeout}s\n{gateway.output()}")


def write(root: Path, name: str, text: str) -> str:
    path = root / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[GatewayProcess]:
    """One gateway on SQLite serving the config applied to its database (MOCK_ONLY applied first)."""
    gateway = GatewayProcess(tmp_path / "gw", "")
    gateway.use_config_file = False
    gateway.cli("apply", "-f", write(tmp_path, "mock.yaml", MOCK_ONLY), "--database-url", gateway.database_url)
    gateway.start()
    yield gateway
    gateway.stop()


def test_gateway_without_config_serves_what_was_applied(stored: GatewayProcess) -> None:
    token = stored.create_token(user=ALICE)
    assert chat_status(stored, token, "mock/echo") == 200


def test_applied_change_is_served_without_restart(stored: GatewayProcess, tmp_path: Path) -> None:
    token = stored.create_token(user=ALICE)
    pid = stored.process.pid if stored.process else None
    assert chat_status(stored, token, "second/echo") == 404
    result = stored.cli("apply", "-f", write(tmp_path, "second.yaml", SECOND), "--database-url", stored.database_url)
    assert "+ provider-account/mock second" in result.stdout and "config revision 2" in result.stdout
    assert wait_for_status(stored, token, "second/echo", 200) <= PICKUP_BUDGET
    assert chat_status(stored, token, "mock/echo") == 200  # apply without --prune keeps the rest
    assert stored.process is not None and stored.process.pid == pid


def test_prune_removes_what_the_file_leaves_out(stored: GatewayProcess, tmp_path: Path) -> None:
    token = stored.create_token(user=ALICE)
    path = write(tmp_path, "second.yaml", SECOND)
    result = stored.cli("apply", "-f", path, "--prune", "--database-url", stored.database_url)
    assert "- provider-account/mock mock" in result.stdout
    wait_for_status(stored, token, "mock/echo", 404)
    assert chat_status(stored, token, "second/echo") == 200


def test_invalid_apply_exits_1_and_the_gateway_keeps_serving(stored: GatewayProcess, tmp_path: Path) -> None:
    token = stored.create_token(user=ALICE)
    broken = write(tmp_path, "broken.yaml", SECOND.replace("name: second", "name: Not Valid!"))
    result = stored.cli("apply", "-f", broken, "--database-url", stored.database_url, check=False)
    assert result.returncode == 1
    assert f"{broken}: provider-account/mock Not Valid!: name:" in result.stdout
    assert "nothing was applied" in result.stdout
    time.sleep(1.5)
    assert chat_status(stored, token, "mock/echo") == 200


def test_dry_run_and_diff_store_nothing(stored: GatewayProcess, tmp_path: Path) -> None:
    token = stored.create_token(user=ALICE)
    path = write(tmp_path, "second.yaml", SECOND)
    dry = stored.cli("apply", "-f", path, "--dry-run", "--database-url", stored.database_url)
    assert "+ provider-account/mock second" in dry.stdout and "Dry run" in dry.stdout
    diff = stored.cli("diff", "-f", path, "--database-url", stored.database_url, check=False)
    assert diff.returncode == 1 and "+type: provider-account/mock" in diff.stdout
    time.sleep(1.5)
    assert chat_status(stored, token, "second/echo") == 404


def test_diff_exit_codes_say_same_changed_invalid(stored: GatewayProcess, tmp_path: Path) -> None:
    same = stored.cli("diff", "-f", write(tmp_path, "same.yaml", MOCK_ONLY), "--database-url", stored.database_url)
    assert same.returncode == 0 and "0 to create, 0 to update, 0 to delete, 1 unchanged" in same.stdout
    changed = stored.cli(
        "diff", "-f", write(tmp_path, "c.yaml", SECOND), "--database-url", stored.database_url, check=False
    )
    assert changed.returncode == 1
    invalid = stored.cli(
        "diff",
        "-f",
        write(tmp_path, "bad.yaml", "type: nope\nname: x\n"),
        "--database-url",
        stored.database_url,
        check=False,
    )
    assert invalid.returncode == 2 and "is not a known manifest type" in invalid.stdout


def test_virtual_account_tokens_are_checked_against_the_stored_config(stored: GatewayProcess, tmp_path: Path) -> None:
    refused = stored.cli(
        "tokens", "create", "--virtual-account", "ghost", "--database-url", stored.database_url, check=False
    )
    assert refused.returncode == 1 and "not declared in the config stored in the database" in refused.stderr
    account = "type: virtual-account\nname: ci-bot\nallowed_models: [mock/echo]\n"
    stored.cli("apply", "-f", write(tmp_path, "va.yaml", account), "--database-url", stored.database_url)
    token = stored.create_token(virtual_account="ci-bot")
    wait_for_status(stored, token, "mock/echo", 200)


def test_two_postgres_replicas_pick_up_one_apply(tmp_path: Path) -> None:
    with fresh_database() as url:
        replicas = [PostgresGateway(tmp_path / name, "", url) for name in ("a", "b")]
        for replica in replicas:
            replica.use_config_file = False
        a, b = replicas
        a.cli("apply", "-f", write(tmp_path, "mock.yaml", MOCK_ONLY), "--database-url", url)
        try:
            for replica in replicas:
                replica.start()
            token = a.create_token(user=ALICE)
            assert chat_status(b, token, "mock/echo") == 200
            b.cli("apply", "-f", write(tmp_path, "second.yaml", SECOND), "--database-url", url)
            for replica in replicas:
                assert wait_for_status(replica, token, "second/echo", 200) <= PICKUP_BUDGET
        finally:
            for replica in replicas:
                replica.stop()
