"""tests/e2e/: the gateway as a separate `relaygate serve` process (signals, exit codes, SDKs over a socket)."""

from __future__ import annotations

import pytest

from tests.conftest import GatewayKind
from tests.helpers.gateway import GatewayProcess


@pytest.fixture(scope="module")
def gateway_kind() -> GatewayKind:
    return GatewayProcess
