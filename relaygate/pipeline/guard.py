"""The guardrail steps of the LLM pipeline: input checks before the model call, output checks on the
answer (docs/guardrails.md).

`guard_input` picks the request's guardrails (rules plus what `x-tfy-guardrails` may add), runs the
input stage (mutations land in the payload sent upstream and in the logged body) and returns the
`Guarded` state the answer's checks continue from; None when no guardrail applies (one attribute read
on a gateway without guardrails). Every verdict goes to the log row (`guardrails`), the
`x-tfy-applied-configurations` header and `x-relaygate-guardrails`.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.errors import BadRequest
from relaygate.guardrails.engine import StageInput, StageReport, Verdict, run_stage
from relaygate.guardrails.text import input_texts, output_texts
from relaygate.pipeline.internal import judge_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from relaygate.guardrails.engine import Judge
    from relaygate.guardrails.text import Texts
    from relaygate.http.types import Message, Send
    from relaygate.pipeline.call import Call
    from relaygate.runtime.guardrails import Guardrail, Selection

_STAGE_KEYS = ("llm_input_guardrails", "llm_output_guardrails")


@dataclass(slots=True)
class Guarded:
    """One request's guardrails and what they said so far."""

    selection: Selection
    operation: str
    context: dict[str, Any]
    metadata: dict[str, str]
    call: Call
    verdicts: list[Verdict] = field(default_factory=list)
    judge: Judge | None = None
    # Input validators running beside the model call (`parallel_with_model`); None: they already ran.
    pending: asyncio.Future[StageReport] | None = None

    async def input_verdict(self) -> None:
        """Wait for the input validators running beside the model call; refuse if they block."""
        pending, self.pending = self.pending, None
        if pending is not None:
            report = await pending
            ctx = self.call.ctx
            ctx.timings.input_guardrails = (ctx.timings.input_guardrails or 0.0) + report.duration_ms
            self.note(report)

    def stage_input(self, stage: Any, texts: Texts, payload: dict[str, Any] | None) -> StageInput:
        return StageInput(stage, texts, payload, self.metadata, self.context, self.call.gateway.session, self.judge)

    def note(self, report: StageReport) -> None:
        """Record a stage's verdicts on the request (log row, headers, spans) and refuse if it must."""
        self.verdicts += report.verdicts
        ctx = self.call.ctx
        for verdict in report.verdicts:
            if verdict.started:
                ctx.add_span(
                    f"apply_guardrail {verdict.ref}",
                    verdict.started,
                    verdict.started + verdict.latency_ms / 1000.0,
                    True,
                    _span_attributes(verdict, ",".join(self.selection.rule_ids)),
                    verdict.result == "error",
                )
        ctx.extra["guardrails"] = [v.row() for v in self.verdicts]
        applied: dict[str, Any] = {"rule": ",".join(self.selection.rule_ids)}
        for stage in ("input", "output"):
            applied[stage] = [v.short() for v in self.verdicts if v.stage == stage]
        ctx.extra["guardrails_applied"] = applied
        report.raise_if_refused(self.verdicts)

    def header(self) -> tuple[bytes, bytes] | None:
        """`x-relaygate-guardrails: group/pii=mutate, group/secrets=pass` (what ran so far)."""
        if not self.verdicts:
            return None
        return (b"x-relaygate-guardrails", ", ".join(f"{v.ref}={v.result}" for v in self.verdicts).encode())

    async def check_answer(self, body: bytes) -> bytes:
        """The non-streaming output stage: mutators then validators on the assembled answer; the
        (possibly masked) body, or `GuardrailBlocked` (400, stage output)."""
        guardrails = self.selection.output
        if not guardrails:
            return body
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body  # not JSON (binary answers): nothing a text guardrail reads
        if not isinstance(answer, dict):
            return body
        texts = output_texts(self.operation, answer, self.selection.include_reasoning)
        report = await run_stage(guardrails, self.stage_input("output", texts, None))
        self.call.ctx.timings.output_guardrails = report.duration_ms
        self.note(report)
        return orjson.dumps(answer) if report.mutated else body


async def exchange_beside_validators(guarded: Guarded, call: Call, run: Callable[[Send], Awaitable[None]]) -> None:
    """`parallel_with_model`: the model call starts while the input validators run. No byte reaches the
    client before they pass (the first send waits for them); if one blocks, the model call is cancelled
    (its upstream connection closed) and the request is refused as if it had been checked first."""
    pending = guarded.pending
    assert pending is not None
    send = call.send

    async def gated(message: Message) -> None:
        if guarded.pending is not None:
            await guarded.input_verdict()
        await send(message)

    model_call = asyncio.ensure_future(run(gated))
    try:
        await asyncio.wait((model_call, pending), return_when=asyncio.FIRST_COMPLETED)
        if guarded.pending is not None and pending.done():
            await guarded.input_verdict()  # raises when a validator blocks
    except BaseException:
        model_call.cancel()
        await asyncio.gather(model_call, return_exceptions=True)
        raise
    await model_call
    if guarded.pending is not None:  # the model call ended without sending anything
        await guarded.input_verdict()


def _span_attributes(verdict: Verdict, rule: str) -> tuple[tuple[str, Any], ...]:
    """The GenAI guardrail conventions' attributes (next-capabilities.md §1.2); the reason names what was
    found, never the text."""
    attributes: tuple[tuple[str, Any], ...] = (
        ("gen_ai.operation.name", "apply_guardrail"),
        ("gen_ai.guardrail.component.name", verdict.ref),
        ("gen_ai.guardrail.policy.id", rule),
        ("gen_ai.guardrail.source", verdict.stage),
        ("gen_ai.guardrail.result.type", verdict.operation),
        ("gen_ai.guardrail.result.value", verdict.result),
    )
    if verdict.reason:
        attributes += (("gen_ai.guardrail.result.reason", verdict.reason),)
    return attributes


def requested_guardrails(call: Call, allowed: bool) -> dict[str, tuple[str, ...]]:
    """`x-tfy-guardrails: {"llm_input_guardrails": [...], "llm_output_guardrails": [...]}`: guardrails a
    request adds (never removes), only where the rules manifest sets `allow_request_guardrails`."""
    raw = call.header(b"x-tfy-guardrails")
    if raw is None or not raw.strip():
        return {}
    if not allowed:
        raise BadRequest(
            "x-tfy-guardrails is not accepted: this gateway's guardrails config does not set allow_request_guardrails",
            code="invalid_header",
            param="x-tfy-guardrails",
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    known = call.gateway.snapshot.guardrails.guardrails
    if not isinstance(value, dict) or set(value) - set(_STAGE_KEYS):
        raise BadRequest(
            "x-tfy-guardrails must be a JSON object with llm_input_guardrails and/or llm_output_guardrails lists",
            code="invalid_header",
            param="x-tfy-guardrails",
        )
    out: dict[str, tuple[str, ...]] = {}
    for key, refs in value.items():
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise BadRequest(f"x-tfy-guardrails.{key} must be a list of names", code="invalid_header", param=key)
        unknown = [r for r in refs if r not in known]
        if unknown:
            raise BadRequest(
                f"x-tfy-guardrails names an unknown guardrail {unknown[0][:128]!r}",
                code="invalid_header",
                param="x-tfy-guardrails",
            )
        out[key] = tuple(refs)
    return out


async def guard_input(call: Call, operation: str, model: str, payload: dict[str, Any] | None) -> Guarded | None:
    """Select the request's guardrails and run the input stage (mutating `payload` in place)."""
    policy = call.gateway.snapshot.guardrails
    if not policy:
        if call.header(b"x-tfy-guardrails") is not None:
            requested_guardrails(call, False)
        return None
    ctx = call.ctx
    extra = requested_guardrails(call, policy.allow_request_guardrails)
    selection = policy.select(model, ctx.subjects, ctx.metadata, extra)
    if selection is None:
        return None
    guarded = Guarded(
        selection,
        operation,
        {"model": model, "subject": ctx.subject, "request_id": ctx.request_id},
        dict(ctx.metadata),
        call,
        judge=judge_for(call),
    )
    if not selection.input or payload is None:
        return guarded
    enforced = [g for g in selection.input if not g.logging_only]
    texts = input_texts(operation, payload, selection.scope, selection.include_system, selection.include_tool_results)
    validators = [g for g in enforced if g.operation == "validate"]
    if policy.parallel_with_model and validators:  # mutators now; validators beside the model call
        enforced = [g for g in enforced if g.operation == "mutate"]
        guarded.pending = asyncio.ensure_future(run_stage(validators, guarded.stage_input("input", texts, payload)))
    report = await run_stage(enforced, guarded.stage_input("input", texts, payload))
    if texts.skipped:
        report.verdicts.append(
            Verdict("(non-text parts)", "input", "validate", "skipped", 0.0, f"{texts.skipped} parts")
        )
    ctx.timings.input_guardrails = report.duration_ms
    guarded.note(report)
    logged = await _logging_only(guarded, [g for g in selection.input if g.logging_only], payload)
    if report.mutated or logged is not None:
        ctx.request_body = orjson.dumps(logged if logged is not None else payload) if ctx.log_bodies else None
    return guarded


async def _logging_only(guarded: Guarded, guardrails: list[Guardrail], payload: dict[str, Any]) -> Any:
    """`logging_only` mutators: they mask a copy, which is what the log row and spans keep."""
    if not guardrails:
        return None
    copied = copy.deepcopy(payload)
    selection = guarded.selection
    texts = input_texts(
        guarded.operation, copied, selection.scope, selection.include_system, selection.include_tool_results
    )
    report = await run_stage(guardrails, guarded.stage_input("input", texts, copied))
    guarded.verdicts += report.verdicts
    guarded.call.ctx.extra["guardrails"] = [v.row() for v in guarded.verdicts]
    return copied
