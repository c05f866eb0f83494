"""The config API: the served manifests masked, history, diff, validate, and apply (only when enabled)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.admin.admin_config import (
    ADMIN,
    BOOTSTRAP,
    CONFIG,
    ENV,
    LITERAL_KEY,
    SECRETS,
    USER,
    VIEWER,
    assert_no_secret,
    get,
    start,
)
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle, free_port

API = "/api/admin/v1"
HELLO = [{"role": "user", "content": "hi"}]
NEW_TEAM = "type: team\nname: newteam\nmembers: [nina@example.com]\n"
NEW_MODEL = """\
type: provider-account/mock
name: second
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-2, model_types: [chat]}
"""
ENDPOINT_FORM = {
    "type": "provider-account/custom-endpoint",
    "name": "wizard",
    "collaborators": [{"subject": "team:everyone", "role_id": "provider-account-access"}],
    "integrations": [
        {
            "type": "integration/model/custom-endpoint",
            "name": "weather",
            "base_url": "https://api.weather.example.com/v1",
            "headers": {"Authorization": "Bearer form-typed-secret-0006"},
        }
    ],
}


def post(gateway: GatewayHandle, path: str, token: str, body: Any) -> Any:
    answer = gateway.request("POST", API + path, token=token, json=body)
    assert_no_secret(answer, secrets=(*SECRETS, "form-typed-secret-0006", "sk-new-literal-key-0007"))
    return answer


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> GatewayHandle:
    return start(gateway_factory)


def _manifest(config: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(m for m in config["manifests"] if m.get("type") == kind and m.get("name") == name)


def test_served_config_masks_every_credential_and_keeps_references_readable(gateway: GatewayHandle) -> None:
    config = get(gateway, "/config", gateway.create_token(user=VIEWER))
    assert config["source"] == "files" and config["files"] == [str(gateway.config_path)]
    assert config["revision"] == 1 and config["version"].startswith("sha256:")
    assert config["writes_enabled"] is False and "--config" in config["writes_disabled_reason"]
    literal = _manifest(config, "provider-account/openai", "literal")
    assert literal["auth_data"] == {"type": "api-key", "api_key": "***"}
    closed = _manifest(config, "provider-account/openai", "closed")
    assert closed["auth_data"]["api_key"] == "${ADMIN_TEST_UPSTREAM_KEY}"  # a reference names, never holds
    tools = _manifest(config, "provider-account/custom-endpoint", "tools")
    assert tools["headers"] == {"X-Api-Key": "${ADMIN_TEST_ENDPOINT_SECRET}", "X-Team": "platform"}
    assert tools["integrations"][0]["headers"] == {"Authorization": "***"}
    assert "api_key: '***'" in config["yaml"] or "api_key: '***'" in config["yaml"].replace('"', "'")
    assert len(config["manifests"]) == len([d for d in CONFIG.split("---\n") if d.strip()])
    assert get(gateway, "/config", gateway.create_token(user=ADMIN))["version"] == config["version"]


def test_a_secret_written_where_the_schema_does_not_expect_one_is_masked_by_value(
    gateway_factory: GatewayFactory,
) -> None:
    # The literal key of account `literal` also written as an ordinary header value, and an env-resolved
    # value written out in a team name list: neither field is a credential by schema.
    config = CONFIG.replace("X-Team: platform", f"X-Team: {LITERAL_KEY}")
    gateway = start(gateway_factory, config)
    answer = gateway.request("GET", API + "/config", token=gateway.create_token(user=VIEWER))
    assert answer.status == 200
    assert_no_secret(answer)
    tools = _manifest(answer.json(), "provider-account/custom-endpoint", "tools")
    assert tools["headers"]["X-Team"] == "***"


def test_users_may_not_read_config_and_viewers_may_not_apply(gateway: GatewayHandle) -> None:
    bob = gateway.create_token(user=USER)
    assert gateway.request("GET", API + "/config", token=bob).status == 403
    assert gateway.request("POST", API + "/config/diff", token=bob, json={"yaml": NEW_TEAM}).status == 403
    sam = gateway.create_token(user=VIEWER)
    refused = gateway.request("POST", API + "/config/apply", token=sam, json={"yaml": NEW_TEAM})
    assert refused.status == 403 and refused.json()["error"]["code"] == "admin_forbidden"


def test_history_of_a_file_config_counts_reloads(gateway: GatewayHandle) -> None:
    viewer = gateway.create_token(user=VIEWER)
    history = get(gateway, "/config/history", viewer)
    assert history["source"] == "files" and history["data"] == [] and history["reloads"] == 0
    gateway.write_config(CONFIG.replace("{closed_port}", str(free_port())) + "---\n" + NEW_TEAM)
    deadline = time.monotonic() + 10
    while get(gateway, "/config/history", viewer)["reloads"] < 1:
        assert time.monotonic() < deadline, "the config file change was never reloaded"
        time.sleep(0.1)
    config = get(gateway, "/config", viewer)
    assert config["revision"] == 2 and _manifest(config, "team", "newteam")["members"] == ["nina@example.com"]


def test_diff_against_the_served_files_is_the_cli_diff_with_credentials_masked(gateway: GatewayHandle) -> None:
    viewer = gateway.create_token(user=VIEWER)
    served_port = gateway.config_path.read_text().split("127.0.0.1:")[1].split("/")[0]
    literal = CONFIG.split("---\n")[2].replace("{closed_port}", served_port)
    changed_key = literal.replace(LITERAL_KEY, "sk-new-literal-key-0007")
    answer = post(gateway, "/config/diff", viewer, {"yaml": NEW_TEAM + "---\n" + changed_key})
    assert answer.status == 200, answer.body
    diff = answer.json()
    assert diff["valid"] is True and diff["problems"] == [], diff["problems"]
    assert {(c["kind"], c["type"], c["name"]) for c in diff["changes"]} == {
        ("create", "team", "newteam"),
        ("update", "provider-account/openai", "literal"),
    }
    assert "+ team newteam" in diff["diff"] and "~ provider-account/openai literal" in diff["diff"]
    assert "sk-new-literal-key-0007" not in diff["diff"]
    assert "0 to delete" in diff["diff"]


def test_diff_of_an_invalid_config_lists_its_problems(gateway: GatewayHandle) -> None:
    answer = post(gateway, "/config/diff", gateway.create_token(user=VIEWER), {"yaml": "type: nope\nname: x\n"})
    assert answer.status == 200
    diff = answer.json()
    assert diff["valid"] is False and diff["changes"] == []
    assert diff["problems"][0]["path"] == "type" and "not a known manifest type" in diff["problems"][0]["message"]


def test_validate_the_add_custom_endpoint_form(gateway: GatewayHandle) -> None:
    viewer = gateway.create_token(user=VIEWER)
    answer = post(gateway, "/config/validate", viewer, {"manifests": [ENDPOINT_FORM]})
    assert answer.status == 200, answer.body
    result = answer.json()
    assert result["valid"] is True and result["problems"] == []
    assert "type: provider-account/custom-endpoint" in result["yaml"] and "Authorization: '***'" in result["yaml"]
    broken = {**ENDPOINT_FORM, "integrations": [{**ENDPOINT_FORM["integrations"][0], "base_url": "ftp://x/?q=1"}]}
    result = post(gateway, "/config/validate", viewer, {"manifests": [broken]}).json()
    assert result["valid"] is False
    assert [p["path"] for p in result["problems"]] == ["integrations[0].base_url"]
    assert result["problems"][0]["manifest"] == "provider-account/custom-endpoint wizard"


def test_bad_bodies_are_400_and_oversized_ones_413(gateway: GatewayHandle) -> None:
    admin = gateway.create_token(user=ADMIN)
    for body in ({}, {"yaml": NEW_TEAM, "manifests": []}, {"manifests": ["x"]}, {"yaml": 3}, {"yaml": "", "x": 1}):
        assert gateway.request("POST", API + "/config/diff", token=admin, json=body).status == 400, body
    huge = {"yaml": "# " + "x" * (1024 * 1024 + 10)}
    assert gateway.request("POST", API + "/config/validate", token=admin, json=huge).status == 413


def test_apply_is_refused_with_a_config_file_even_when_writes_are_enabled(gateway_factory: GatewayFactory) -> None:
    gateway = start(gateway_factory, RELAYGATE_ADMIN_CONFIG_WRITES="1")
    answer = gateway.request(
        "POST", API + "/config/apply", token=gateway.create_token(user=ADMIN), json={"yaml": NEW_TEAM}
    )
    assert answer.status == 403
    error = answer.json()["error"]
    assert error["code"] == "config_writes_disabled" and "--config" in error["message"]


def _stored_gateway(
    gateway_factory: GatewayFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str
) -> GatewayHandle:
    """A gateway serving without --config, from CONFIG applied to its database by the CLI."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    gateway = gateway_factory("", start=False, env={"RELAYGATE_ADMIN_TOKEN": BOOTSTRAP, **ENV, **env})
    gateway.use_config_file = False
    path = tmp_path / "applied.yaml"
    path.write_text(CONFIG.replace("{closed_port}", str(free_port())), encoding="utf-8")
    gateway.cli_in_process("apply", "-f", str(path), "--database-url", gateway.database_url)
    return gateway.start()


def test_apply_needs_the_writes_flag_on_a_database_config(
    gateway_factory: GatewayFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = _stored_gateway(gateway_factory, tmp_path, monkeypatch)
    config = get(gateway, "/config", gateway.create_token(user=VIEWER))
    assert config["source"] == "database" and config["writes_enabled"] is False
    answer = gateway.request(
        "POST", API + "/config/apply", token=gateway.create_token(user=ADMIN), json={"yaml": NEW_TEAM}
    )
    assert answer.status == 403
    error = answer.json()["error"]
    assert error["code"] == "config_writes_disabled" and "--admin-config-writes" in error["message"]


def test_apply_stores_a_revision_that_is_served_at_once_and_recorded(
    gateway_factory: GatewayFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = _stored_gateway(gateway_factory, tmp_path, monkeypatch, RELAYGATE_ADMIN_CONFIG_WRITES="1")
    alice = gateway.create_token(user=ADMIN)
    before = get(gateway, "/config", alice)
    assert before["source"] == "database" and before["revision"] == 1 and before["writes_enabled"] is True
    body = {"model": "second/echo", "messages": HELLO}
    assert gateway.request("POST", "/api/llm/chat/completions", token=alice, json=body).status == 404
    answer = post(gateway, "/config/apply", alice, {"yaml": NEW_MODEL})
    assert answer.status == 200, answer.body
    applied = answer.json()
    assert applied["applied"] is True and applied["revision"] == 2 and applied["served_revision"] == 2
    assert applied["changes"] == [{"kind": "create", "type": "provider-account/mock", "name": "second"}]
    assert gateway.request("POST", "/api/llm/chat/completions", token=alice, json=body).status == 200
    history = get(gateway, "/config/history", alice)["data"]
    assert [(h["revision"], h["applied_by"]) for h in history] == [(2, "user:alice@example.com"), (1, "cli")]
    assert history[0]["summary"] == "+ provider-account/mock second"
    after = get(gateway, "/config", alice)
    assert after["revision"] == 2 and after["version"] != before["version"]
    again = post(gateway, "/config/apply", alice, {"yaml": NEW_MODEL}).json()
    assert again["applied"] is False and again["revision"] == 2  # nothing changed: no new revision
    invalid = gateway.request("POST", API + "/config/apply", token=alice, json={"yaml": "type: nope\nname: x\n"})
    assert invalid.status == 400 and invalid.json()["error"]["code"] == "invalid_config"
