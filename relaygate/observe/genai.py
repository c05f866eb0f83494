"""OpenTelemetry GenAI names for Relaygate's operations and providers (semconv `gen_ai.*`).

Metrics and spans both label a model call with these, so a dashboard built on either matches.
"""

from __future__ import annotations

# gen_ai.operation.name by the gateway's operation (anything else: the operation's own name).
_OPERATIONS = {
    "chat": "chat",
    "messages": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
# gen_ai.provider.name by provider kind (semconv values; kinds outside the list keep their own name).
_PROVIDERS = {
    "openai": "openai",
    "azure-openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "aws-bedrock": "aws.bedrock",
    "google-gemini": "gcp.gemini",
    "google-vertex": "gcp.vertex_ai",
    "cohere": "cohere",
    "groq": "groq",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "xai": "x_ai",
}
# The operations that call a model (the gen_ai_* metric families and inference spans cover these).
MODEL_OPERATIONS = frozenset(
    {
        "chat",
        "messages",
        "messages_count_tokens",
        "completions",
        "embeddings",
        "images_generations",
        "images_edits",
        "audio_transcriptions",
        "audio_translations",
        "audio_speech",
        "rerank",
        "moderations",
        "responses",
    }
)


def operation_name(operation: str) -> str:
    """`gen_ai.operation.name` of a gateway operation."""
    return _OPERATIONS.get(operation, operation)


def provider_name(provider: str | None) -> str:
    """`gen_ai.provider.name` of a provider kind ("" when no provider was chosen)."""
    if not provider:
        return ""
    return _PROVIDERS.get(provider, provider)
