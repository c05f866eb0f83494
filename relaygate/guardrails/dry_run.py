"""Replaying logged requests through candidate guardrail rules, offline (`relaygate guardrails test`):
what would these rules have blocked, masked and flagged, before anyone turns them on?

Each log row's guardrails are selected as the pipeline selects them (its logged model, subject, team
and metadata against the candidate rules), and the input stage runs on the logged body with the
engine's own `run_stage`. Nothing leaves the process: webhooks and judges are not called and are
reported `skipped`. The body a row kept is what the log holds, so text an input mutator already
masked when the request was served is replayed masked.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from relaygate.guardrails.callouts import JudgeCheck, WebhookCheck
from relaygate.guardrails.engine import StageInput, StageReport, Verdict, run_stage
from relaygate.guardrails.text import input_texts
from relaygate.runtime.guardrails import Guardrail, GuardrailPolicy, Selection

EVERYONE = "team:everyone"
_API_PREFIXES = ("/api/llm/v1/", "/api/llm/", "/v1/")
# Logged path (after its API prefix) -> the operation whose text `input_texts` reads.
OPERATION_OF_PATH = {
    "chat/completions": "chat",
    "completions": "completions",
    "embeddings": "embeddings",
    "rerank": "rerank",
    "moderations": "moderations",
    "messages": "messages",
    "messages/count_tokens": "messages_count_tokens",
}
SKIPPED_REASON = "not called in a dry run"


@dataclass(slots=True)
class Tally:
    """What one rule or guardrail would have done to the rows it applied to."""

    rows: int = 0
    blocked: int = 0
    masked: int = 0
    flagged: int = 0
    errors: int = 0
    skipped: int = 0

    def percent(self, count: int) -> float:
        return round(100.0 * count / self.rows, 1) if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "would_block": self.blocked,
            "would_block_pct": self.percent(self.blocked),
            "would_mask": self.masked,
            "would_mask_pct": self.percent(self.masked),
            "flags": self.flagged,
            "errors": self.errors,
            "skipped": self.skipped,
        }


@dataclass(slots=True)
class DryRun:
    """Counts over every row read: why rows were not checked, and per rule and guardrail tallies."""

    rows_read: int = 0
    checked: int = 0
    no_body: int = 0
    not_llm: int = 0  # a custom-endpoint or resource call: no guardrail reads it
    unreadable: int = 0  # the body is not a JSON object (clipped by the log's size cap, or multipart)
    no_guardrail: int = 0  # no rule gives it an input guardrail
    rules: dict[str, Tally] = field(default_factory=dict)
    guardrails: dict[str, Tally] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": {
                "read": self.rows_read,
                "checked": self.checked,
                "no_body_logged": self.no_body,
                "not_an_llm_request": self.not_llm,
                "unreadable_body": self.unreadable,
                "no_input_guardrail": self.no_guardrail,
            },
            "rules": [{"id": rule_id, **tally.as_dict()} for rule_id, tally in self.rules.items()],
            "guardrails": [{"ref": ref, **tally.as_dict()} for ref, tally in self.guardrails.items()],
        }


def operation_of(path: str) -> str | None:
    """The LLM operation a logged path served (None: not an LLM route)."""
    for prefix in _API_PREFIXES:
        if path.startswith(prefix):
            return OPERATION_OF_PATH.get(path[len(prefix) :].strip("/"))
    return None


def subjects_of(row: Mapping[str, Any]) -> frozenset[str]:
    """The caller's subjects as far as the row says: its subject, and for a user `team:everyone` and
    the one team the log keeps (a user in several teams logs only the first)."""
    subject = row.get("subject")
    if not subject:
        return frozenset()
    if str(subject).startswith("virtualaccount:"):
        return frozenset({subject})
    team = row.get("team")
    return frozenset({subject, EVERYONE, *((f"team:{team}",) if team else ())})


def _is_callout(guardrail: Guardrail) -> bool:
    return isinstance(guardrail.check, WebhookCheck | JudgeCheck)


class Replayer:
    """Runs rows through one candidate policy and keeps the counts (rules and guardrails in config order)."""

    def __init__(self, policy: GuardrailPolicy) -> None:
        self.policy = policy
        self.result = DryRun(
            rules={rule.id: Tally() for rule in policy.rules if rule.input},
            guardrails={ref: Tally() for ref in _input_refs(policy)},
        )

    async def replay_all(self, rows: Iterable[Mapping[str, Any]]) -> DryRun:
        for row in rows:
            await self.replay(row)
        return self.result

    async def replay(self, row: Mapping[str, Any]) -> None:
        """One row: select its guardrails, run the input stage on its body, count what happened."""
        result = self.result
        result.rows_read += 1
        operation = operation_of(str(row.get("path") or ""))
        if operation is None:
            result.not_llm += 1
            return
        body = row.get("request_body")
        if body is None:
            result.no_body += 1
            return
        payload = _payload(body)
        if payload is None:
            result.unreadable += 1
            return
        model = str(row.get("requested_model") or row.get("resolved_model") or "")
        metadata = {str(k): str(v) for k, v in (row.get("metadata") or {}).items()}
        selection = self.policy.select(model, subjects_of(row), metadata, {})
        if selection is None or not selection.input:
            result.no_guardrail += 1
            return
        result.checked += 1
        context = {"model": model, "subject": row.get("subject"), "request_id": row.get("request_id")}
        verdicts = await _input_stage(selection, operation, payload, metadata, context)
        self._count(selection, verdicts)

    def _count(self, selection: Selection, verdicts: list[Verdict]) -> None:
        for verdict in verdicts:
            tally = self.result.guardrails.setdefault(verdict.ref, Tally())
            tally.rows += 1
            _add(tally, [verdict])
        rules = {rule.id: rule for rule in self.policy.rules}
        for rule_id in selection.rule_ids:
            own = [v for v in verdicts if v.ref in rules[rule_id].input]
            if not own:
                continue
            tally = self.result.rules.setdefault(rule_id, Tally())
            tally.rows += 1
            _add(tally, own)


def _add(tally: Tally, verdicts: list[Verdict]) -> None:
    """One row's verdicts into a tally: each kind of outcome counts the row once."""
    results = {v.result for v in verdicts}
    tally.blocked += "block" in results
    tally.masked += "mutate" in results
    tally.flagged += "flag" in results
    tally.errors += "error" in results
    tally.skipped += "skipped" in results


def _input_refs(policy: GuardrailPolicy) -> list[str]:
    return list(dict.fromkeys(ref for rule in policy.rules for ref in rule.input if ref in policy.guardrails))


def _payload(body: Any) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


async def _input_stage(
    selection: Selection,
    operation: str,
    payload: dict[str, Any],
    metadata: dict[str, str],
    context: dict[str, Any],
) -> list[Verdict]:
    """The input stage as `pipeline.guard.guard_input` runs it, minus the calls out: enforced guardrails
    on the payload, then `logging_only` mutators on a copy; webhooks and judges `skipped`."""
    callouts = [g for g in selection.input if _is_callout(g)]
    enforced = [g for g in selection.input if not g.logging_only and not _is_callout(g)]
    logged = [g for g in selection.input if g.logging_only and not _is_callout(g)]
    report = await _run(selection, operation, payload, metadata, context, enforced)
    verdicts = [*report.verdicts]
    if logged and report.blocked is None and report.failed is None:
        verdicts += (await _run(selection, operation, copy.deepcopy(payload), metadata, context, logged)).verdicts
    verdicts += [Verdict(g.ref, "input", g.operation, "skipped", 0.0, SKIPPED_REASON) for g in callouts]
    return verdicts


async def _run(
    selection: Selection,
    operation: str,
    payload: dict[str, Any],
    metadata: dict[str, str],
    context: dict[str, Any],
    guardrails: list[Guardrail],
) -> StageReport:
    if not guardrails:
        return StageReport()
    texts = input_texts(operation, payload, selection.scope, selection.include_system, selection.include_tool_results)
    return await run_stage(guardrails, StageInput("input", texts, payload, metadata, context))
