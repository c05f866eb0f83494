"""What an unknown-model 404 suggests: the configured models closest by name that the caller may call.

Only models (and virtual models) this token may call and that serve the operation are named, so a
404 never reveals a model the caller cannot use. Runs on the error path only; the comparison is
difflib's ratio on the whole `account/integration` name and on the integration part (a bare provider
model name such as `gpt-4o` finds `openai-main/gpt-4o`), with difflib's cheap upper bounds first.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from relaygate.auth.access import may_call

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.runtime.snapshot import Snapshot

MAX_SUGGESTIONS = 5
CUTOFF = 0.4  # below this a name shares too little with the request to be a useful guess


def closest_models(snapshot: Snapshot, principal: Principal, requested: str, model_type: str) -> list[str]:
    """Up to 5 callable model names closest to `requested`, best first."""
    wanted = requested.lower()
    bare = wanted.rpartition("/")[2]
    matcher = SequenceMatcher()
    matcher.set_seq2(wanted)
    bare_matcher = SequenceMatcher()
    bare_matcher.set_seq2(bare)
    scored: list[tuple[float, str]] = []
    for name in _callable(snapshot, principal, model_type):
        lowered = name.lower()
        score = max(_ratio(matcher, lowered), _ratio(bare_matcher, lowered.partition("/")[2]))
        if score >= CUTOFF:
            scored.append((-score, name))
    return [name for _, name in heapq.nsmallest(MAX_SUGGESTIONS, scored)]


def unknown_model_hint(snapshot: Snapshot, principal: Principal, requested: str, model_type: str) -> str:
    """The sentence the 404 ends with: the closest models, or where to list them."""
    names = closest_models(snapshot, principal, requested, model_type)
    if names:
        return f"; closest models your token may call: {', '.join(names)}"
    return "; GET /api/llm/models lists the models your token may call"


def _callable(snapshot: Snapshot, principal: Principal, model_type: str) -> Iterator[str]:
    for table in (snapshot.models, snapshot.virtual_models):
        for name, model in table.items():
            if model_type in model.model_types and may_call(principal, name, model.account, model.access):
                yield name


def _ratio(matcher: SequenceMatcher[str], candidate: str) -> float:
    """difflib's ratio, skipped (0) when its cheap upper bounds already fall below the cutoff."""
    matcher.set_seq1(candidate)
    if matcher.real_quick_ratio() < CUTOFF or matcher.quick_ratio() < CUTOFF:
        return 0.0
    return matcher.ratio()
