"""`gateway-admin-config`: validated by `check` with precise errors, compiled into the snapshot's roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaygate.config.compile import load_snapshot
from relaygate.config.options import LoadOptions
from tests.helpers.gateway import run_cli

ADMIN = """
type: gateway-admin-config
admins: [user:Alice@Example.com, team:platform]
viewers: [team:sre]
"""


def test_roles_compile_from_subjects_and_teams(tmp_path: Path) -> None:
    path = tmp_path / "admin.yaml"
    path.write_text(ADMIN)
    policy = load_snapshot(str(path), LoadOptions()).admin
    assert policy.role_of(frozenset({"user:alice@example.com"})) == "admin"
    assert policy.role_of(frozenset({"user:zed@example.com", "team:platform"})) == "admin"
    assert policy.role_of(frozenset({"user:sam@example.com", "team:sre"})) == "viewer"
    assert policy.role_of(frozenset({"user:bob@example.com", "team:everyone"})) == "user"
    assert policy.ui_enabled


def test_ui_is_off_by_default_without_admins(tmp_path: Path) -> None:
    path = tmp_path / "admin.yaml"
    path.write_text("type: gateway-admin-config\nviewers: [team:sre]\n")
    assert not load_snapshot(str(path), LoadOptions()).admin.ui_enabled


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (ADMIN.replace("team:platform", "virtualaccount:bot"), "admins[1]", "virtual accounts cannot administer"),
        (ADMIN.replace("team:sre", "sre"), "viewers[0]", "must be user:<email> or team:<name>"),
        (ADMIN.replace("team:sre", "team:sre, team:sre"), "viewers", "duplicate"),
        (ADMIN + "owners: [user:x@y.z]\n", "owners", "not a known field"),
        (ADMIN + "---\n" + ADMIN.replace("admins:", "name: second\nadmins:"), "type", "only one gateway-admin-config"),
    ],
)
def test_check_refuses_bad_admin_configs_precisely(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "admin.yaml"
    path.write_text(text)
    result = run_cli("check", "-f", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert where in output and message in output, output
