"""What a newcomer runs before any request: the README's two commands, `.ci/run`, the Dockerfile,
compose.yaml, LICENSE and the README's table of environment variables. Docker does not run here: the
files are parsed and checked against the README and each other."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from relaygate.settings import ENVIRONMENT, Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -e ."


def _section(title: str) -> str:
    """A README section's text: from its heading to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", README, re.MULTILINE)
    assert match, f"README has no section {title!r}"
    level = len(match.group(1))
    rest = README[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def _commands(section: str) -> list[str]:
    """The one-line commands of the ```sh blocks in a section."""
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


# -- the README's two commands ------------------------------------------------------------------------


def test_quickstart_is_two_commands_that_make_their_own_virtual_environment() -> None:
    quickstart = _section("Quickstart")
    serve, tests = _commands(quickstart)[:2]
    assert serve.startswith(INSTALL + " && ")
    assert ".venv/bin/relaygate tokens create --user " in serve
    assert serve.endswith(".venv/bin/relaygate serve --config examples/quickstart.yaml")
    assert tests == "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    assert not re.search(r"(^|&& )pip ", serve + tests), "a bare pip installs into the system Python"
    assert "Python >= 3.11" in quickstart
    assert re.search(r"about \d+ minutes", quickstart), "the README says how long the suite takes"


def test_readme_python_requirement_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"


def test_ci_runs_the_readme_test_command_as_written() -> None:
    tests = _commands(_section("Quickstart"))[1]
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == tests
    assert "redis-server" in ci and "pg_ctlcluster" in ci  # still starts the services the tests use


# -- LICENSE ------------------------------------------------------------------------------------------


def test_license_file_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


# -- the environment-variable table -------------------------------------------------------------------


def _env_table() -> dict[str, list[str]]:
    rows = {}
    for line in _section("Environment variables").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells and (match := re.fullmatch(r"`(RELAYGATE_[A-Z0-9_]+)`", cells[0])):
            rows[match.group(1)] = cells[1:]
    return rows


def _variables_in_code() -> set[str]:
    found = set(ENVIRONMENT)
    for path in (ROOT / "relaygate").rglob("*.py"):
        found |= set(re.findall(r"\bRELAYGATE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    return found


def test_every_variable_the_gateway_reads_is_in_the_readme_table() -> None:
    table = _env_table()
    missing = sorted(_variables_in_code() - set(table))
    assert not missing, f"README 'Environment variables' lacks {missing}"
    assert "RELAYGATE_INTERNAL_HOSTS" in table


def test_the_table_states_each_settings_default() -> None:
    defaults = Settings()
    table = _env_table()
    for variable, (field, _, render) in ENVIRONMENT.items():
        flag, default_cell, meaning = table[variable]
        value = getattr(defaults, field)
        assert meaning, variable
        if value is None:
            assert default_cell.startswith("none"), (variable, default_cell)
        elif value != getattr(Settings(), field):  # a fresh value per process (the instance id)
            assert default_cell.startswith("random"), (variable, default_cell)
        else:
            shown = f"{value:g}" if isinstance(value, float) else render(value)
            assert f"`{shown}`" in default_cell, (variable, shown, default_cell)


def test_the_table_names_the_serve_flag_of_each_variable() -> None:
    from relaygate.cli_parser import build_parser

    serve = next(a for a in build_parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    flags = {option for action in serve.choices["serve"]._actions for option in action.option_strings}
    for variable, (flag, _, _) in _env_table().items():
        if flag != "–":
            assert flag.strip("`") in flags, (variable, flag)


def test_provider_account_manager_is_explained() -> None:
    access = _section("Tokens and access")
    assert "`provider-account-manager`" in access and "`provider-account-access`" in access


# -- Dockerfile ---------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            out.append((instruction.upper(), " ".join(arguments.split())))
    return out


def _instruction(name: str) -> list[str]:
    return [arguments for instruction, arguments in _dockerfile() if instruction == name]


def test_dockerfile_uses_python_311_slim() -> None:
    assert _dockerfile()[0] == ("FROM", "python:3.11-slim")


def test_dockerfile_installs_with_the_readme_command() -> None:
    serve = _commands(_section("Quickstart"))[0]
    install = serve.split(" && .venv/bin/relaygate")[0]
    assert install == INSTALL
    assert install in _instruction("RUN")


def test_dockerfile_runs_as_a_non_root_user() -> None:
    steps = _dockerfile()
    users = [i for i, (instruction, _) in enumerate(steps) if instruction == "USER"]
    assert users, "no USER instruction"
    user = steps[users[-1]][1]
    assert user.split(":")[0] not in ("root", "0")
    runs_after = [args for instruction, args in steps[users[-1] :] if instruction == "RUN"]
    assert INSTALL in runs_after  # the virtual environment belongs to that user too


def test_dockerfile_entrypoint_is_relaygate_serving_on_all_interfaces() -> None:
    assert _instruction("ENTRYPOINT") == ['["relaygate"]']
    command = yaml.safe_load(_instruction("CMD")[-1])
    assert command[0] == "serve" and command[command.index("--host") + 1] == "0.0.0.0"
    assert "8080" in _instruction("EXPOSE")[0]


def test_dockerfile_health_check_asks_health_without_curl() -> None:
    (check,) = _instruction("HEALTHCHECK")
    assert "CMD" in check and "/health" in check and "urllib" in check and "curl" not in check
    exec_form = yaml.safe_load(check[check.index("CMD") + 3 :].strip())
    assert exec_form[0] in ("python3", "python")
    compile(exec_form[-1], "healthcheck", "exec")  # the Python it runs is valid


def test_dockerignore_keeps_local_state_out_but_not_what_the_image_copies() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "*.db"} <= ignored
    for arguments in _instruction("COPY"):
        sources = [word for word in arguments.split() if not word.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists() and source not in ignored, source


# -- compose.yaml -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, object]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def _services(compose: dict[str, object]) -> dict[str, dict[str, object]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def test_compose_has_postgres_redis_migrate_and_two_gateways(compose: dict[str, object]) -> None:
    services = _services(compose)
    gateways = [name for name, service in services.items() if (service.get("command") or [None])[0] == "serve"]
    assert len(gateways) == 2
    assert services["postgres"]["image"].startswith("postgres:")  # type: ignore[union-attr]
    assert services["redis"]["image"].startswith("redis:")  # type: ignore[union-attr]
    assert services["migrate"]["command"] == ["migrate"]
    published = [str(port).split(":")[0] for name in gateways for port in services[name]["ports"]]  # type: ignore
    assert len(set(published)) == 2


def test_compose_services_have_health_checks_and_start_in_order(compose: dict[str, object]) -> None:
    services = _services(compose)
    for name in ("postgres", "redis", "gateway-a", "gateway-b"):
        test = services[name]["healthcheck"]["test"]  # type: ignore[index]
        assert test[0] == "CMD" and len(test) > 1, name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]  # type: ignore[index]
    assert "/health" in " ".join(services["gateway-a"]["healthcheck"]["test"])  # type: ignore[index]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"  # type: ignore[index]
    for name in ("gateway-a", "gateway-b"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"  # type: ignore[index]
        assert depends["redis"]["condition"] == "service_healthy"  # type: ignore[index]


def test_compose_gateways_share_postgres_redis_and_a_config_volume(compose: dict[str, object]) -> None:
    services = _services(compose)
    postgres = services["postgres"]["environment"]  # type: ignore[index]
    for name in ("migrate", "gateway-a", "gateway-b"):
        env = services[name]["environment"]  # type: ignore[index]
        url = env["RELAYGATE_DATABASE_URL"]
        assert url == (
            f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
            f"@postgres:5432/{postgres['POSTGRES_DB']}"
        )
        assert env["RELAYGATE_REDIS_URL"].startswith("redis://redis:6379")
        config = env["RELAYGATE_CONFIG"]
        targets = [volume["target"] for volume in services[name]["volumes"]]  # type: ignore[index]
        assert targets and all(target.startswith(config) for target in targets)
        for volume in services[name]["volumes"]:  # type: ignore[index]
            assert (ROOT / volume["source"]).is_file()  # the mounted config files exist


def test_compose_config_volume_serves_and_its_gateways_start_like_the_readme(
    compose: dict[str, object], tmp_path: Path
) -> None:
    """The mounted files form a valid config, and the gateways' command is `relaygate serve` as documented."""
    from relaygate.config.compile import load_snapshot

    services = _services(compose)
    for volume in services["gateway-a"]["volumes"]:  # type: ignore[index]
        source = ROOT / volume["source"]
        (tmp_path / Path(volume["target"]).name).write_text(source.read_text())
    snapshot = load_snapshot(str(tmp_path))
    assert "mock/echo" in snapshot.models
    command = shlex.join(["relaygate", *services["gateway-a"]["command"]])  # type: ignore[misc]
    assert command == "relaygate serve --host 0.0.0.0 --port 8080"


def test_readme_documents_docker() -> None:
    docker = _section("Docker")
    assert "docker build" in docker and "docker compose up" in docker
    assert "compose.yaml" in docker and "Dockerfile" in docker
