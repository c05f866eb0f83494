"""The shipped examples stay valid: the README points newcomers at them."""

import itertools
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from relaygate.config.compile import compile_manifests, load_snapshot
from relaygate.config.loader import load_path
from tests.helpers.gateway import free_port, http_request, subprocess_env
from tests.upstreams.gemini_mock import service_account_key

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_serves_the_mock_model() -> None:
    snapshot = load_snapshot(str(EXAMPLES / "quickstart.yaml"))
    assert snapshot.models["mock/echo"].provider == "mock"


def _service_account_json() -> str:
    """A syntactically real service-account key (a fresh RSA key; never used to call Google)."""
    return json.dumps(service_account_key("https://oauth2.googleapis.com/token", "demo-project")[0])


def test_providers_example_compiles_with_its_keys_set() -> None:
    env = {
        name: "test-key"
        for name in (
            "OPENAI_API_KEY",
            "AZURE_OPENAI_API_KEY",
            "GROQ_API_KEY",
            "MISTRAL_API_KEY",
            "TOGETHER_API_KEY",
            "ANTHROPIC_API_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "GEMINI_API_KEY",
            "COHERE_API_KEY",
        )
    }
    env["GCP_SERVICE_ACCOUNT_JSON"] = _service_account_json()
    snapshot = compile_manifests(load_path(EXAMPLES / "providers.yaml", env=env))
    kinds = {target.provider for target in snapshot.models.values()}
    assert kinds == {
        "openai",
        "azure-openai",
        "self-hosted-model",
        "groq",
        "mistral",
        "together",
        "anthropic",
        "aws-bedrock",
        "google-gemini",
        "google-vertex",
        "cohere",
        "mock",
    }
    assert snapshot.models["bedrock/claude-sonnet"].base_url == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert snapshot.models["vertex/gemini-pro"].options["project"] == "demo-project"
    assert snapshot.models["groq/llama-3.1-70b"].base_url == "https://api.groq.com/openai/v1"


def test_custom_endpoint_examples_compile() -> None:
    env = {"AZURE_SPEECH_KEY_EASTUS2": "k1", "AZURE_SPEECH_KEY_WESTUS2": "k2", "SEARCH_API_TOKEN": "t"}
    speech = compile_manifests(load_path(EXAMPLES / "custom-endpoint-azure-speech.yaml", env=env))
    assert speech.proxies["azure-speech"].endpoints["eastus2"].host == "eastus2.tts.speech.microsoft.com"
    pools = compile_manifests(load_path(EXAMPLES / "custom-endpoint-pool.yaml", env=env))
    assert pools.proxies["azure-speech-pool"].slug == "tts"
    assert pools.proxies["search-pool"].routing_type == "priority"


def test_virtual_models_example_compiles() -> None:
    snapshot = load_snapshot(str(EXAMPLES / "virtual-models.yaml"))
    assert {vm.strategy for vm in snapshot.virtual_models.values()} == {"weight", "priority", "latency"}


def test_limits_example_compiles_beside_the_quickstart(tmp_path: Path) -> None:
    for name in ("quickstart.yaml", "limits.yaml"):  # the rules name the quickstart's mock/echo
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    snapshot = load_snapshot(str(tmp_path))
    rules = {rule.id: rule for rule in snapshot.limits.rules}
    assert rules["echo-5-per-minute"].models == frozenset({"mock/echo"})
    assert rules["echo-5-per-minute"].applies_per == ("user",)
    assert rules["priced-echo-daily"].kind == "budget" and rules["priced-echo-daily"].limit == 1
    assert rules["everyone-monthly-audit"].audit
    assert snapshot.models["mock-priced/echo"].price is not None


# -- every example runs as its header says ------------------------------------------------------------
#
# Header format (the first comment block of every example):
#   # <what it is>
#   # Needs: <what must be beside it: files, environment variables, services>
#   # Run:
#   #   <command>          (one per line, run from the repository root; `relaygate serve` last)
# The test runs those commands in a copy of examples/, with `relaygate` as `python -m relaygate`, the
# variables the Needs lines name set to placeholder values, and `--host/--port` added to `serve`.

ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


@dataclass
class Header:
    needs: str
    run: list[str]


def _header(path: Path) -> Header:
    lines = path.read_text().splitlines()
    comments = list(itertools.takewhile(lambda line: line.startswith("#"), lines))
    needs: list[str] = []
    run: list[str] = []
    section = None
    for line in comments:
        if line.startswith("# Needs:"):
            section, text = "needs", line[len("# Needs:") :]
        elif line.startswith("# Run:"):
            section, text = "run", ""
        elif line.startswith("#   ") and section is not None:
            text = line[1:].strip()
        else:
            section = None if section == "run" or not line.startswith("#   ") else section
            continue
        if section == "needs":
            needs.append(text.strip())
        elif section == "run" and text:
            run.append(text)
    return Header(" ".join(needs), run)


def _placeholder_env(needs: str) -> dict[str, str]:
    env = {name: f"placeholder-{name.lower()}" for name in ENV_NAME.findall(needs)}
    if "GCP_SERVICE_ACCOUNT_JSON" in env:
        env["GCP_SERVICE_ACCOUNT_JSON"] = _service_account_json()
    return env


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example_header_says_what_it_needs_and_how_to_run_it(example: str) -> None:
    header = _header(EXAMPLES / example)
    assert header.needs, f"{example}: no '# Needs:' line"
    assert header.run, f"{example}: no '# Run:' block"
    assert all(command.startswith(("relaygate ", "mkdir ", "cp ", "export ")) for command in header.run), header.run
    assert any(command.startswith("relaygate serve") for command in header.run) or any(
        command.startswith("relaygate check") for command in header.run
    ), header.run


@dataclass
class Ran:
    """An example served as its header says: the gateway URL and the token its commands printed."""

    url: str
    token: str | None


@contextmanager
def _run_header(example: str, tmp_path: Path) -> Iterator[Ran]:
    header = _header(EXAMPLES / example)
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    env = subprocess_env(**_placeholder_env(header.needs))
    python = shlex.quote(sys.executable)
    token = None
    server: subprocess.Popen[bytes] | None = None
    port = free_port()
    log_path = tmp_path / "serve.log"
    try:
        for command in header.run:
            shell = re.sub(r"(^|&& )relaygate ", rf"\1{python} -m relaygate ", command)
            if command.startswith("relaygate serve"):
                with open(log_path, "wb") as log:
                    server = subprocess.Popen(
                        f"exec {shell} --host 127.0.0.1 --port {port}",
                        shell=True,
                        cwd=tmp_path,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                _wait_ready(server, port, log_path)
                continue
            result = subprocess.run(
                shell, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert result.returncode == 0, f"{example}: `{command}` failed:\n{result.stdout}\n{result.stderr}"
            if command.startswith("relaygate tokens create"):
                token = result.stdout.strip().splitlines()[-1]
        yield Ran(f"http://127.0.0.1:{port}", token)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)


def _wait_ready(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, f"relaygate serve exited:\n{log.read_text()}"
        try:
            if http_request("GET", f"http://127.0.0.1:{port}/ready", timeout=2).status == 200:
                return
        except OSError:  # not listening yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"relaygate serve was not ready in 30 s:\n{log.read_text()}")


def _chat(ran: Ran, model: str) -> int:
    assert ran.token and ran.token.startswith("rg-")
    return http_request(
        "POST",
        f"{ran.url}/api/llm/chat/completions",
        headers={"Authorization": f"Bearer {ran.token}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
    ).status


def test_quickstart_runs_as_its_header_says(tmp_path: Path) -> None:
    with _run_header("quickstart.yaml", tmp_path) as ran:
        assert _chat(ran, "mock/echo") == 200


def test_virtual_models_runs_alone_as_its_header_says(tmp_path: Path) -> None:
    with _run_header("virtual-models.yaml", tmp_path) as ran:
        for model in ("router/chat", "router/primary-backup", "router/fastest"):
            assert _chat(ran, model) == 200, model


def test_virtual_models_runs_beside_the_quickstart(tmp_path: Path) -> None:
    for name in ("quickstart.yaml", "virtual-models.yaml"):  # one config: no account defined twice
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    snapshot = load_snapshot(str(tmp_path))
    assert {"mock/echo", "mock-pool/fast", "mock-pool/slow"} <= set(snapshot.models)


def test_limits_runs_as_its_header_says(tmp_path: Path) -> None:
    with _run_header("limits.yaml", tmp_path) as ran:
        statuses = [_chat(ran, "mock/echo") for _ in range(6)]
        assert statuses == [200] * 5 + [429]


@pytest.mark.parametrize(
    "example",
    ["providers.yaml", "custom-endpoint-azure-speech.yaml", "custom-endpoint-pool.yaml", "ngrok-ai-gateway.yaml"],
)
def test_examples_with_credentials_run_as_their_headers_say(tmp_path: Path, example: str) -> None:
    with _run_header(example, tmp_path) as ran:
        assert ran.token and ran.token.startswith("rg-")
        models = http_request("GET", f"{ran.url}/api/llm/models", headers={"Authorization": f"Bearer {ran.token}"})
        assert models.status == 200


def test_guardrails_runs_as_its_header_says(tmp_path: Path) -> None:
    with _run_header("guardrails.yaml", tmp_path) as ran:
        assert _chat(ran, "mock/echo") == 200
        blocked = http_request(
            "POST",
            f"{ran.url}/api/llm/chat/completions",
            headers={"Authorization": f"Bearer {ran.token}"},
            json={"model": "mock/echo", "messages": [{"role": "user", "content": "key AKIAIOSFODNN7EXAMPLE"}]},
        )
        assert blocked.status == 400 and blocked.json()["error"]["code"] == "guardrail_blocked"


def test_cache_runs_as_its_header_says(tmp_path: Path) -> None:
    with _run_header("cache.yaml", tmp_path) as ran:
        statuses = []
        for _ in range(2):
            answer = http_request(
                "POST",
                f"{ran.url}/api/llm/chat/completions",
                headers={"Authorization": f"Bearer {ran.token}"},
                json={"model": "mock/echo", "messages": [{"role": "user", "content": "same question"}]},
            )
            assert answer.status == 200
            statuses.append(answer.headers["x-tfy-cache-status"])
        assert statuses == ["miss", "hit"]
