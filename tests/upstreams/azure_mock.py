"""Azure OpenAI's wire quirks, used by the mock upstream in `openai_mock.py`.

Azure serves the OpenAI operations under `/openai/deployments/{deployment}/...?api-version=...`,
authenticates with an `api-key` header, answers errors as `{"error": {"code": "401", "message": ...}}`
and adds content-filter annotations: `prompt_filter_results` on responses, and a leading stream chunk
with `choices: []`, an empty `id`/`model`/`object` and the prompt filter results.
"""

from __future__ import annotations

import re
from typing import Any

# Operations Azure serves per deployment (path after the deployment name -> operation name).
_OPERATIONS: dict[str, str] = {
    "chat/completions": "chat",
    "completions": "completions",
    "embeddings": "embeddings",
    "images/generations": "images_generations",
    "images/edits": "images_edits",
    "audio/transcriptions": "audio_transcriptions",
    "audio/translations": "audio_translations",
    "audio/speech": "audio_speech",
}

_DEPLOYMENT_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<op>.+)$")

ACCESS_DENIED_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)


def match_deployment_path(path: str) -> tuple[str, str] | None:
    """(deployment, operation) for an Azure deployment URL path, else None."""
    found = _DEPLOYMENT_PATH.match(path)
    if found is None:
        return None
    op = _OPERATIONS.get(found.group("op"))
    if op is None:
        return None
    return found.group("deployment"), op


def error_body(status: int, message: str) -> dict[str, Any]:
    """Azure's error shape: the code is the status as a string, no `type`."""
    return {"error": {"code": str(status), "message": message}}


def _filter_results() -> dict[str, Any]:
    safe = {"filtered": False, "severity": "safe"}
    return {"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe}


def prompt_filter_results() -> list[dict[str, Any]]:
    """The `prompt_filter_results` Azure attaches to completions."""
    return [{"prompt_index": 0, "content_filter_results": _filter_results()}]


def choice_filter_results() -> dict[str, Any]:
    """The `content_filter_results` Azure attaches to each choice."""
    return _filter_results()


def leading_filter_chunk() -> dict[str, Any]:
    """The first chunk of an Azure chat stream: no choices, empty id/model/object."""
    return {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": prompt_filter_results(),
    }
