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


# -- several files, empty configs, missing files, typos -----------------------------------------------

MODELS = """\
type: provider-account/mock
name: mock
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat]}
"""
ROUTED = """\
type: provider-account/virtual-model
name: routed
integrations:
  - name: chat
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets: [{target: mock/echo, priority: 0}]
"""


def check_many(*paths: Path, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    args = [a for p in paths for a in ("-f", str(p))]
    result = run_cli("check", *args, *extra, env=subprocess_env())
    return result.returncode, result.stdout + result.stderr


def test_check_validates_every_given_file_together(tmp_path: Path) -> None:
    # routed.yaml targets a model of models.yaml: valid only when both are checked as one config.
    models, routed = tmp_path / "models.yaml", tmp_path / "routed.yaml"
    models.write_text(MODELS)
    routed.write_text(ROUTED)
    code, output = check_many(models, routed)
    assert code == 0, output
    assert "1 models, 1 virtual models" in output, output
    code, output = check_many(routed)
    assert code == 1 and "provider account 'mock' does not exist" in output, output


def test_check_reports_problems_of_the_first_file_too(tmp_path: Path) -> None:
    broken, good = tmp_path / "broken.yaml", tmp_path / "good.yaml"
    broken.write_text(MODELS.replace("name: mock\n", "name: Not Valid!\n"))
    good.write_text("type: team\nname: ml\n")
    code, output = check_many(broken, good)
    assert code == 1, output
    assert lines_about(output, "broken.yaml", "name"), output


def test_check_takes_files_and_directories_together(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "mock.yaml").write_text(MODELS)
    routed = tmp_path / "routed.yaml"
    routed.write_text(ROUTED)
    code, output = check_many(folder, routed)
    assert code == 0, output


def test_check_of_an_empty_config_is_a_warning(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here yet\n")
    code, output = check_many(empty)
    assert code == 0, output
    assert lines_about(output, "warning", "empty.yaml", "nothing to serve"), output
    folder = tmp_path / "empty-dir"
    folder.mkdir()
    code, output = check_many(folder)
    assert code == 0 and lines_about(output, "warning", "empty-dir", "nothing to serve"), output


def test_check_of_a_config_without_models_warns_it_serves_nothing(tmp_path: Path) -> None:
    teams = tmp_path / "teams.yaml"
    teams.write_text("type: team\nname: ml\nmembers: [a@example.com]\n")
    code, output = check_many(teams)
    assert code == 0 and lines_about(output, "warning", "nothing to serve"), output


def test_check_of_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    code, output = check_many(tmp_path / "nope.yaml")
    assert code == 1
    assert output.strip().splitlines() == [f"relaygate: -f {tmp_path / 'nope.yaml'}: no such file or directory"]


def test_check_suggests_the_field_an_unknown_key_probably_meant(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        MODELS.replace("model_id: echo-1", "modle_id: echo-1").replace("name: mock\n", "name: mock\nbase_ur: x\n")
    )
    code, output = check_many(typo)
    assert code == 1, output
    assert "integrations[0].modle_id: is not a known field (did you mean 'model_id'?)" in output, output
    assert "base_ur: is not a known field (did you mean 'base_url'?)" in output, output
