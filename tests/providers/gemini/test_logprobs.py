"""OpenAI logprobs <-> Gemini responseLogprobs / logprobsResult."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.errors import BadRequest
from relaygate.providers.gemini.logprobs import logprobs_config, to_openai_logprobs


@pytest.mark.parametrize(
    ("payload", "config"),
    [
        ({}, {}),
        ({"logprobs": False}, {}),
        ({"logprobs": True}, {"responseLogprobs": True}),
        ({"logprobs": True, "top_logprobs": 0}, {"responseLogprobs": True}),
        ({"logprobs": True, "top_logprobs": 5}, {"responseLogprobs": True, "logprobs": 5}),
    ],
)
def test_logprobs_request_fields(payload: dict[str, Any], config: dict[str, Any]) -> None:
    assert logprobs_config(payload) == config


@pytest.mark.parametrize(
    "payload",
    [
        {"logprobs": "yes"},
        {"logprobs": True, "top_logprobs": 21},
        {"logprobs": True, "top_logprobs": True},
        {"top_logprobs": 2},
    ],
)
def test_malformed_logprobs_are_refused_naming_the_field(payload: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as caught:
        logprobs_config(payload)
    assert caught.value.param in ("logprobs", "top_logprobs")


def test_chosen_and_top_candidates_become_openai_logprobs() -> None:
    result = {
        "chosenCandidates": [
            {"token": "Hé", "tokenId": 7, "logProbability": -0.5},
            {"token": "!", "tokenId": 2, "logProbability": -1},
        ],
        "topCandidates": [
            {"candidates": [{"token": "Hé", "logProbability": -0.5}, {"token": "Hi", "logProbability": -2.0}]}
        ],
    }
    assert to_openai_logprobs(result) == {
        "refusal": None,
        "content": [
            {
                "token": "Hé",
                "logprob": -0.5,
                "bytes": [72, 195, 169],
                "top_logprobs": [
                    {"token": "Hé", "logprob": -0.5, "bytes": [72, 195, 169]},
                    {"token": "Hi", "logprob": -2.0, "bytes": [72, 105]},
                ],
            },
            {"token": "!", "logprob": -1.0, "bytes": [33], "top_logprobs": []},
        ],
    }


def test_candidate_without_logprobs_result_has_none() -> None:
    assert to_openai_logprobs(None) is None
    assert to_openai_logprobs({"logProbabilitySum": -1}) is None
