"""The translators against the golden files (see golden.py for the layout and how to regenerate)."""

from __future__ import annotations

import orjson
import pytest

from relaygate.providers.gemini.embeddings import (
    embeddings_translator,
    to_gemini_embed_request,
    to_vertex_predict_request,
)
from relaygate.providers.gemini.request import to_gemini_request
from relaygate.providers.gemini.response import from_gemini_response
from relaygate.providers.gemini.stream import GeminiStreamTranslator
from tests.helpers.golden import CREATED
from tests.providers.gemini.golden import GOLDEN, MODEL, counting_ids, stem


@pytest.mark.parametrize("name", GOLDEN.names("requests/*.json"), ids=stem)
def test_request_translation_matches_golden(name: str) -> None:
    case = GOLDEN.case(name)
    actual = to_gemini_request(case["openai"], vertex=case.get("vertex", False))
    GOLDEN.check_case(name, "gemini", actual)


@pytest.mark.parametrize("name", GOLDEN.names("responses/*.json"), ids=stem)
def test_response_translation_matches_golden(name: str) -> None:
    case = GOLDEN.case(name)
    actual = from_gemini_response(
        case["gemini"],
        MODEL,
        include_reasoning=case.get("include_reasoning", False),
        created=CREATED,
        new_id=counting_ids(),
    )
    GOLDEN.check_case(name, "openai", actual)


def _translate_stream(name: str, raw: bytes, split: int) -> bytes:
    translator = GeminiStreamTranslator(
        MODEL, include_reasoning="thinking" in name, created=CREATED, new_id=counting_ids()
    )
    out = b"".join(translator.feed(raw[i : i + split]) for i in range(0, len(raw), split))
    return out + translator.finish()


@pytest.mark.parametrize("name", GOLDEN.names("streams/*.gemini.sse"), ids=stem)
def test_stream_translation_matches_golden(name: str) -> None:
    raw = GOLDEN.read_bytes(name)
    actual = _translate_stream(stem(name), raw, len(raw))
    GOLDEN.check_text(f"streams/{stem(name)}.openai.sse", actual.decode())


@pytest.mark.parametrize("split", [1, 3, 64])
@pytest.mark.parametrize("name", GOLDEN.names("streams/*.gemini.sse"), ids=stem)
def test_stream_translation_is_independent_of_chunking(name: str, split: int) -> None:
    raw = GOLDEN.read_bytes(name)
    assert _translate_stream(stem(name), raw, split) == _translate_stream(stem(name), raw, len(raw))


@pytest.mark.parametrize("name", GOLDEN.names("embeddings/*.json"), ids=stem)
def test_embeddings_translation_matches_golden(name: str) -> None:
    case = GOLDEN.case(name)
    vertex = case["vertex"]
    request = (
        to_vertex_predict_request(case["openai"]) if vertex else to_gemini_embed_request(case["openai"], case["model"])
    )
    GOLDEN.check_case(name, "upstream_request", request)
    translate = embeddings_translator(case["openai"], case["model"], vertex)
    answer = orjson.dumps(translate(orjson.dumps(case["upstream_response"])))  # as the gateway sends it
    GOLDEN.check_case(name, "openai_response", orjson.loads(answer))
