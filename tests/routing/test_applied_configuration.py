"""What `x-tfy-applied-configurations` says a target changed, and which fallbacks happened (no server)."""

from __future__ import annotations

from types import SimpleNamespace

from relaygate.config.compile_virtual import headers_override_names
from relaygate.handlers.messages import MessagesOpener
from relaygate.pipeline.planning import fallback_entries, model_configuration
from relaygate.providers.base import MESSAGES, MESSAGES_COUNT_TOKENS
from relaygate.providers.mock import MockAdapter
from relaygate.routing.router import AttemptRecord, Outcome, RouteResult
from relaygate.runtime.targets import Target
from relaygate.runtime.virtual import TargetOverrides

PARAMS = {"temperature": 0.2, "top_k": 5, "logit_bias": {"1": 2}}


def _overrides(provider: str = "openai", **changes: object) -> TargetOverrides:
    target = Target(
        name=f"{provider}-acct/m",
        account=f"{provider}-acct",
        integration="m",
        provider=provider,
        model_id="m-1",
        model_types=frozenset({"chat"}),
        adapter=MockAdapter(),
    )
    return TargetOverrides(target, **changes)  # type: ignore[arg-type]


def test_a_target_without_changes_reports_nothing() -> None:
    assert model_configuration(_overrides()) is None


def test_header_values_never_appear() -> None:
    override = SimpleNamespace(set={"X-Key": "s3cret", "X-Other": "v"}, remove=["X-B", "x-a", "x-b"])
    changes = headers_override_names(override)
    assert "s3cret" not in str(changes)  # only names reach the runtime type
    entry = model_configuration(_overrides(header_changes=changes))
    assert entry == {
        "target": "openai-acct/m",
        "headers_override": {"set": ["X-Key", "X-Other"], "remove": ["x-a", "x-b"]},
    }


def test_an_empty_headers_override_reports_nothing() -> None:
    assert headers_override_names(SimpleNamespace(set={}, remove=[])) == ()
    assert headers_override_names(None) == ()
    removed_only = headers_override_names(SimpleNamespace(set={}, remove=["X-A"]))
    assert model_configuration(_overrides(header_changes=removed_only)) == {
        "target": "openai-acct/m",
        "headers_override": {"remove": ["x-a"]},
    }


def test_only_the_params_the_call_sent_are_named() -> None:
    overrides = _overrides(override_params=PARAMS)
    assert model_configuration(overrides)["override_params"] == ["logit_bias", "temperature", "top_k"]  # type: ignore[index]
    assert model_configuration(overrides, lambda o: ()) is None  # e.g. a multipart body: nothing applied


def test_messages_api_names_what_each_kind_of_target_receives() -> None:
    opener = MessagesOpener("vm/x", ())
    assert sorted(opener.applied_params(MESSAGES, _overrides("anthropic", override_params=PARAMS))) == [
        "temperature",
        "top_k",
    ]  # an Anthropic target gets Messages parameters only
    assert sorted(opener.applied_params(MESSAGES, _overrides(override_params=PARAMS))) == sorted(PARAMS)
    assert opener.applied_params(MESSAGES_COUNT_TOKENS, _overrides("anthropic", override_params=PARAMS)) == []


def test_fallback_entries_skip_retries_of_the_same_target() -> None:
    attempts = [
        AttemptRecord("a", 500, "upstream_error", 1.0, False),
        AttemptRecord("a", 429, "upstream_error", 1.0, False),
        AttemptRecord("b", None, "upstream_timeout", 1.0, False),
        AttemptRecord("c", 200, None, 1.0, False),
    ]
    route: RouteResult[object] = RouteResult(Outcome(status=200), attempts)
    assert fallback_entries(route) == [
        {"from": "a", "to": "b", "status": 429},
        {"from": "b", "to": "c", "error": "upstream_timeout"},
    ]
