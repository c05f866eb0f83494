"""The GenAI semantic-convention vocabulary: operation and provider names of Relaygate's own."""

from __future__ import annotations

# Relaygate operation -> gen_ai.operation.name (chat and Messages are both chat).
_OPERATIONS = {
    "chat": "chat",
    "messages": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}

# Provider kind (providers/registry.py) -> gen_ai.provider.name; others keep their own name.
_PROVIDERS = {
    "azure-openai": "azure.ai.openai",
    "aws-bedrock": "aws.bedrock",
    "google-gemini": "gcp.gemini",
    "google-vertex": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}


def genai_operation(operation: str) -> str:
    """`gen_ai.operation.name` of a Relaygate operation (the operation itself when the semconv has none)."""
    return _OPERATIONS.get(operation, operation)


def genai_provider(kind: str) -> str:
    """`gen_ai.provider.name` of a provider kind (`openai`, `anthropic`, `cohere`, `groq` are the same)."""
    return _PROVIDERS.get(kind, kind)
