"""`x-tfy-request-timeout` (per attempt) and `x-tfy-ttft-timeout-ms` (first streamed token, 408)."""

from __future__ import annotations

import time

import openai
import pytest

from tests.pipeline.routing.conftest import MESSAGES, Rig
from tests.upstreams.openai_mock import chat_reply

OVERHEAD = 0.4  # seconds the gateway and the SDK may add on top of a timeout


def test_request_timeout_bounds_each_attempt_and_falls_back(rig: Rig) -> None:
    rig.a.delay_next(3.0)
    started = time.monotonic()
    raw = rig.chat("vmod/req-timeout", headers={"x-tfy-request-timeout": "500"})
    elapsed = time.monotonic() - started
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/req-timeout"
    assert raw.parse().choices[0].message.content == chat_reply(MESSAGES)
    assert 0.5 <= elapsed < 0.5 + OVERHEAD, f"answer after {elapsed:.2f}s with a 500 ms attempt timeout"
    assert rig.counts() == (1, 1, 0)


def test_request_timeout_on_a_plain_model_is_504(rig: Rig) -> None:
    rig.a.delay_next(3.0)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        rig.chat("prov-a/timeout-plain", headers={"x-tfy-request-timeout": "300"})
    assert caught.value.status_code == 504
    assert time.monotonic() - started < 0.3 + OVERHEAD


def _stream_text(rig: Rig, model: str, headers: dict[str, str]) -> tuple[str, str]:
    raw = rig.client().chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, stream=True, extra_headers=headers
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    return raw.headers["x-tfy-resolved-model"], text


def test_ttft_timeout_on_a_plain_model_is_408(rig: Rig) -> None:
    rig.a.delay_next(2.0)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        _stream_text(rig, "prov-a/ttft-plain", {"x-tfy-ttft-timeout-ms": "300"})
    assert caught.value.status_code == 408
    assert time.monotonic() - started < 0.3 + OVERHEAD


def test_ttft_timeout_falls_back_even_when_408_is_not_a_fallback_code(rig: Rig) -> None:
    rig.a.delay_next(2.0)  # vmod/ttft: prov-a's fallback_status_codes are ["500"]
    started = time.monotonic()
    resolved, text = _stream_text(rig, "vmod/ttft", {"x-tfy-ttft-timeout-ms": "300"})
    assert time.monotonic() - started < 0.3 + OVERHEAD
    assert resolved == "prov-b/ttft"
    assert text == chat_reply(MESSAGES)
    assert rig.counts() == (1, 1, 0)
