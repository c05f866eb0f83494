"""What a model's usage costs (`Price`), and the usage fields translators report.

Where a price comes from (an integration's `cost`, else the genai-prices table) is `prices.py`, which
reads the provider registry; adapters import only this module.
"""

from __future__ import annotations

from dataclasses import dataclass


def cache_write_details(tokens: int) -> dict[str, int]:
    """`prompt_tokens_details` entries for prompt-cache writes: `cache_write_tokens` as the OpenAI SDK
    types it, and `cache_creation_tokens` as LiteLLM-style clients read it (the same count)."""
    return {"cache_write_tokens": tokens, "cache_creation_tokens": tokens}


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens, in and out; cache reads/writes at their own price where the table has one."""

    input_per_million: float
    output_per_million: float
    cache_read_per_million: float | None = None  # None: cache reads cost the input price
    cache_write_per_million: float | None = None  # None: cache writes cost the input price

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, cache_write_tokens: int = 0) -> float:
        """USD for one request's usage; `input_tokens` counts every input token, cached ones included."""
        read_price = self.input_per_million if self.cache_read_per_million is None else self.cache_read_per_million
        write_price = self.input_per_million if self.cache_write_per_million is None else self.cache_write_per_million
        plain = max(input_tokens - cached_tokens - cache_write_tokens, 0)
        return (
            plain * self.input_per_million
            + cached_tokens * read_price
            + cache_write_tokens * write_price
            + output_tokens * self.output_per_million
        ) / 1_000_000
