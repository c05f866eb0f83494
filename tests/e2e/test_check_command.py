"""`relaygate check -f FILE`: exit 0 for a good file; exit 1 listing every problem with file, manifest,
field path and rule."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.gateway import render, run_cli, subprocess_env
from tests.helpers.manifests import STANDARD

BAD = """\
type: provider-account/openai
name: bad-types
auth_data: {type: api-key, api_key: sk-test}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat, telepathy]}
---
type: provider-account/virtual-model
name: bad-weights
integrations:
  - name: balanced
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: weight-based-routing
      load_balance_targets:
        - {target: bad-types/gpt-4o, weight: 50}
        - {target: bad-types/gpt-4o, weight: 30}
---
type: provider-account/openai
name: missing-secret
auth_data: {type: api-key, api_key: "${RELAYGATE_TEST_SURELY_UNSET_SECRET}"}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
---
type: provider-account/openai
name: Not_Valid!
auth_data: {type: api-key, api_key: sk-test}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
"""


def check(path: Path) -> tuple[int, str]:
    result = run_cli("check", "-f", str(path), env=subprocess_env(), cwd=path.parent)
    return result.returncode, result.stdout + result.stderr


def lines_about(output: str, *needles: str) -> list[str]:
    return [line for line in output.splitlines() if all(n in line for n in needles)]


def test_check_good_file_exits_0(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(render(STANDARD, port=1234, vllm_port=1235, closed_port=1236))
    code, output = check(good)
    assert code == 0, output


def test_check_bad_file_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    code, output = check(bad)
    assert code == 1, output


def test_check_reports_unknown_model_type_with_field_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    _, output = check(bad)
    found = lines_about(output, "bad.yaml", "bad-types", "model_types")
    assert found, output
    assert any("chat" in line or "embedding" in line or "one of" in line for line in found), found


def test_check_reports_weights_not_summing_to_100(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    _, output = check(bad)
    found = lines_about(output, "bad.yaml", "bad-weights", "load_balance_targets")
    assert found and any("100" in line for line in found), output


def test_check_reports_missing_secret_reference(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    _, output = check(bad)
    assert lines_about(output, "bad.yaml", "missing-secret", "api_key"), output


def test_check_reports_invalid_account_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    _, output = check(bad)
    others = ("bad-types", "bad-weights", "missing-secret")
    found = [line for line in lines_about(output, "bad.yaml", "name") if not any(o in line for o in others)]
    assert found, output


def test_check_reports_every_problem_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    _, output = check(bad)
    assert len(lines_about(output, "bad.yaml")) >= 4, output


def test_check_reports_yaml_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("type: provider-account/openai\nname: [unclosed\n")
    code, output = check(broken)
    assert code == 1
    assert "broken.yaml" in output


def test_check_never_prints_secret_values(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD.replace("sk-test", "sk-should-not-be-printed-777"))
    _, output = check(bad)
    assert "sk-should-not-be-printed-777" not in output
