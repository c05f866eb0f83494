"""The mock upstream speaks OpenAI's wire format: the real `openai` SDK, pointed straight at it, parses
every answer (with strict response validation wherever real OpenAI answers would pass it too)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.upstreams import azure_mock
from tests.upstreams.openai_mock import (
    OpenAIMock,
    chat_prompt_tokens,
    chat_reply,
    embedding_vector,
    png_image,
    speech_audio,
    split_pieces,
    transcript_for,
)

API_KEY = "sk-mock-test-key-0001"
AZURE_KEY = "azure-mock-key-0002"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there mock"},
]


@pytest.fixture
def mock() -> Iterator[OpenAIMock]:
    with OpenAIMock(API_KEY, AZURE_KEY).running() as server:
        yield server


_OPENED: list[OpenAI] = []  # SDK clients of the running test, closed after it (their sockets too)


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def _opened(client: OpenAI) -> OpenAI:
    _OPENED.append(client)
    return client


def client_for(mock: OpenAIMock, *, strict: bool = True, **kwargs: Any) -> OpenAI:
    return _opened(
        OpenAI(
            api_key=API_KEY,
            base_url=mock.base_url,
            max_retries=0,
            timeout=10,
            _strict_response_validation=strict,
            **kwargs,
        )
    )


# -- chat -------------------------------------------------------------------------------------------


def test_chat_completion_parses_and_echoes(mock: OpenAIMock) -> None:
    completion = client_for(mock).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "echo: hello there mock"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == chat_prompt_tokens(MESSAGES)
    assert completion.usage.completion_tokens == len(split_pieces("echo: hello there mock"))
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    recorded = mock.last("/chat/completions")
    assert recorded.header("Authorization") == f"Bearer {API_KEY}"
    assert recorded.json["messages"] == MESSAGES
    assert recorded.usage == {
        "prompt_tokens": completion.usage.prompt_tokens,
        "completion_tokens": completion.usage.completion_tokens,
        "total_tokens": completion.usage.total_tokens,
    }


def test_chat_max_tokens_truncates_with_length(mock: OpenAIMock) -> None:
    completion = client_for(mock).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "one two three four"}], max_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 2


def test_chat_stream_without_usage_has_no_usage_field(mock: OpenAIMock) -> None:
    stream = client_for(mock).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == chat_reply(MESSAGES)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert all("usage" not in c.model_dump(exclude_unset=True) for c in chunks)


def test_chat_stream_include_usage_ends_with_usage_chunk(mock: OpenAIMock) -> None:
    stream = client_for(mock).chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.prompt_tokens == chat_prompt_tokens(MESSAGES)
    assert chunks[-2].choices[0].finish_reason == "stop"
    # every other chunk carries an explicit "usage": null, as OpenAI sends it
    assert all("usage" in c.model_dump(exclude_unset=True) and c.usage is None for c in chunks[:-1])


def test_chat_stream_sends_raw_sse_frames_and_done(mock: OpenAIMock) -> None:
    raw = client_for(mock).chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    text = raw.http_response.read().decode()
    frames = [f for f in text.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames)
    assert frames[-1] == "data: [DONE]"


def test_stream_options_without_stream_is_400_like_openai(mock: OpenAIMock) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(mock).chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream_options={"include_usage": True},
        )
    assert "stream_options" in caught.value.message


# -- other operations -------------------------------------------------------------------------------


def test_completions_plain_and_stream(mock: OpenAIMock) -> None:
    client = client_for(mock)
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say this")
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "echo: say this"
    assert completion.usage is not None and completion.usage.prompt_tokens == 2
    # The SDK reuses `Completion` for stream chunks, whose finish_reason is null until the last one (as on
    # OpenAI), so strict validation would reject real streams too: parse leniently.
    chunks = list(
        client_for(mock, strict=False).completions.create(
            model="gpt-3.5-turbo-instruct", prompt="say this", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "echo: say this"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_embeddings_default_base64_decodes_to_vectors(mock: OpenAIMock) -> None:
    # The SDK asks for base64 unless told otherwise (then decodes it); strict validation would reject the
    # base64 string for real OpenAI too, so this client is lenient.
    result = client_for(mock, strict=False).embeddings.create(model="text-embedding-3-small", input=["a", "b c"])
    assert mock.last("/embeddings").json["encoding_format"] == "base64"
    assert [d.embedding for d in result.data] == [embedding_vector("a"), embedding_vector("b c")]
    assert result.usage.prompt_tokens == 3


def test_embeddings_float(mock: OpenAIMock) -> None:
    result = client_for(mock).embeddings.create(model="text-embedding-3-small", input="a", encoding_format="float")
    assert result.data[0].embedding == embedding_vector("a")
    assert len(result.data[0].embedding) == 8


def test_images_generate_b64(mock: OpenAIMock) -> None:
    result = client_for(mock).images.generate(model="gpt-image-1", prompt="a red square")
    assert result.data is not None
    assert base64.b64decode(result.data[0].b64_json or "") == png_image()


def test_images_generate_url(mock: OpenAIMock) -> None:
    result = client_for(mock).images.generate(model="dall-e-3", prompt="a red square", response_format="url")
    assert result.data is not None and (result.data[0].url or "").startswith(mock.url)


def test_images_edit_multipart_is_recorded(mock: OpenAIMock) -> None:
    picture = png_image(3, 3)
    result = client_for(mock).images.edit(
        model="gpt-image-1", image=("in.png", picture, "image/png"), prompt="make it blue"
    )
    assert result.data
    recorded = mock.last("/images/edits")
    assert recorded.form["model"] == "gpt-image-1"
    assert recorded.form["prompt"] == "make it blue"
    assert [(f.field, f.filename, f.data) for f in recorded.files] == [("image", "in.png", picture)]


def test_audio_transcription_and_translation(mock: OpenAIMock) -> None:
    audio = b"RIFF" + bytes(range(256)) * 8
    client = client_for(mock)
    transcription = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", audio, "audio/wav"))
    assert transcription.text == transcript_for(audio, "transcribe")
    assert mock.last("/audio/transcriptions").form["model"] == "whisper-1"
    translation = client.audio.translations.create(model="whisper-1", file=("a.wav", audio, "audio/wav"))
    assert translation.text == transcript_for(audio, "translate")
    assert mock.last("/audio/translations").files[0].data == audio


def test_audio_speech_returns_bytes(mock: OpenAIMock) -> None:
    response = client_for(mock).audio.speech.create(model="tts-1", voice="alloy", input="hello")
    assert response.response.headers["content-type"] == "audio/mpeg"
    assert response.content == speech_audio("hello", "alloy", "mp3")
    assert len(response.content) > 2048


def test_moderations(mock: OpenAIMock) -> None:
    result = client_for(mock).moderations.create(model="omni-moderation-latest", input=["hi", "I will attack"])
    assert [r.flagged for r in result.results] == [False, True]
    assert result.results[1].categories.violence is True


def test_models_list(mock: OpenAIMock) -> None:
    ids = [m.id for m in client_for(mock).models.list()]
    assert "gpt-4o" in ids
    assert client_for(mock).models.retrieve("gpt-4o").owned_by == "system"


async def test_rerank_cohere_vllm_shape(mock: OpenAIMock) -> None:
    body = {"model": "bge-reranker", "query": "red fox", "documents": ["a blue whale", "the red fox", "fox"]}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{mock.base_url}/rerank", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as response:
            assert response.status == 200
            payload = await response.json()
    assert [r["index"] for r in payload["results"]] == [1, 2, 0]
    assert payload["results"][0]["relevance_score"] == 1.0
    assert payload["model"] == "bge-reranker"


# -- auth and Azure ---------------------------------------------------------------------------------


def test_wrong_key_is_401_openai_shape(mock: OpenAIMock) -> None:
    client = _opened(OpenAI(api_key="sk-wrong-key-9999", base_url=mock.base_url, max_retries=0))
    with pytest.raises(openai.AuthenticationError) as caught:
        client.models.list()
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-9999" not in caught.value.message


async def test_missing_key_is_401(mock: OpenAIMock) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{mock.base_url}/models") as response:
            assert response.status == 401
            error = (await response.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}


def test_unknown_path_is_404_invalid_url(mock: OpenAIMock) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(mock).post("/nope", cast_to=object, body={})
    assert "Invalid URL (POST /v1/nope)" in caught.value.message


def azure_client(mock: OpenAIMock, key: str = AZURE_KEY) -> AzureOpenAI:
    client = AzureOpenAI(api_key=key, azure_endpoint=mock.url, api_version="2024-10-21", max_retries=0, timeout=10)
    _opened(client)
    return client


def test_azure_chat_via_deployment_url(mock: OpenAIMock) -> None:
    completion = azure_client(mock).chat.completions.create(model="my-deployment", messages=MESSAGES)
    assert completion.choices[0].message.content == chat_reply(MESSAGES)
    recorded = mock.last("/chat/completions")
    assert recorded.path == "/openai/deployments/my-deployment/chat/completions"
    assert recorded.query["api-version"] == "2024-10-21"
    assert recorded.header("api-key") == AZURE_KEY


def test_azure_stream_starts_with_filter_chunk(mock: OpenAIMock) -> None:
    chunks = list(
        azure_client(mock).chat.completions.create(
            model="my-deployment",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices == [] and chunks[0].usage is None
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == chat_reply(MESSAGES)
    assert chunks[-1].usage is not None


def test_azure_embeddings(mock: OpenAIMock) -> None:
    result = azure_client(mock).embeddings.create(model="my-deployment", input="a", encoding_format="float")
    assert result.data[0].embedding == embedding_vector("a")


def test_azure_wrong_key_is_401_azure_shape(mock: OpenAIMock) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        azure_client(mock, "nope").chat.completions.create(model="d", messages=MESSAGES)
    assert caught.value.body == {"code": "401", "message": azure_mock.ACCESS_DENIED_MESSAGE}


# -- behaviour injection ----------------------------------------------------------------------------


def test_fail_next_forces_status_for_n_requests(mock: OpenAIMock) -> None:
    mock.fail_next(429, message="slow down", count=2)
    client = client_for(mock)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert caught.value.body == {
            "message": "slow down",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices


def test_fail_next_500_raises_internal_server_error(mock: OpenAIMock) -> None:
    mock.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        client_for(mock).chat.completions.create(model="gpt-4o", messages=MESSAGES)


def test_delay_next_delays_the_answer(mock: OpenAIMock) -> None:
    mock.delay_next(1.0)
    with pytest.raises(openai.APITimeoutError):
        client_for(mock).with_options(timeout=0.2).chat.completions.create(model="gpt-4o", messages=MESSAGES)


def test_chunk_delay_paces_the_stream(mock: OpenAIMock) -> None:
    mock.chunk_delay = 0.2
    started = time.monotonic()
    arrivals = []
    for _ in client_for(mock).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "a b c"}],
        stream=True,
    ):
        arrivals.append(time.monotonic() - started)
    # Each chunk waits for its delay (a loaded machine only lengthens the gaps, so no upper bound).
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert len(gaps) >= 2 and all(gap >= 0.15 for gap in gaps), gaps


def test_drop_stream_after_breaks_the_connection(mock: OpenAIMock) -> None:
    mock.drop_stream_after(2)
    received = []
    with pytest.raises((openai.APIConnectionError, Exception)) as caught:  # noqa: B017
        for chunk in client_for(mock).chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
        ):
            received.append(chunk)
    assert len(received) == 2
    assert not isinstance(caught.value, AssertionError)
    assert mock.last("/chat/completions").completed is False


def test_fail_stream_after_sends_error_event(mock: OpenAIMock) -> None:
    mock.fail_stream_after(2, message="boom mid-stream")
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client_for(mock).chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
        ):
            received.append(chunk)
    assert len(received) == 2
    assert caught.value.message == "boom mid-stream"


# -- async SDK against a mock in the test's own loop -------------------------------------------------


async def test_async_sdk_against_in_loop_mock() -> None:
    async with OpenAIMock(API_KEY) as server:
        client = AsyncOpenAI(api_key=API_KEY, base_url=server.base_url, max_retries=0, _strict_response_validation=True)
        completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert completion.choices[0].message.content == chat_reply(MESSAGES)
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
        assert chunks[-1].usage is not None
        embedding = await client.embeddings.create(model="text-embedding-3-small", input="x", encoding_format="float")
        assert embedding.data[0].embedding == embedding_vector("x")
        speech = await client.audio.speech.create(model="tts-1", voice="alloy", input="hi")
        assert speech.content == speech_audio("hi", "alloy")
        await client.close()
        assert len(server.requests) == 4


async def test_async_sdk_against_threaded_mock(mock: OpenAIMock) -> None:
    client = AsyncOpenAI(api_key=API_KEY, base_url=mock.base_url, max_retries=0)
    result = await client.embeddings.create(model="text-embedding-3-small", input="q")
    assert result.data[0].embedding == embedding_vector("q")
    models = [m.id async for m in client.models.list()]
    assert "whisper-1" in models
    await client.close()
