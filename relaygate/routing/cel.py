"""CEL model-selection strategies (the ngrok dialect's `model_selection.strategy`), compiled once.

Each strategy is parsed and checked when the config is compiled (syntax and function names), so a
typo is a config problem, not a request failure. At request time a strategy sees `ai.models`, a list
of maps (`id`, `id_aliases`, `provider_id`, `provider_id_aliases`, `metadata`, `provider_metadata`,
`configured`), and `ai.request.metadata` (the caller's `x-tfy-metadata`). It answers with a list of
those maps; we map the answer back to indices, so a strategy can filter and reorder but never add.

Beyond standard CEL (with celpy's macros) these list functions exist: `random()` (a shuffled copy),
`only(ids)` / `ignore(ids)` (model id or alias), `onlyProviders(ids)` / `ignoreProviders(ids)`.

celpy is an interpreter (~0.1-1 ms per evaluation), so answers of strategies that use neither
`random()` nor `ai.request` are memoised per candidate list: they depend on nothing else.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import base_functions

log = logging.getLogger(__name__)

MEMO_LIMIT = 4096
_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one", "reduce", "min", "has", "dyn"})
_EXTENSIONS = frozenset({"random", "only", "ignore", "onlyProviders", "ignoreProviders"})
KNOWN_FUNCTIONS = frozenset(base_functions) | _MACROS | _EXTENSIONS
# Identifiers whose presence makes an answer depend on more than the candidate list.
_VOLATILE = frozenset({"random", "request"})

_ID = celtypes.StringType("id")
_ID_ALIASES = celtypes.StringType("id_aliases")
_PROVIDER_ID = celtypes.StringType("provider_id")
_PROVIDER_ALIASES = celtypes.StringType("provider_id_aliases")


class CelError(ValueError):
    """A strategy that cannot be compiled; the message names the position or the unknown function."""


def to_cel(value: Any) -> Any:
    """JSON-shaped Python data as CEL values (done once per configured model, at load)."""
    return json_to_cel(value)


def _names(item: Any, id_key: celtypes.StringType, aliases_key: celtypes.StringType) -> set[str]:
    if not isinstance(item, celtypes.MapType):
        return set()
    names = {str(item[id_key])} if id_key in item else set()
    aliases = item.get(aliases_key)
    if isinstance(aliases, list):
        names.update(str(a) for a in aliases)
    return names


def _id_set(ids: Any) -> set[str]:
    if isinstance(ids, celtypes.StringType):
        return {str(ids)}
    if not isinstance(ids, list):
        raise TypeError("expects a list of ids")
    return {str(i) for i in ids}


def _keep(id_key: celtypes.StringType, aliases_key: celtypes.StringType, wanted: bool) -> Callable[[Any, Any], Any]:
    def keep(items: Any, ids: Any) -> Any:
        chosen = _id_set(ids)
        return celtypes.ListType([i for i in items if bool(_names(i, id_key, aliases_key) & chosen) == wanted])

    return keep


def _functions(rng: random.Random) -> dict[str, Any]:
    """The extension functions, bound to this evaluation's random source (no shared state)."""

    def shuffled(items: Any) -> Any:
        out = list(items)
        rng.shuffle(out)
        return celtypes.ListType(out)

    return {
        "random": shuffled,
        "only": _keep(_ID, _ID_ALIASES, True),
        "ignore": _keep(_ID, _ID_ALIASES, False),
        "onlyProviders": _keep(_PROVIDER_ID, _PROVIDER_ALIASES, True),
        "ignoreProviders": _keep(_PROVIDER_ID, _PROVIDER_ALIASES, False),
    }


def _analyse(ast: Any) -> tuple[list[str], set[str]]:
    """Names called as `f(...)` or `x.f(...)`, and every identifier (iterative: no recursion limit)."""
    called: list[str] = []
    idents: set[str] = set()
    for node in ast.iter_subtrees():
        if node.data in ("member_dot_arg", "ident_arg"):
            called.append(str(node.children[1] if node.data == "member_dot_arg" else node.children[0]))
        idents.update(str(c) for c in node.children if getattr(c, "type", None) == "IDENT")
    return called, idents


class SelectionProgram:
    """One compiled strategy. `select` never raises: a failing strategy counts as an empty answer."""

    __slots__ = ("source", "_ast", "_env", "volatile", "_memo", "_failed")

    def __init__(self, source: str) -> None:
        self.source = source
        self._env = celpy.Environment()
        try:
            self._ast = self._env.compile(source)
            called, idents = _analyse(self._ast)
        except CELParseError as exc:
            line, column = getattr(exc, "line", None), getattr(exc, "column", None)
            where = f" at line {line}, column {column}" if line is not None and column is not None else ""
            raise CelError(f"is not valid CEL (syntax error{where})") from None
        except RecursionError:
            raise CelError("is nested too deeply to compile") from None
        unknown = sorted({n for n in called if n not in KNOWN_FUNCTIONS})
        if unknown:
            raise CelError(
                f"calls unknown function(s) {', '.join(unknown)} (available: standard CEL, "
                f"{', '.join(sorted(_EXTENSIONS))})"
            )
        self.volatile = bool(idents & _VOLATILE)
        self._memo: dict[tuple[Hashable, ...], tuple[int, ...] | None] = {}
        self._failed = False
        try:  # a dry run over no models: only nesting too deep for the interpreter fails for sure here
            celpy.InterpretedRunner(self._env, self._ast, _functions(random.Random(0))).evaluate(
                self._activation([], {})
            )
        except RecursionError:
            raise CelError("is nested too deeply to evaluate") from None
        except Exception:  # other failures depend on the models a request brings
            pass

    def select(
        self,
        models: Sequence[Any],
        keys: Sequence[Hashable],
        rng: random.Random,
        request_metadata: Mapping[str, str] | None = None,
    ) -> tuple[int, ...] | None:
        """Indices into `models` in the strategy's order (deduplicated); None when it failed.

        `models` are CEL maps (see `to_cel`) and `keys[i]` identifies `models[i]` for the memo.
        """
        memo_key = tuple(keys)
        if not self.volatile and memo_key in self._memo:
            return self._memo[memo_key]
        answer = self._evaluate(models, rng, request_metadata or {})
        if not self.volatile:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[memo_key] = answer
        return answer

    def _evaluate(
        self, models: Sequence[Any], rng: random.Random, request_metadata: Mapping[str, str]
    ) -> tuple[int, ...] | None:
        try:
            result: Any = celpy.InterpretedRunner(self._env, self._ast, _functions(rng)).evaluate(
                self._activation(models, request_metadata)
            )
        except Exception as exc:  # a broken strategy must never fail the request itself
            self._note_failure(f"failed: {type(exc).__name__}: {str(exc.args[0] if exc.args else exc)[:200]}")
            return None
        if isinstance(result, celtypes.MapType):
            result = [result]  # a single model (e.g. `ai.models[0]`) is a one-model answer
        if not isinstance(result, list):
            self._note_failure(f"answered a {type(result).__name__}, not a list of models")
            return None
        position = {_key_of(m): i for i, m in enumerate(models)}
        out: list[int] = []
        for item in result:
            index = position.get(_key_of(item))
            if index is not None and index not in out:
                out.append(index)
        return tuple(out)

    @staticmethod
    def _activation(models: Sequence[Any], request_metadata: Mapping[str, str]) -> dict[str, Any]:
        return {
            "ai": celtypes.MapType(
                {
                    celtypes.StringType("models"): celtypes.ListType(models),
                    celtypes.StringType("request"): to_cel({"metadata": dict(request_metadata)}),
                }
            )
        }

    def _note_failure(self, why: str) -> None:
        level = logging.DEBUG if self._failed else logging.WARNING
        self._failed = True
        log.log(
            level, "model_selection strategy %r %s; treated as no models (next strategy tried)", self.source[:120], why
        )


def _key_of(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, celtypes.MapType) or _PROVIDER_ID not in item or _ID not in item:
        return None
    return (str(item[_PROVIDER_ID]), str(item[_ID]))


def compile_strategy(source: str) -> SelectionProgram:
    """Parse and check one strategy; `CelError` says what is wrong without echoing the text."""
    return SelectionProgram(source)
