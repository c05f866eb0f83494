"""The non-chat OpenAI-compatible operations through the gateway, and the model listing."""

from __future__ import annotations

import base64

import aiohttp
import openai
import pytest

from tests.conftest import Stack
from tests.upstreams.openai_mock import (
    completion_reply,
    embedding_vector,
    png_image,
    rerank_score,
    speech_audio,
    transcript_for,
)

AUDIO = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(range(256)) * 16


# -- completions ------------------------------------------------------------------------------------


def test_completions_through_openai(stack: Stack) -> None:
    completion = stack.gateway.client(stack.alice).completions.create(model="openai-main/instruct", prompt="say hi")
    assert completion.choices[0].text == completion_reply("say hi")
    recorded = stack.openai.last("/v1/completions")
    assert recorded.json["model"] == "gpt-3.5-turbo-instruct"


def test_completions_stream_through_self_hosted(stack: Stack) -> None:
    chunks = list(
        stack.gateway.client(stack.alice, _strict_response_validation=False).completions.create(
            model="vllm-local/llama", prompt="say hi", stream=True
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == completion_reply("say hi")
    recorded = stack.vllm.last("/v1/completions")
    assert recorded.json["model"] == "meta-llama/Llama-3.1-8B"
    assert recorded.json["stream_options"]["include_usage"] is True


# -- embeddings -------------------------------------------------------------------------------------


def test_embeddings_with_sdk_default_base64(stack: Stack) -> None:
    result = stack.gateway.client(stack.alice).embeddings.create(model="openai-main/embed", input=["a", "b c"])
    assert [d.embedding for d in result.data] == [embedding_vector("a"), embedding_vector("b c")]
    recorded = stack.openai.last("/embeddings")
    assert recorded.json["model"] == "text-embedding-3-small"


def test_embeddings_float(stack: Stack) -> None:
    result = stack.gateway.client(stack.alice).embeddings.create(
        model="openai-main/embed", input="hello", encoding_format="float"
    )
    assert result.data[0].embedding == embedding_vector("hello")
    assert stack.openai.last("/embeddings").json["encoding_format"] == "float"


def test_embeddings_through_azure_deployment(stack: Stack) -> None:
    result = stack.gateway.client(stack.alice).embeddings.create(
        model="azure-main/gpt4o-deploy", input="hello", encoding_format="float"
    )
    assert result.data[0].embedding == embedding_vector("hello")
    assert stack.openai.last("/embeddings").path == "/openai/deployments/my-deployment/embeddings"


# -- images -----------------------------------------------------------------------------------------


def test_images_generate(stack: Stack) -> None:
    result = stack.gateway.client(stack.alice).images.generate(model="openai-main/image", prompt="a red square")
    assert result.data is not None
    assert base64.b64decode(result.data[0].b64_json or "") == png_image()
    recorded = stack.openai.last("/images/generations")
    assert recorded.json["model"] == "gpt-image-1"
    assert recorded.json["prompt"] == "a red square"


def test_images_edit_multipart_model_rewritten(stack: Stack) -> None:
    picture = png_image(4, 4, (1, 2, 3))
    result = stack.gateway.client(stack.alice).images.edit(
        model="openai-main/image", image=("in.png", picture, "image/png"), prompt="make it blue"
    )
    assert result.data is not None
    assert base64.b64decode(result.data[0].b64_json or "") == png_image()
    recorded = stack.openai.last("/images/edits")
    assert recorded.form["model"] == "gpt-image-1"
    assert recorded.form["prompt"] == "make it blue"
    assert [(f.field, f.data) for f in recorded.files] == [("image", picture)]


# -- audio ------------------------------------------------------------------------------------------


def test_audio_transcription_multipart_model_rewritten(stack: Stack) -> None:
    result = stack.gateway.client(stack.alice).audio.transcriptions.create(
        model="openai-main/whisper", file=("speech.wav", AUDIO, "audio/wav")
    )
    assert result.text == transcript_for(AUDIO, "transcribe")
    recorded = stack.openai.last("/audio/transcriptions")
    assert recorded.form["model"] == "whisper-1"
    assert recorded.files[0].data == AUDIO


def test_audio_translation_multipart_model_rewritten(stack: Stack) -> None:
    result = stack.gateway.client(stack.alice).audio.translations.create(
        model="openai-main/whisper", file=("speech.wav", AUDIO, "audio/wav")
    )
    assert result.text == transcript_for(AUDIO, "translate")
    recorded = stack.openai.last("/audio/translations")
    assert recorded.form["model"] == "whisper-1"
    assert recorded.files[0].data == AUDIO


def test_audio_speech_returns_upstream_bytes(stack: Stack) -> None:
    response = stack.gateway.client(stack.alice).audio.speech.create(
        model="openai-main/tts", voice="alloy", input="hello there"
    )
    assert response.content == speech_audio("hello there", "alloy", "mp3")
    assert response.response.headers["content-type"].startswith("audio/mpeg")
    assert stack.openai.last("/audio/speech").json["model"] == "tts-1"


# -- rerank and moderations -------------------------------------------------------------------------


async def test_rerank_over_plain_http(stack: Stack) -> None:
    documents = ["a blue whale", "the red fox jumps", "fox"]
    body = {"model": "vllm-local/reranker", "query": "red fox", "documents": documents, "top_n": 2}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{stack.gateway.api_url}/rerank", json=body, headers={"Authorization": f"Bearer {stack.alice}"}
        ) as response:
            assert response.status == 200, await response.text()
            payload = await response.json()
    assert [r["index"] for r in payload["results"]] == [1, 2]
    assert payload["results"][0]["relevance_score"] == rerank_score("red fox", documents[1])
    recorded = stack.vllm.last("/rerank")
    assert recorded.json["model"] == "BAAI/bge-reranker-v2-m3"
    assert recorded.json["documents"] == documents


def test_moderations(stack: Stack) -> None:
    result = stack.gateway.client(stack.alice).moderations.create(
        model="openai-main/moderation", input=["hello", "I will attack"]
    )
    assert [r.flagged for r in result.results] == [False, True]
    assert stack.openai.last("/moderations").json["model"] == "omni-moderation-latest"


# -- model listing ----------------------------------------------------------------------------------


def test_models_list_shows_what_alice_may_use(stack: Stack) -> None:
    ids = {m.id for m in stack.gateway.client(stack.alice).models.list()}
    assert {"openai-main/gpt-4o", "azure-main/gpt4o-deploy", "vllm-local/llama", "mock/echo", "team-only/gpt-4o"} <= ids
    assert "restricted/gpt-4o" not in ids


def test_models_list_shows_what_bob_may_use(stack: Stack) -> None:
    ids = {m.id for m in stack.gateway.client(stack.bob).models.list()}
    assert {"openai-main/gpt-4o", "restricted/gpt-4o"} <= ids
    assert "team-only/gpt-4o" not in ids


def test_models_list_for_virtual_account_is_its_allowed_models(stack: Stack) -> None:
    ids = [m.id for m in stack.gateway.client(stack.ci_bot).models.list()]
    assert ids == ["openai-main/gpt-4o"]


def test_models_list_answers_without_calling_upstream(stack: Stack) -> None:
    models = list(stack.gateway.client(stack.alice).models.list())
    assert all(m.object == "model" for m in models)
    assert not stack.openai.requests and not stack.vllm.requests


def test_models_retrieve_returns_a_callable_model(stack: Stack) -> None:
    model = stack.gateway.client(stack.alice).models.retrieve("openai-main/gpt-4o")
    assert (model.id, model.owned_by) == ("openai-main/gpt-4o", "openai-main")


def test_models_retrieve_hides_models_the_token_may_not_call(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError):
        stack.gateway.client(stack.alice).models.retrieve("restricted/gpt-4o")
