"""Guardrails around an MCP tool call: `mcp_tool_pre_invoke_guardrails` on the arguments, and
`mcp_tool_post_invoke_guardrails` on the result, with the same engine as LLM input and output.

A rule applies when it names MCP guardrails and its `when` matches the call (`mcpServers` naming the
remote server or `server:tool`, subjects, metadata; `RequestMatcher.matches_tool`); a rule naming
models and no MCP server is for model calls only. The texts are every string in the
arguments, and the text parts and string values of `structuredContent` of the result, so a mutator
(PII masking) rewrites them in place before the call goes upstream or the result goes back. A block
never reaches the tool (pre) or the caller (post): the caller gets a result with `isError: true`
explaining which guardrail refused, which a model reads and can act on; a guardrail that fails under
`enforce` gives a JSON-RPC -32603. Verdicts go on the row (`guardrails`) and the guardrail metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relaygate.guardrails.engine import StageInput, StageReport, Verdict, run_stage
from relaygate.guardrails.text import Slot, Texts
from relaygate.runtime.guardrails import Guardrail, GuardrailPolicy, Stage


def tool_guardrails(
    policy: GuardrailPolicy,
    stage: Stage,
    server: str,
    tool: str,
    subjects: frozenset[str],
    metadata: Mapping[str, str],
) -> tuple[Guardrail, ...]:
    """The guardrails of `stage` (mcp_pre or mcp_post) the matching rule(s) name for this call."""
    refs: list[str] = []
    for rule in policy.rules:
        if not (rule.mcp_pre or rule.mcp_post):
            continue  # a rule for model calls only never shadows one for tools
        if rule.matcher.models is not None and rule.matcher.mcp_servers is None:
            continue  # it names models and no MCP server
        if rule.matcher.matches_tool(server, tool, subjects, metadata):
            refs += rule.mcp_pre if stage == "mcp_pre" else rule.mcp_post
            if policy.match == "first":
                break
    chosen: dict[str, Guardrail] = {}
    for ref in refs:
        if ref not in chosen and ref in policy.guardrails:
            chosen[ref] = policy.guardrails[ref]
    return tuple(chosen.values())


def string_slots(value: Any, texts: Texts, role: str) -> None:
    """Every string inside a JSON value, as a slot a mutator can rewrite in place."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        if isinstance(item, str):
            texts.slots.append(Slot(value, key, item, role))
        else:
            string_slots(item, texts, role)


def result_texts(result: dict[str, Any]) -> Texts:
    """The text a post-invoke guardrail reads: text content parts and structured content strings."""
    texts = Texts()
    content = result.get("content")
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.slots.append(Slot(part, "text", part["text"], "tool"))
        else:
            texts.skipped += 1
    string_slots(result.get("structuredContent"), texts, "tool")
    return texts


@dataclass(slots=True)
class ToolGuard:
    """The guardrails of one call, run stage by stage; `verdicts` collects what each did."""

    policy: GuardrailPolicy
    server: str
    tool: str
    subjects: frozenset[str]
    metadata: Mapping[str, str]
    context: dict[str, Any]
    verdicts: list[Verdict]

    async def run(self, stage: Stage, texts: Texts) -> StageReport | None:
        """Run a stage over `texts` (None when no guardrail applies)."""
        guardrails = tool_guardrails(self.policy, stage, self.server, self.tool, self.subjects, self.metadata)
        if not guardrails:
            return None
        report = await run_stage(guardrails, StageInput(stage, texts, None, self.metadata, self.context))
        self.verdicts += report.verdicts
        return report


def blocked_result(verdict: Verdict, before: bool) -> dict[str, Any]:
    """The tool result a caller gets instead of a blocked call or answer."""
    when = "the call was not made" if before else "its result was withheld"
    reason = f": {verdict.reason}" if verdict.reason else ""
    text = f"Blocked by guardrail {verdict.ref} ({verdict.stage}){reason}; {when}."
    return {"content": [{"type": "text", "text": text}], "isError": True}
