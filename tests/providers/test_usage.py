"""Prices: the configured cost, the bundled table, or unknown."""

from __future__ import annotations

import pytest

from relaygate.providers import prices
from relaygate.providers.prices import lookup_price, price_from_override, resolve_price
from relaygate.providers.usage import Price


def test_gpt_4o_list_price_from_table() -> None:
    assert lookup_price("openai", "gpt-4o") == Price(
        input_per_million=2.5, output_per_million=10.0, cache_read_per_million=1.25
    )


def test_azure_openai_uses_azure_table() -> None:
    assert lookup_price("azure-openai", "gpt-4o").input_per_million == 2.5


def test_tiered_price_uses_ordinary_tier() -> None:
    # Gemini 1.5 Pro costs $1.25/M input up to 128k tokens and $2.5/M above.
    assert lookup_price("google-gemini", "gemini-1.5-pro").input_per_million == 1.25


def test_unknown_model_is_none() -> None:
    assert lookup_price("openai", "no-such-model-xyz") is None


def test_unpriced_provider_kind_is_none() -> None:
    assert lookup_price("self-hosted-model", "gpt-4o") is None


def test_azure_falls_back_to_openai_when_azure_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fake(provider_id: str, model_id: str) -> Price | None:
        asked.append(provider_id)
        return Price(1.0, 2.0) if provider_id == "openai" else None

    monkeypatch.setattr(prices, "_table_price", fake)
    lookup_price.cache_clear()
    try:
        assert lookup_price("azure-openai", "some-model") == Price(1.0, 2.0)
        assert asked == ["azure", "openai"]
    finally:
        lookup_price.cache_clear()


def test_override_wins_over_table() -> None:
    cost = {"input_per_million_tokens": 1, "output_per_million_tokens": 3}
    assert resolve_price("openai", "gpt-4o", cost) == Price(1.0, 3.0)


def test_resolve_without_override_uses_table() -> None:
    assert resolve_price("openai", "gpt-4o") == Price(2.5, 10.0, cache_read_per_million=1.25)


def test_override_rejects_negative_price() -> None:
    with pytest.raises(ValueError):
        price_from_override({"input_per_million_tokens": -1, "output_per_million_tokens": 0})


def test_cost_of_usage() -> None:
    assert Price(2.5, 10.0).cost(1_000, 500) == pytest.approx(0.0075)


def test_anthropic_cache_reads_and_writes_priced_at_their_own_rates() -> None:
    price = lookup_price("anthropic", "claude-3-5-sonnet-20241022")
    assert price == Price(3.0, 15.0, cache_read_per_million=0.3, cache_write_per_million=3.75)
    # 1000 input tokens of which 100 read from cache and 100 written to it, 1000 output tokens.
    assert price.cost(1_000, 1_000, cached_tokens=100, cache_write_tokens=100) == pytest.approx(0.017805)


def test_cache_tokens_cost_the_input_price_without_a_cache_price() -> None:
    assert Price(2.0, 4.0).cost(1_000, 0, cached_tokens=500) == pytest.approx(0.002)
