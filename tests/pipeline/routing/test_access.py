"""Access through virtual models: targets a caller may not call are never reached, not even by fallback."""

from __future__ import annotations

import openai
import pytest

from tests.pipeline.routing.conftest import Rig


def test_fallback_skips_a_target_the_caller_may_not_call(rig: Rig) -> None:
    rig.a.fail_next(503)
    raw = rig.chat("vmod/access")  # alice: prov-r lists only bob as collaborator
    assert raw.headers["x-tfy-resolved-model"] == "prov-b/access"
    assert rig.counts() == (1, 1, 0), "prov-r (upstream C) was reached by a caller without access"


def test_fallback_reaches_a_restricted_target_for_its_collaborator(rig: Rig) -> None:
    rig.a.fail_next(503)
    raw = rig.chat("vmod/access", token=rig.bob)
    assert raw.headers["x-tfy-resolved-model"] == "prov-r/access"
    assert rig.counts() == (1, 0, 1)


def test_virtual_account_listing_the_virtual_model_is_served(rig: Rig) -> None:
    raw = rig.chat("vmod/vat", token=rig.vm_bot)
    assert raw.headers["x-tfy-resolved-model"] == "prov-a/vat"
    assert rig.counts() == (1, 0, 0)


def test_virtual_account_without_the_virtual_model_in_allowed_models_is_403(rig: Rig) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        rig.chat("vmod/vat", token=rig.targets_bot)  # lists both targets, not the virtual model
    assert rig.counts() == (0, 0, 0)


def test_virtual_account_may_not_call_other_virtual_models(rig: Rig) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        rig.chat("vmod/priority", token=rig.vm_bot)
    assert rig.counts() == (0, 0, 0)
