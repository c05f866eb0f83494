"""Translations against the golden files: OpenAI request -> Cohere request, Cohere answer -> OpenAI answer."""

from __future__ import annotations

import random

import pytest

from relaygate.providers.cohere.chat import from_cohere_chat_response, to_cohere_chat_request
from relaygate.providers.cohere.embed import from_cohere_embed_response, to_cohere_embed_request
from relaygate.providers.cohere.rerank import documents_of, from_cohere_rerank_response, to_cohere_rerank_request
from relaygate.providers.cohere.stream import CohereStreamTranslator
from tests.helpers.golden import CREATED
from tests.providers.cohere.golden import GOLDEN, check_stream, cohere_stream


@pytest.mark.parametrize("name", GOLDEN.names("request_*.json"))
def test_chat_request_matches_golden(name: str) -> None:
    data = GOLDEN.case(name)
    GOLDEN.check_case(name, "cohere", to_cohere_chat_request(data["openai"], stream=data["stream"]))


@pytest.mark.parametrize("name", GOLDEN.names("response_*.json"))
def test_chat_response_matches_golden(name: str) -> None:
    data = GOLDEN.case(name)
    answer = from_cohere_chat_response(
        data["cohere"], data["model"], created=CREATED, strict_openai=data["strict_openai"]
    )
    GOLDEN.check_case(name, "openai", answer)


STREAMS = [n.removesuffix(".cohere.sse") for n in GOLDEN.names("stream_*.cohere.sse")]


def _translate(raw: bytes, cuts: list[int], strict_openai: bool = True) -> bytes:
    translator = CohereStreamTranslator("command-a-03-2025", created=CREATED, strict_openai=strict_openai)
    out = b""
    previous = 0
    for cut in [*cuts, len(raw)]:
        out += translator.feed(raw[previous:cut])
        previous = cut
    return out + translator.finish()


@pytest.mark.parametrize("base", STREAMS)
def test_stream_matches_golden(base: str) -> None:
    check_stream(base, _translate(cohere_stream(base), []))


@pytest.mark.parametrize("base", STREAMS)
def test_stream_translation_does_not_depend_on_chunk_boundaries(base: str) -> None:
    raw = cohere_stream(base)
    whole = _translate(raw, [])
    assert _translate(raw, list(range(1, len(raw)))) == whole  # byte by byte
    rng = random.Random(base)
    for _ in range(5):
        assert _translate(raw, sorted(rng.sample(range(1, len(raw)), 12))) == whole


@pytest.mark.parametrize("base", STREAMS)
def test_stream_with_crlf_line_endings_translates_the_same(base: str) -> None:
    raw = cohere_stream(base)
    assert _translate(raw.replace(b"\n", b"\r\n"), [7, 100]) == _translate(raw, [])


def test_embed_request_matches_golden() -> None:
    data = GOLDEN.case("embed.json")
    GOLDEN.check_case("embed.json", "cohere_request", to_cohere_embed_request(data["openai"]))


@pytest.mark.parametrize("fmt", ["float", "base64"])
def test_embed_response_matches_golden(fmt: str) -> None:
    data = GOLDEN.case("embed.json")
    answer = from_cohere_embed_response(data["cohere_response"], data["model"], encoding_format=fmt)
    GOLDEN.check_case("embed.json", f"openai_{fmt}", answer)


def test_rerank_request_matches_golden() -> None:
    data = GOLDEN.case("rerank.json")
    GOLDEN.check_case("rerank.json", "cohere_request", to_cohere_rerank_request(data["request"]))


def test_rerank_response_matches_golden() -> None:
    data = GOLDEN.case("rerank.json")
    answer = from_cohere_rerank_response(
        data["cohere_response"], data["model"], documents=documents_of(data["request"])
    )
    GOLDEN.check_case("rerank.json", "gateway_response", answer)
