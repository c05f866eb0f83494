"""The pre-call token estimate: a text-length heuristic plus the requested completion, capped."""

from __future__ import annotations

from relaygate.limits.budgets import estimate_cost
from relaygate.limits.estimate import (
    COMPLETION_CAP,
    DEFAULT_COMPLETION_TOKENS,
    MAX_CHOICES,
    TokenEstimate,
    estimate_tokens,
)
from relaygate.providers.usage import Price


def test_chat_text_counts_four_chars_per_token_plus_message_overhead() -> None:
    body = {"messages": [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 400}]}
    assert estimate_tokens(body).input_tokens == 110 + 2 * 4


def test_content_parts_count_text_and_a_flat_charge_per_image_not_its_base64() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "z" * 80}, image]}]}
    assert estimate_tokens(body).input_tokens == 20 + 4 + 256


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    body = {"messages": [], "max_completion_tokens": 50, "max_tokens": 900}
    assert estimate_tokens(body).output_tokens == 50


def test_requested_completion_is_capped() -> None:
    assert estimate_tokens({"messages": [], "max_tokens": 100_000}).output_tokens == COMPLETION_CAP


def test_default_completion_when_none_requested() -> None:
    assert estimate_tokens({"messages": [{"role": "user", "content": "hi"}]}).output_tokens == DEFAULT_COMPLETION_TOKENS


def test_n_choices_multiply_the_completion() -> None:
    assert estimate_tokens({"messages": [], "max_tokens": 10, "n": 3}).output_tokens == 30


def test_n_is_clamped_to_what_the_target_accepts() -> None:
    # One request's estimate is bounded: "n": 1e9 used to reserve ~2.6e11 tokens.
    huge = estimate_tokens({"messages": [], "n": 1_000_000_000})
    assert huge.output_tokens == MAX_CHOICES * DEFAULT_COMPLETION_TOKENS == 128 * 256
    worst = estimate_tokens({"messages": [], "n": 1_000_000_000, "max_tokens": 1_000_000_000})
    assert worst.output_tokens == MAX_CHOICES * COMPLETION_CAP
    assert estimate_tokens({"messages": [], "max_tokens": 10, "n": 20}, max_choices=8).output_tokens == 80


def test_embeddings_input_with_no_completion() -> None:
    estimate = estimate_tokens({"input": ["a" * 40, "b" * 40]}, default_completion=0)
    assert estimate == TokenEstimate(20, 0)


def test_pretokenized_prompt_counts_one_token_per_id() -> None:
    assert estimate_tokens({"prompt": [1, 2, 3, 4, 5], "max_tokens": 1}).input_tokens == 5


def test_tools_and_tool_call_arguments_count() -> None:
    bare = estimate_tokens({"messages": [{"role": "user", "content": "hi"}]}).input_tokens
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    call = {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "q" * 400}}]}
    assert estimate_tokens({"messages": [{"role": "user", "content": "hi"}], "tools": tools}).input_tokens > bare
    assert estimate_tokens({"messages": [{"role": "user", "content": "hi"}, call]}).input_tokens >= bare + 100


def test_responses_api_input_and_max_output_tokens() -> None:
    body = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "w" * 40}]}], "max_output_tokens": 7}
    assert estimate_tokens(body) == TokenEstimate(10, 7)


def test_anthropic_messages_system_counts() -> None:
    body = {"system": "s" * 40, "messages": [{"role": "user", "content": "u" * 40}], "max_tokens": 5}
    assert estimate_tokens(body) == TokenEstimate(24, 5)


def test_empty_body_still_estimates_one_token() -> None:
    assert estimate_tokens({}).input_tokens == 1


def test_cost_estimate_uses_the_price_and_is_zero_when_unknown() -> None:
    price = Price(input_per_million=2.0, output_per_million=10.0)
    assert estimate_cost(price, 1_000_000, 100_000) == 3.0
    assert estimate_cost(None, 1_000, 1_000) == 0.0
