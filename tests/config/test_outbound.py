"""Outbound base URLs checked at load: link-local / cloud-metadata destinations (every spelling, every kind of
base URL, with an explicit allow switch per kind) and base URLs that point back at the gateway itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_text
from relaygate.config.outbound import GatewayAddress, OutboundCheck
from relaygate.config.problems import ConfigError, Problem
from tests.helpers.gateway import run_cli, subprocess_env

GATEWAY = GatewayAddress("127.0.0.1", 8080)
METADATA_SPELLINGS = [
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "169.254.43518",
    "0xa9.0xfe.0xa9.0xfe",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[fd00:ec2::254]",
    "[fe80::1]",
    "169.254.169.254.",
]


@pytest.mark.parametrize("host", METADATA_SPELLINGS)
def test_every_spelling_of_a_metadata_address_is_refused(host: str) -> None:
    rule = OutboundCheck().problem(f"http://{host}/latest")
    assert rule is not None and "allow_metadata_destinations" in rule
    assert OutboundCheck().problem(f"http://{host}/latest", allow_metadata=True) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "http://10.0.0.5:8000/v1",
        "http://127.0.0.1:8000",
        "http://vllm:8000/v1",
        "http://[::1]:9000",
    ],
)
def test_ordinary_destinations_pass(url: str) -> None:
    assert OutboundCheck(GATEWAY).problem(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://localhost:8080",
        "https://127.0.0.1:8080",
        "http://[::1]:8080/x",
        "http://127.0.0.2:8080",
        "http://LOCALHOST.:8080",
    ],
)
def test_the_gateway_own_address_is_a_loop(url: str) -> None:
    rule = OutboundCheck(GATEWAY).problem(url)
    assert rule is not None and "this gateway itself (127.0.0.1:8080)" in rule and "loop" in rule


def test_default_ports_count() -> None:
    assert OutboundCheck(GatewayAddress("127.0.0.1", 80)).problem("http://localhost/v1") is not None
    assert OutboundCheck(GatewayAddress("127.0.0.1", 443)).problem("https://localhost/v1") is not None
    assert OutboundCheck(GatewayAddress("127.0.0.1", 80)).problem("https://localhost/v1") is None


def test_a_wildcard_bind_makes_every_local_address_the_gateway() -> None:
    check = OutboundCheck(GatewayAddress("0.0.0.0", 8080))
    assert check.problem("http://127.0.0.1:8080") is not None
    assert check.problem("http://192.0.2.10:8080") is None  # TEST-NET: not an address of this machine
    assert check.problem("http://127.0.0.1:8081") is None


def test_without_a_known_address_nothing_is_a_loop() -> None:
    assert OutboundCheck(None).problem("http://127.0.0.1:8080") is None


# -- every kind of outbound base URL, through the loader and compiler ------------------------------------

OPENAI = """
type: provider-account/openai
name: openai-main
auth_data: {{type: api-key, api_key: "${{KEY}}"}}
base_url: {url}
{allow}integrations:
  - {{name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}}
"""
SELF_HOSTED = """
type: provider-account/self-hosted-model
name: vllm
{allow}integrations:
  - {{name: llama, type: integration/model/self-hosted-model, hosted_model_name: llama, url: "{url}",
     model_types: [chat]{own}}}
"""
SELF_HOSTED_ACCOUNT_URL = """
type: provider-account/self-hosted-model
name: vllm
base_url: "{url}"
integrations:
  - {{name: llama, type: integration/model/self-hosted-model, hosted_model_name: llama, model_types: [chat]}}
"""
NGROK = """
on_http_request:
  - type: ai-gateway
    config:
      providers:
        - {{id: inference, base_url: "{url}", models: [{{id: llama3}}]{own}}}
"""
CUSTOM = """
type: provider-account/custom-endpoint
name: speech
integrations:
  - {{type: integration/model/custom-endpoint, name: east, base_url: "{url}"}}
"""


def problems_of(text: str, gateway: GatewayAddress | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        compile_manifests(load_text(text, "gw.yaml", env={"KEY": "k"}), gateway=gateway)
    return list(caught.value.problems)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (OPENAI.format(url="http://169.254.169.254/v1", allow=""), "base_url"),
        (OPENAI.format(url="http://0xa9fea9fe/v1", allow=""), "base_url"),
        (SELF_HOSTED.format(url="http://[fd00:ec2::254]:8000/v1", allow="", own=""), "integrations[0].url"),
        (SELF_HOSTED_ACCOUNT_URL.format(url="http://2852039166/v1"), "integrations[0].url"),
        (
            NGROK.format(url="https://[::ffff:169.254.169.254]/v1", own=""),
            "on_http_request[0].config.providers[0].base_url",
        ),
        (CUSTOM.format(url="http://0251.0376.0251.0376"), "integrations[0].base_url"),
    ],
    ids=["openai", "openai-hex", "self-hosted-url", "self-hosted-account-url", "ai-gateway", "custom-endpoint"],
)
def test_metadata_destinations_are_refused_for_every_kind_of_base_url(text: str, field: str) -> None:
    [problem] = problems_of(text)
    assert problem.field == field
    assert "link-local/cloud-metadata" in problem.rule and "allow_metadata_destinations: true" in problem.rule


@pytest.mark.parametrize(
    "text",
    [
        OPENAI.format(url="http://169.254.169.254/v1", allow="allow_metadata_destinations: true\n"),
        SELF_HOSTED.format(url="http://169.254.169.254/v1", allow="allow_metadata_destinations: true\n", own=""),
        SELF_HOSTED.format(url="http://169.254.169.254/v1", allow="", own=", allow_metadata_destinations: true"),
        NGROK.format(url="https://169.254.169.254/v1", own=", allow_metadata_destinations: true"),
    ],
    ids=["provider-account", "self-hosted-account", "self-hosted-integration", "ai-gateway-provider"],
)
def test_each_kind_has_an_explicit_allow_switch(text: str) -> None:
    snapshot = compile_manifests(load_text(text, "gw.yaml", env={"KEY": "k"}))
    assert "169.254.169.254" in snapshot.metadata_allowed_hosts  # the connect-time guard lets this host through


def test_an_integration_may_narrow_its_account_allow_switch() -> None:
    text = SELF_HOSTED.format(
        url="http://169.254.169.254/v1",
        allow="allow_metadata_destinations: true\n",
        own=", allow_metadata_destinations: false",
    )
    [problem] = problems_of(text)
    assert problem.field == "integrations[0].url"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (OPENAI.format(url="http://localhost:8080/v1", allow=""), "base_url"),
        (SELF_HOSTED.format(url="http://127.0.0.1:8080/v1", allow="", own=""), "integrations[0].url"),
        (NGROK.format(url="http://127.0.0.1:8080/v1", own=""), "on_http_request[0].config.providers[0].base_url"),
        (CUSTOM.format(url="http://127.0.0.1:8080"), "integrations[0].base_url"),
    ],
    ids=["openai", "self-hosted", "ai-gateway", "custom-endpoint"],
)
def test_base_urls_pointing_at_the_gateway_are_refused(text: str, field: str) -> None:
    [problem] = problems_of(text, GATEWAY)
    assert problem.field == field and "this gateway itself" in problem.rule
    assert compile_manifests(load_text(text, "gw.yaml", env={"KEY": "k"}), gateway=GatewayAddress("127.0.0.1", 9999))


def test_check_refuses_a_loop_for_the_default_or_given_address(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(CUSTOM.format(url="http://127.0.0.1:8080"))
    result = run_cli("check", "-f", str(path), env=subprocess_env())
    assert result.returncode == 1 and "this gateway itself (127.0.0.1:8080)" in result.stdout, result.stdout
    result = run_cli("check", "-f", str(path), "--port", "9090", env=subprocess_env())
    assert result.returncode == 0, result.stdout + result.stderr
    path.write_text(CUSTOM.format(url="http://127.0.0.1:9090"))
    result = run_cli("check", "-f", str(path), "--host", "0.0.0.0", "--port", "9090", env=subprocess_env())
    assert result.returncode == 1 and "this gateway itself (0.0.0.0:9090)" in result.stdout, result.stdout
