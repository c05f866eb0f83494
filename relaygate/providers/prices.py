"""Model prices: an integration's own `cost`, else the bundled genai-prices table, else unknown.

Prices are resolved when the config is compiled, never per request: the lookup imports
genai-prices (~100 ms) on first use and caches every answer. The genai-prices ids of each provider
kind are its registry row's `price_ids`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from relaygate.providers.registry import price_ids
from relaygate.providers.usage import Price

# Priced at this many tokens and scaled up, so tiered prices (e.g. Gemini above 128k tokens)
# give the ordinary per-request tier rather than the long-context one.
_PROBE_TOKENS = 1_000
_PER_MILLION = Decimal(1_000_000 // _PROBE_TOKENS)


def price_from_override(cost: Mapping[str, Any]) -> Price:
    """An integration's `cost: {input_per_million_tokens, output_per_million_tokens}` (missing = 0)."""
    input_price = float(cost.get("input_per_million_tokens") or 0.0)
    output_price = float(cost.get("output_per_million_tokens") or 0.0)
    if input_price < 0 or output_price < 0:
        raise ValueError("cost per million tokens cannot be negative")
    return Price(input_per_million=input_price, output_per_million=output_price)


def resolve_price(provider_kind: str, model_id: str | None, cost: Mapping[str, Any] | None = None) -> Price | None:
    """The settled rule: configured cost wins, then the price table; None means cost unknown."""
    if cost is not None:
        return price_from_override(cost)
    if not model_id:
        return None
    return lookup_price(provider_kind, model_id)


@lru_cache(maxsize=1024)
def lookup_price(provider_kind: str, model_id: str) -> Price | None:
    """List price of `model_id` at the provider behind `provider_kind`, or None if not known."""
    # A reseller's row lists the original vendor after it (azure, then openai): same list price.
    for provider_id in price_ids(provider_kind):
        price = _table_price(provider_id, model_id)
        if price is not None:
            return price
    return None


def _table_price(provider_id: str, model_id: str) -> Price | None:
    """Ask genai-prices; it raises LookupError for a provider or model it does not know."""
    from genai_prices import Usage, calc_price  # deferred: the import costs ~100 ms

    try:
        calc = calc_price(
            Usage(input_tokens=_PROBE_TOKENS, output_tokens=_PROBE_TOKENS),
            model_ref=model_id,
            provider_id=provider_id,
        )
        model_price = calc.model_price
        reads = (
            calc_price(
                Usage(input_tokens=_PROBE_TOKENS, cache_read_tokens=_PROBE_TOKENS),
                model_ref=model_id,
                provider_id=provider_id,
            )
            if model_price.cache_read_mtok
            else None
        )
        writes = (
            calc_price(
                Usage(input_tokens=_PROBE_TOKENS, cache_write_tokens=_PROBE_TOKENS),
                model_ref=model_id,
                provider_id=provider_id,
            )
            if model_price.cache_write_mtok
            else None
        )
    except (LookupError, ValueError):
        return None
    return Price(
        input_per_million=float(calc.input_price * _PER_MILLION),
        output_per_million=float(calc.output_price * _PER_MILLION),
        cache_read_per_million=float(reads.input_price * _PER_MILLION) if reads is not None else None,
        cache_write_per_million=float(writes.input_price * _PER_MILLION) if writes is not None else None,
    )
