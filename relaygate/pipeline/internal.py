"""Calls the gateway makes to itself for a request's features: a guardrail judge's chat completion, the
semantic cache's embedding (docs/guardrails.md, docs/cache.md).

They go through the gateway's own HTTP API with the caller's credentials, so they are authorised,
limited, priced and logged like any request the caller makes (the log shows what a judge cost). Each
carries `x-relaygate-internal`, an HMAC of the process's session secret that no caller can forge,
so the inner request skips guardrails and the cache (a judge guarded by itself would never end).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from relaygate.guardrails.engine import GuardrailFailure

if TYPE_CHECKING:
    from relaygate.guardrails.engine import Judge
    from relaygate.pipeline.call import Call

INTERNAL_HEADER = b"x-relaygate-internal"
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


def internal_mark(secret: str) -> str:
    """The header value an internal call carries (the same in every worker of one `serve`)."""
    return hmac.new(secret.encode(), b"relaygate-internal-call", hashlib.sha256).hexdigest()


def is_internal(call: Call) -> bool:
    """Whether this request is one the gateway made to itself."""
    value = call.header(INTERNAL_HEADER)
    return value is not None and hmac.compare_digest(value, call.gateway.internal_mark.encode())


def _self_url(call: Call) -> str:
    settings = call.gateway.settings
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104 (a bind-all address: call loopback)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _headers(call: Call) -> dict[str, str]:
    headers = {"content-type": "application/json", INTERNAL_HEADER.decode(): call.gateway.internal_mark}
    for name in _CREDENTIAL_HEADERS:
        value = call.header(name)
        if value is not None:
            headers[name.decode()] = value.decode("latin-1")
    headers["x-tfy-metadata"] = orjson.dumps(
        {"relaygate_internal": "true", "parent_request_id": call.ctx.request_id}
    ).decode()
    return headers


async def _post(call: Call, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    gateway = call.gateway
    session = gateway.internal_session
    if session is None or session.closed:
        # Its own session: the upstream one marks every request with this gateway's `Via`, which the
        # gateway refuses on arrival as a loop (upstream/hops.py). These calls are meant to come back.
        session = gateway.internal_session = aiohttp.ClientSession()
    try:
        async with session.post(
            _self_url(call) + path,
            data=orjson.dumps(body),
            headers=_headers(call),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            raw = await response.content.read(4 * 1024 * 1024)
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise GuardrailFailure(f"internal call to {path} failed ({type(exc).__name__})") from None
    if status != 200:
        raise GuardrailFailure(f"internal call to {path} answered HTTP {status}")
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GuardrailFailure(f"internal call to {path} answered non-JSON") from None
    if not isinstance(answer, dict):
        raise GuardrailFailure(f"internal call to {path} answered an unexpected shape")
    return answer


def judge_for(call: Call) -> Judge:
    """An `llm_judge` that asks a model on this gateway, as the caller."""

    async def judge(model: str, prompt: str, timeout: float) -> str:
        answer = await _post(
            call,
            "/api/llm/chat/completions",
            {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0},
            timeout,
        )
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise GuardrailFailure("the judge model's answer has no message") from None
        return str(content or "")

    return judge


async def embed(call: Call, model: str, text: str, timeout: float) -> list[float]:
    """One embedding from a model on this gateway, as the caller (semantic cache)."""
    answer = await _post(call, "/api/llm/embeddings", {"model": model, "input": text}, timeout)
    try:
        vector = answer["data"][0]["embedding"]
    except (KeyError, IndexError, TypeError):
        raise GuardrailFailure("the embedding answer has no vector") from None
    if not isinstance(vector, list) or not all(isinstance(x, int | float) for x in vector):
        raise GuardrailFailure("the embedding answer's vector is not a list of numbers")
    return [float(x) for x in vector]
