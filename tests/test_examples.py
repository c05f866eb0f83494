"""The shipped examples stay valid: the README points newcomers at them."""

import json
from pathlib import Path

from relaygate.config.compile import compile_manifests, load_snapshot
from relaygate.config.loader import load_path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_serves_the_mock_model() -> None:
    snapshot = load_snapshot(str(EXAMPLES / "quickstart.yaml"))
    assert snapshot.models["mock/echo"].provider == "mock"


def _service_account_json() -> str:
    """A syntactically real service-account key (a fresh RSA key; never used to call Google)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": "demo-project", "private_key_id": "k1",
                       "private_key": pem, "client_email": "relaygate@demo-project.iam.gserviceaccount.com",
                       "token_uri": "https://oauth2.googleapis.com/token"})


def test_providers_example_compiles_with_its_keys_set() -> None:
    env = {name: "test-key" for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "GROQ_API_KEY",
                                         "MISTRAL_API_KEY", "TOGETHER_API_KEY", "ANTHROPIC_API_KEY",
                                         "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GEMINI_API_KEY",
                                         "COHERE_API_KEY")}
    env["GCP_SERVICE_ACCOUNT_JSON"] = _service_account_json()
    snapshot = compile_manifests(load_path(EXAMPLES / "providers.yaml", env=env))
    kinds = {target.provider for target in snapshot.models.values()}
    assert kinds == {"openai", "azure-openai", "self-hosted-model", "groq", "mistral", "together", "anthropic",
                     "aws-bedrock", "google-gemini", "google-vertex", "cohere", "mock"}
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
