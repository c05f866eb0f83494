"""The shipped examples stay valid: the README points newcomers at them."""

from pathlib import Path

from relaygate.config.compile import compile_manifests, load_snapshot
from relaygate.config.loader import load_path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_serves_the_mock_model() -> None:
    snapshot = load_snapshot(str(EXAMPLES / "quickstart.yaml"))
    assert snapshot.models["mock/echo"].provider == "mock"


def test_providers_example_compiles_with_its_keys_set() -> None:
    env = {name: "test-key" for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "GROQ_API_KEY",
                                         "MISTRAL_API_KEY", "TOGETHER_API_KEY")}
    snapshot = compile_manifests(load_path(EXAMPLES / "providers.yaml", env=env))
    kinds = {target.provider for target in snapshot.models.values()}
    assert kinds == {"openai", "azure-openai", "self-hosted-model", "groq", "mistral", "together", "mock"}
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
