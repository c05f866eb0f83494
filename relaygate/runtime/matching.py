"""`when` of guardrail and cache rules, compiled: which requests a rule matches.

Parts AND together and a missing part matches everything. Models match by name or `*` glob (the
requested name: a virtual model's rule covers every target); subjects by `in` / `not_in` over the
caller's subject and teams; metadata needs every listed key with one of its listed values.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestMatcher:
    models: re.Pattern[str] | None = None  # None: every model
    mcp_servers: tuple[str, ...] | None = None  # `server` or `server:tool`; None: every server
    subjects_in: frozenset[str] | None = None
    subjects_not_in: frozenset[str] = frozenset()
    subjects_any: bool = False  # operator `or`: in OR not-in decides
    metadata: tuple[tuple[str, frozenset[str]], ...] = ()

    def matches(self, model: str | None, subjects: frozenset[str], metadata: Mapping[str, str]) -> bool:
        """Whether a request for `model` (None: an MCP call) by a caller with `subjects` matches."""
        if model is not None and self.models is not None and not self.models.match(model):
            return False
        if not self._subjects_match(subjects):
            return False
        return all(metadata.get(key) in values for key, values in self.metadata)

    def matches_tool(self, server: str, tool: str, subjects: frozenset[str], metadata: Mapping[str, str]) -> bool:
        """Whether an MCP tool call matches (`mcpServers` lists `server` or `server:tool`)."""
        if (
            self.mcp_servers is not None
            and server not in self.mcp_servers
            and f"{server}:{tool}" not in self.mcp_servers
        ):
            return False
        return self._subjects_match(subjects) and all(metadata.get(k) in v for k, v in self.metadata)

    def _subjects_match(self, subjects: frozenset[str]) -> bool:
        included = self.subjects_in is None or not self.subjects_in.isdisjoint(subjects)
        excluded = not self.subjects_not_in.isdisjoint(subjects)
        if self.subjects_any:
            return (self.subjects_in is not None and included) or (bool(self.subjects_not_in) and not excluded)
        return included and not excluded


def glob_pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled regex for model names and `*` globs (`openai-main/*`, `*`)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


EVERY_REQUEST = RequestMatcher()
