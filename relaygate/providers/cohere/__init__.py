"""Cohere provider (Chat, Embed and Rerank v2, translated to and from the OpenAI shape)."""

from relaygate.providers.cohere.adapter import CohereAdapter

__all__ = ["CohereAdapter"]
