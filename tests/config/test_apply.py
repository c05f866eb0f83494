"""Config held in the database: plan, diff and commit an apply against real SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygate.config.apply import DATABASE_SOURCE, commit, load_stored, plan_apply
from relaygate.config.diff import MASK, render
from relaygate.config.problems import ConfigError
from relaygate.config.store import ConfigConflict, ConfigStore, SQLiteConfigStore
from tests.helpers.postgres import fresh_schema

MOCK = """
type: provider-account/mock
name: mock
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat]}
"""
MOCK_TWO = """
type: provider-account/mock
name: mock-two
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-2, model_types: [chat]}
"""
VIRTUAL = """
type: provider-account/virtual-model
name: router
integrations:
  - name: chat
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets:
        - {target: mock/echo, priority: 0}
"""
OPENAI_WITH_REFERENCE = """
type: provider-account/openai
name: openai-main
auth_data: {type: api-key, api_key: "${OPENAI_KEY}"}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
"""
ENV = {"OPENAI_KEY": "sk-resolved-secret-value"}


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConfigStore]:
    if request.param == "sqlite":
        opened: ConfigStore = SQLiteConfigStore(f"sqlite:///{tmp_path / 'config.db'}")
    else:
        from relaygate.config.store_postgres import PostgresConfigStore

        opened = PostgresConfigStore(fresh_schema(request.getfixturevalue("pg_database")))
    yield opened
    opened.close()


def apply(store: ConfigStore, text: str, name: str = "gateway.yaml", *, prune: bool = False) -> int:
    return commit(store, plan_apply(store, [(text, name)], prune=prune, env=ENV))


def stored_names(store: ConfigStore) -> list[tuple[str, str]]:
    return [m.identity for m in store.load().manifests]


def test_apply_stores_each_manifest_and_bumps_the_revision(store: ConfigStore) -> None:
    assert store.revision() == 0
    assert apply(store, MOCK + "---" + MOCK_TWO) == 1
    assert store.revision() == 1
    assert stored_names(store) == [("provider-account/mock", "mock"), ("provider-account/mock", "mock-two")]
    assert set(load_stored(store.load()).models) == {"mock/echo", "mock-two/echo"}


def test_reapplying_the_same_file_plans_no_change(store: ConfigStore) -> None:
    apply(store, MOCK)
    plan = plan_apply(store, [(MOCK, "gateway.yaml")], env=ENV)
    assert not plan.changed
    assert [c.kind for c in plan.changes] == ["unchanged"]


def test_apply_keeps_stored_manifests_the_file_omits(store: ConfigStore) -> None:
    apply(store, MOCK)
    apply(store, MOCK_TWO)
    assert stored_names(store) == [("provider-account/mock", "mock"), ("provider-account/mock", "mock-two")]


def test_prune_deletes_stored_manifests_the_file_omits(store: ConfigStore) -> None:
    apply(store, MOCK + "---" + MOCK_TWO)
    plan = plan_apply(store, [(MOCK_TWO, "gateway.yaml")], prune=True, env=ENV)
    assert [(c.kind, c.identity[1]) for c in plan.changes] == [("delete", "mock"), ("unchanged", "mock-two")]
    commit(store, plan)
    assert stored_names(store) == [("provider-account/mock", "mock-two")]


def test_changed_manifest_is_an_update(store: ConfigStore) -> None:
    apply(store, MOCK)
    plan = plan_apply(store, [(MOCK.replace("echo-1", "echo-9"), "gateway.yaml")], env=ENV)
    assert [c.kind for c in plan.changes] == ["update"]
    commit(store, plan)
    assert load_stored(store.load()).models["mock/echo"].model_id == "echo-9"


def test_file_may_reference_a_model_stored_earlier(store: ConfigStore) -> None:
    apply(store, MOCK)
    apply(store, VIRTUAL, "router.yaml")
    assert "router/chat" in load_stored(store.load()).virtual_models


def test_invalid_file_stores_nothing_and_names_the_file(store: ConfigStore) -> None:
    apply(store, MOCK)
    broken = MOCK_TWO.replace("model_types: [chat]", "model_types: [chatty]")
    with pytest.raises(ConfigError) as caught:
        plan_apply(store, [(broken, "broken.yaml")], env=ENV)
    assert caught.value.problems[0].file == "broken.yaml"
    assert "model_types" in caught.value.problems[0].field
    assert store.revision() == 1 and stored_names(store) == [("provider-account/mock", "mock")]


def test_change_that_breaks_a_stored_manifest_is_refused_naming_the_database(store: ConfigStore) -> None:
    apply(store, MOCK + "---" + VIRTUAL)
    renamed = MOCK.replace("name: echo,", "name: other,")  # the stored router targets mock/echo
    with pytest.raises(ConfigError) as caught:
        plan_apply(store, [(renamed, "gateway.yaml")], env=ENV)
    assert any(p.file == DATABASE_SOURCE and "router" in p.manifest for p in caught.value.problems)


def test_missing_secret_reference_is_refused(store: ConfigStore) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_apply(store, [(OPENAI_WITH_REFERENCE, "gateway.yaml")], env={})
    assert "${OPENAI_KEY}" in str(caught.value) and "not set" in str(caught.value)


def test_secret_references_are_stored_unresolved(store: ConfigStore) -> None:
    apply(store, OPENAI_WITH_REFERENCE)
    body = store.load().manifests[0].body
    assert "${OPENAI_KEY}" in body and ENV["OPENAI_KEY"] not in body
    target = load_stored(store.load(), env=ENV).models["openai-main/gpt-4o"]
    assert ("Authorization", f"Bearer {ENV['OPENAI_KEY']}") in target.headers


def test_second_of_two_racing_applies_is_refused(store: ConfigStore) -> None:
    first = plan_apply(store, [(MOCK, "a.yaml")], env=ENV)
    second = plan_apply(store, [(MOCK_TWO, "b.yaml")], env=ENV)
    commit(store, first)
    with pytest.raises(ConfigConflict):
        commit(store, second)
    assert stored_names(store) == [("provider-account/mock", "mock")]


def test_ai_gateway_documents_are_stored_under_their_file_name(store: ConfigStore) -> None:
    policy = """
on_http_request:
  - type: ai-gateway
    config:
      providers:
        - id: openai
          api_keys: [{value: "${OPENAI_KEY}"}]
"""
    apply(store, policy, "ngrok.yaml")
    assert stored_names(store) == [("ai-gateway", "ngrok#1")]
    assert not plan_apply(store, [(policy, "ngrok.yaml")], env=ENV).changed


def test_rendered_diff_masks_literal_credentials_but_shows_references() -> None:
    from relaygate.config.diff import compare
    from relaygate.config.store import StoredManifest

    literal = OPENAI_WITH_REFERENCE.replace('"${OPENAI_KEY}"', "sk-literal-key-1234")
    old = StoredManifest("provider-account/openai", "openai-main", OPENAI_WITH_REFERENCE.lstrip())
    new = StoredManifest("provider-account/openai", "openai-main", literal.lstrip())
    text = render(compare([old], [new], prune=False), show_diff=True)
    assert "sk-literal-key-1234" not in text
    assert f"+  api_key: {MASK}" in text.replace("'", "")
    assert "${OPENAI_KEY}" in text
    assert text.splitlines()[0] == "~ provider-account/openai openai-main"
    assert text.splitlines()[-1] == "0 to create, 1 to update, 0 to delete, 0 unchanged"


def test_rendered_diff_masks_credential_headers_only() -> None:
    from relaygate.config.diff import masked_yaml

    text = masked_yaml("type: x\nname: y\nheaders: {Authorization: Bearer abc123, X-Team: ml}\n")
    assert "abc123" not in text and "X-Team: ml" in text


def test_every_apply_leaves_a_history_row_naming_who_and_what(store: ConfigStore) -> None:
    apply(store, MOCK)
    plan = plan_apply(store, [(MOCK_TWO, "two.yaml")], env=ENV)
    assert commit(store, plan, applied_by="user:alice@example.com") == 2
    history = store.history()
    assert [(h.revision, h.applied_by) for h in history] == [(2, "user:alice@example.com"), (1, "cli")]
    assert history[0].summary == "+ provider-account/mock mock-two"
    assert history[1].applied_at <= history[0].applied_at
    assert [h.revision for h in store.history(limit=1)] == [2]


def test_a_manifest_whose_type_names_it_by_default_is_stored(store: ConfigStore) -> None:
    apply(store, MOCK + "---\ntype: gateway-admin-config\nadmins: [user:alice@example.com]\n")
    assert ("gateway-admin-config", "gateway-admin") in stored_names(store)
    assert load_stored(store.load()).admin.admins == frozenset({"user:alice@example.com"})
