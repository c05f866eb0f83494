"""Run one stage's guardrails over its text (docs/guardrails.md "Execution").

Mutators run one after another by `priority` (then declaration order), each seeing the text the
previous one left; then every validator runs at once, each under its own timeout. What a result does
depends on the integration's enforcing strategy:

| strategy                      | violation         | error or timeout |
|-------------------------------|-------------------|------------------|
| `enforce`                     | block (400)       | block (503)      |
| `enforce_but_ignore_on_error` | block (400)       | allow            |
| `audit`                       | allow, `flag`     | allow            |

Built-in checks are synchronous and bounded (regexes run under a time budget); only the call-outs
(webhook, judge) await, so a stage with built-ins alone costs no task and no event-loop turn.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from relaygate.guardrails.callouts import JUDGE_PROMPT, JudgeCheck, WebhookCheck
from relaygate.guardrails.checks.base import Evaluation
from relaygate.guardrails.checks.errors import CheckTimeout
from relaygate.guardrails.checks.json_schema import JsonSchemaCheck
from relaygate.guardrails.checks.length import LengthCheck
from relaygate.guardrails.checks.required_metadata import RequiredMetadataCheck
from relaygate.guardrails.errors import GuardrailBlocked, GuardrailUnavailable

if TYPE_CHECKING:
    from relaygate.guardrails.text import Texts
    from relaygate.runtime.guardrails import Guardrail, Stage

# (model, prompt, timeout seconds) -> the judge model's answer text; the pipeline sends it through the
# gateway itself, so the judge's cost is logged like any request.
Judge = Callable[[str, str, float], Awaitable[str]]


class GuardrailFailure(Exception):
    """A guardrail could not give a verdict (timeout, a webhook error, a bad answer)."""


@dataclass(slots=True)
class Verdict:
    ref: str
    stage: str
    operation: str
    result: str  # pass | mutate | flag | block | error | skipped
    latency_ms: float
    reason: str = ""
    started: float = 0.0  # perf_counter, for the trace span

    def row(self) -> dict[str, Any]:
        """As the log row's `guardrails` list and the error body show it."""
        return {
            "name": self.ref,
            "stage": self.stage,
            "operation": self.operation,
            "result": self.result,
            "latency_ms": round(self.latency_ms, 3),
            "reason": self.reason,
        }

    def short(self) -> str:
        return f"{self.ref}:{self.result}"


@dataclass(slots=True)
class StageReport:
    """Every verdict of one stage, and whether it blocks the request."""

    verdicts: list[Verdict] = field(default_factory=list)
    blocked: Verdict | None = None
    failed: Verdict | None = None  # an error under `enforce`
    mutated: bool = False
    duration_ms: float = 0.0

    def raise_if_refused(self, all_verdicts: Sequence[Verdict]) -> None:
        """400 `guardrail_blocked` or 503 `guardrail_unavailable`, naming the guardrail."""
        rows = [v.row() for v in all_verdicts]
        if self.blocked is not None:
            reason = f": {self.blocked.reason}" if self.blocked.reason else ""
            raise GuardrailBlocked(f"Blocked by guardrail {self.blocked.ref} ({self.blocked.stage}){reason}", rows)
        if self.failed is not None:
            raise GuardrailUnavailable(
                f"guardrail {self.failed.ref} could not check the {self.failed.stage} ({self.failed.reason}); "
                "it is enforced, so the request was not served",
                rows,
            )


@dataclass(slots=True)
class StageInput:
    """What the checks of a stage may read besides the text."""

    stage: Stage
    texts: Texts
    payload: dict[str, Any] | None  # the request (input stage: `length` caps `max_tokens` in it)
    metadata: Mapping[str, str]
    context: dict[str, Any]  # model, subject, request id: sent to webhooks
    session: aiohttp.ClientSession | None = None
    judge: Judge | None = None


async def run_stage(guardrails: Sequence[Guardrail], given: StageInput) -> StageReport:
    """Mutators in order, then validators concurrently; the report says what each did."""
    started = time.perf_counter()
    report = StageReport()
    mutators = sorted((g for g in guardrails if g.operation == "mutate"), key=lambda g: (g.priority, g.order))
    for guardrail in mutators:
        verdict = await _run_one(guardrail, given)
        _note(report, guardrail, verdict)
        if report.blocked is not None or report.failed is not None:
            report.duration_ms = (time.perf_counter() - started) * 1000.0
            return report
    validators = [g for g in guardrails if g.operation == "validate"]
    if validators:
        if any(isinstance(g.check, WebhookCheck | JudgeCheck) for g in validators):
            verdicts = await asyncio.gather(*(_run_one(g, given) for g in validators))
        else:
            verdicts = [_run_sync(g, given, time.perf_counter()) for g in validators]
        for guardrail, verdict in zip(validators, verdicts, strict=True):
            _note(report, guardrail, verdict)
    report.duration_ms = (time.perf_counter() - started) * 1000.0
    return report


def _note(report: StageReport, guardrail: Guardrail, verdict: Verdict) -> None:
    report.verdicts.append(verdict)
    if verdict.result == "mutate":
        report.mutated = True
    elif verdict.result == "block" and report.blocked is None:
        report.blocked = verdict
    elif verdict.result == "error" and guardrail.strategy == "enforce" and report.failed is None:
        report.failed = verdict


async def _run_one(guardrail: Guardrail, given: StageInput) -> Verdict:
    started = time.perf_counter()
    check = guardrail.check
    if not isinstance(check, WebhookCheck | JudgeCheck):
        return _run_sync(guardrail, given, started)
    try:
        async with asyncio.timeout(guardrail.timeout_s):
            if isinstance(check, WebhookCheck):
                result, reason = await _ask_webhook(check, guardrail, given)
            else:
                result, reason = await _ask_judge(check, guardrail, given)
    except TimeoutError:
        return _verdict(guardrail, given, "error", started, f"no verdict within {guardrail.timeout_s * 1000:g} ms")
    except GuardrailFailure as exc:
        return _verdict(guardrail, given, "error", started, str(exc))
    return _verdict(guardrail, given, result, started, reason)


def _verdict(guardrail: Guardrail, given: StageInput, result: str, started: float, reason: str = "") -> Verdict:
    """The recorded verdict: a violation under `audit` is a flag, never a block."""
    if result == "block" and guardrail.audit:
        result = "flag"
    return Verdict(
        guardrail.ref,
        given.stage,
        guardrail.operation,
        result,
        (time.perf_counter() - started) * 1000.0,
        reason,
        started,
    )


def _run_sync(guardrail: Guardrail, given: StageInput, started: float) -> Verdict:
    """A built-in check (no I/O): mask spans under `mutate`, else block (or flag) on a violation."""
    check: Any = guardrail.check
    try:
        if isinstance(check, RequiredMetadataCheck):
            return _from_evaluation(guardrail, given, check.evaluate_metadata(given.metadata), started)
        if isinstance(check, LengthCheck) and given.stage == "input" and given.payload is not None:
            capped, reason = check.cap_output_tokens(given.payload, guardrail.operation == "mutate")
            if capped != "pass":
                return _verdict(guardrail, given, capped, started, reason)
        if isinstance(check, JsonSchemaCheck | LengthCheck) or guardrail.operation == "validate":
            return _from_evaluation(guardrail, given, check.evaluate(given.texts.joined()), started)
        return _mask_slots(guardrail, given, check, started)
    except CheckTimeout as exc:
        return _verdict(guardrail, given, "error", started, str(exc) or "check ran out of time")


def _from_evaluation(guardrail: Guardrail, given: StageInput, evaluation: Evaluation, started: float) -> Verdict:
    if not evaluation.violated:
        return _verdict(guardrail, given, "pass", started)
    return _verdict(guardrail, given, "block", started, evaluation.reason)


def _mask_slots(guardrail: Guardrail, given: StageInput, check: Any, started: float) -> Verdict:
    """A mutate: each text is masked where the check found spans (`action: mask`); a violation with
    nothing to mask (or `action: block`) blocks."""
    masked_reasons: list[str] = []
    for slot in given.texts.slots:
        evaluation = check.evaluate(slot.text)
        if not evaluation.violated:
            continue
        if check.action != "mask" or not evaluation.spans:
            return _verdict(guardrail, given, "block", started, evaluation.reason)
        if guardrail.audit:
            return _verdict(guardrail, given, "flag", started, evaluation.reason)
        slot.write(check.mask(slot.text, evaluation.spans))
        masked_reasons.append(evaluation.reason)
    if not masked_reasons:
        return _verdict(guardrail, given, "pass", started)
    return _verdict(guardrail, given, "mutate", started, "; ".join(dict.fromkeys(r for r in masked_reasons if r)))


async def _ask_webhook(check: WebhookCheck, guardrail: Guardrail, given: StageInput) -> tuple[str, str]:
    """POST the stage's text and context; `{verdict: pass|flag|block, reason?, transformed?}` back."""
    if given.session is None:
        raise GuardrailFailure("no HTTP session")
    body = {
        "stage": given.stage,
        "operation": guardrail.operation,
        "texts": [slot.text for slot in given.texts.slots],
        "text": given.texts.joined(),
        **given.context,
        "metadata": dict(given.metadata),
    }
    headers = {"content-type": "application/json", **dict(check.headers), **dict(guardrail.headers)}
    try:
        async with given.session.post(check.url, data=orjson.dumps(body), headers=headers) as response:
            raw = await response.content.read(1024 * 1024)
            if response.status >= 400:
                raise GuardrailFailure(f"webhook answered HTTP {response.status}")
    except aiohttp.ClientError as exc:
        raise GuardrailFailure(f"webhook unreachable ({type(exc).__name__})") from None
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GuardrailFailure("webhook answer is not JSON") from None
    if not isinstance(answer, dict) or answer.get("verdict") not in ("pass", "flag", "block"):
        raise GuardrailFailure("webhook answer has no verdict pass|flag|block")
    verdict, reason = answer["verdict"], str(answer.get("reason") or "")[:500]
    transformed = answer.get("transformed")
    if verdict == "pass" and guardrail.operation == "mutate" and transformed is not None:
        return _apply_transformed(given, transformed), reason
    if verdict == "flag":
        return "flag", reason
    return verdict, reason


def _apply_transformed(given: StageInput, transformed: object) -> str:
    """A mutating webhook's new text: one string per text (a list), or one string when there is one text."""
    slots = given.texts.slots
    if isinstance(transformed, str) and len(slots) == 1:
        new = [transformed]
    elif (
        isinstance(transformed, list)
        and len(transformed) == len(slots)
        and all(isinstance(t, str) for t in transformed)
    ):
        new = transformed
    else:
        raise GuardrailFailure("webhook `transformed` must be one string per text")
    changed = False
    for slot, text in zip(slots, new, strict=True):
        if text != slot.text:
            slot.write(text)
            changed = True
    return "mutate" if changed else "pass"


async def _ask_judge(check: JudgeCheck, guardrail: Guardrail, given: StageInput) -> tuple[str, str]:
    """Ask a model on this gateway whether the text breaks the policy; its answer must be our JSON."""
    if given.judge is None:
        raise GuardrailFailure("no judge available")
    text = given.texts.joined()[: check.max_chars]
    answer = await given.judge(check.model, JUDGE_PROMPT.format(policy=check.policy, text=text), guardrail.timeout_s)
    start, end = answer.find("{"), answer.rfind("}")
    try:
        parsed = orjson.loads(answer[start : end + 1]) if start != -1 else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("violation"), bool):
        raise GuardrailFailure("the judge's answer was not the expected JSON")
    reason = str(parsed.get("reason") or "")[:500]
    return ("block" if parsed["violation"] else "pass"), reason
