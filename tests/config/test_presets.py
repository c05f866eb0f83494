"""OpenAI-compatible presets compile from their registry row: public base URL, bearer key, price, `n` cap."""

import pytest

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_text
from relaygate.config.problems import ConfigError

# Each vendor's public OpenAI-compatible API base (their own docs), used when base_url is omitted.
PUBLIC_BASE_URLS = {
    "deepseek": "https://api.deepseek.com/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "xai": "https://api.x.ai/v1",
    "perplexity": "https://api.perplexity.ai",
    "cerebras": "https://api.cerebras.ai/v1",
    "nvidia": "https://integrate.api.nvidia.com/v1",
    "ollama": "http://localhost:11434/v1",
}
# A model each vendor's genai-prices table lists (NVIDIA and Ollama have none: cost unknown).
PRICED_MODELS = {
    "deepseek": "deepseek-chat",
    "fireworks": "accounts/fireworks/models/llama-v3p1-8b-instruct",
    "openrouter": "openai/gpt-4o",
    "xai": "grok-3",
    "perplexity": "sonar",
    "cerebras": "llama-3.3-70b",
}
# Vendors that document `n` > 1; the others return one choice.
SEVERAL_CHOICES = {"fireworks", "xai"}
ACCOUNT = """\
type: provider-account/{kind}
name: {kind}-acct
auth_data: {type: api-key, api_key: sk-{kind}-secret}
integrations:
  - {name: chat, type: integration/model/{kind}, model_id: "{model_id}", model_types: [chat]}
"""


@pytest.mark.parametrize("kind", PUBLIC_BASE_URLS)
def test_preset_without_base_url_calls_the_vendor_public_api_with_a_bearer_key(kind: str) -> None:
    model_id = PRICED_MODELS.get(kind, "some-model")
    text = ACCOUNT.replace("{kind}", kind).replace("{model_id}", model_id)
    target = compile_manifests(load_text(text, "presets.yaml", env={})).models[f"{kind}-acct/chat"]
    assert target.provider == kind
    assert target.base_url == PUBLIC_BASE_URLS[kind]
    assert dict(target.headers) == {"Authorization": f"Bearer sk-{kind}-secret"}
    assert (target.price is not None) == (kind in PRICED_MODELS)
    assert target.adapter.max_choices == (128 if kind in SEVERAL_CHOICES else 1)


def test_preset_base_url_overrides_the_default() -> None:
    text = ACCOUNT.replace("{kind}", "deepseek").replace("{model_id}", "deepseek-chat")
    text = text.replace("integrations:", "base_url: https://deepseek.internal.example.com/v1/\nintegrations:")
    target = compile_manifests(load_text(text, "presets.yaml", env={})).models["deepseek-acct/chat"]
    assert target.base_url == "https://deepseek.internal.example.com/v1"


def test_ollama_needs_no_key() -> None:
    text = "type: provider-account/ollama\nname: local\nintegrations:\n"
    text += "  - {name: chat, type: integration/model/ollama, model_id: 'llama3:8b', model_types: [chat]}\n"
    target = compile_manifests(load_text(text, "presets.yaml", env={})).models["local/chat"]
    assert target.headers == () and target.secrets == ()
    assert target.base_url == "http://localhost:11434/v1" and target.price is None


@pytest.mark.parametrize("kind", sorted(set(PUBLIC_BASE_URLS) - {"ollama"}))
def test_hosted_preset_without_a_key_is_refused(kind: str) -> None:
    lines = ACCOUNT.replace("{kind}", kind).replace("{model_id}", "some-model").splitlines(keepends=True)
    text = "".join(line for line in lines if not line.startswith("auth_data:"))
    with pytest.raises(ConfigError) as refused:
        load_text(text, "presets.yaml", env={})
    assert [p.field for p in refused.value.problems] == ["auth_data"]


def test_integration_type_must_match_the_preset_account() -> None:
    text = ACCOUNT.replace("{kind}", "xai").replace("{model_id}", "grok-3")
    text = text.replace("type: integration/model/xai", "type: integration/model/groq")
    with pytest.raises(ConfigError) as refused:
        load_text(text, "presets.yaml", env={})
    assert refused.value.problems[0].field.startswith("integrations")
