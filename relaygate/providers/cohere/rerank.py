"""The gateway's rerank (Cohere/Jina style) <-> Cohere Rerank v2 (`POST /v2/rerank`).

Cohere v2 takes `query`, `documents` as strings, `top_n` and `max_tokens_per_doc`; documents given
as `{"text": ...}` are sent as their text. Its results carry `index` and `relevance_score` only, so
the gateway adds `document: {"text"}` back from the request (unless the caller sent
`return_documents: false`), which keeps the answer the same shape as other rerank upstreams.

Usage: Cohere bills rerank in search units (`meta.billed_units.search_units`: one query with up to
100 documents), not tokens. The answer reports `usage: {"search_units": n}` (plus token counts when
Cohere sends any in `meta.tokens`/`meta.billed_units`); the request log records no tokens for it.
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import BadGateway, BadRequest
from relaygate.providers.cohere.chat import as_object
from relaygate.wire_types import JSON


def documents_of(payload: JSON) -> list[str]:
    """The documents as texts (strings or `{"text": ...}` objects)."""
    documents = payload.get("documents")
    if not isinstance(documents, list) or not documents:
        raise BadRequest("'documents' must be a non-empty list", param="documents")
    texts: list[str] = []
    for index, document in enumerate(documents):
        if isinstance(document, dict) and isinstance(document.get("text"), str):
            texts.append(document["text"])
        elif isinstance(document, str):
            texts.append(document)
        else:
            raise BadRequest(
                f"'documents[{index}]' must be a string or an object with 'text'", param=f"documents[{index}]"
            )
    return texts


def to_cohere_rerank_request(payload: JSON) -> JSON:
    """The Cohere v2 rerank body for a gateway rerank request."""
    query = payload.get("query")
    if not isinstance(query, str) or not query:
        raise BadRequest("'query' must be a non-empty string", param="query")
    body: JSON = {"model": payload.get("model"), "query": query, "documents": documents_of(payload)}
    for name in ("top_n", "max_tokens_per_doc"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    return body


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _usage(meta: Any) -> JSON:
    billed, tokens = as_object(as_object(meta).get("billed_units")), as_object(as_object(meta).get("tokens"))
    usage: JSON = {}
    search_units = _count(billed.get("search_units"))
    if search_units is not None:
        usage["search_units"] = search_units
    prompt = _count(billed.get("input_tokens"))
    if prompt is None:
        prompt = _count(tokens.get("input_tokens"))
    if prompt is not None:
        usage.update(prompt_tokens=prompt, total_tokens=prompt)
    return usage


def from_cohere_rerank_response(body: Any, model: str, *, documents: list[str] | None) -> JSON:
    """The gateway rerank answer for a Cohere v2 rerank response (`documents` to echo, or None)."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise BadGateway("Cohere sent a rerank answer without results")
    translated: list[JSON] = []
    for result in results:
        if not isinstance(result, dict) or not isinstance(result.get("index"), int):
            raise BadGateway("Cohere sent a rerank result without an index")
        item: JSON = {"index": result["index"], "relevance_score": result.get("relevance_score")}
        if documents is not None and 0 <= result["index"] < len(documents):
            item["document"] = {"text": documents[result["index"]]}
        translated.append(item)
    answer: JSON = {"model": model, "results": translated, "usage": _usage(body.get("meta"))}
    if isinstance(body.get("id"), str):
        answer = {"id": body["id"], **answer}
    return answer
