"""`relaygate serve --log-retention-days N`: the running gateway purges old log rows in the background."""

from __future__ import annotations

import time

import pytest

from relaygate.observe.store.sqlite import SQLiteLogStore
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle
from tests.helpers.log_records import log_record
from tests.helpers.manifests import MOCK_ONLY

DAY = 86_400.0


def _ids(gateway: GatewayHandle) -> set[str]:
    return {row["request_id"] for row in gateway.logs(limit=1000)}


def _seed(gateway: GatewayHandle, ages_in_days: dict[str, float]) -> None:
    store = SQLiteLogStore(gateway.database_url)
    now = time.time()
    store.write_many(
        [log_record(n, request_id=name, time=now - age * DAY) for n, (name, age) in enumerate(ages_in_days.items())]
    )
    store.close()


def _wait_until_gone(gateway: GatewayHandle, ids: set[str], timeout: float = 15.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while (left := _ids(gateway)) & ids and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.parametrize("how", ["flag", "env"])
def test_rows_older_than_the_retention_are_purged_and_new_ones_kept(gateway_factory: GatewayFactory, how: str) -> None:
    gateway = gateway_factory(
        MOCK_ONLY, start=False, env={"RELAYGATE_LOG_RETENTION_DAYS": "7"} if how == "env" else None
    )
    if how == "flag":
        gateway.serve_args = ["--log-retention-days", "7"]
    _seed(gateway, {"a-year-old": 365, "eight-days-old": 8, "six-days-old": 6, "today": 0.01})
    gateway.start()
    left = _wait_until_gone(gateway, {"a-year-old", "eight-days-old"})
    assert left == {"six-days-old", "today"}
    token = gateway.create_token(user="alice@example.com")
    raw = gateway.client(token).chat.completions.with_raw_response.create(
        model="mock/echo", messages=[{"role": "user", "content": "kept"}]
    )
    request_id = raw.headers["x-request-id"]
    gateway.wait_for_log(request_id)
    assert "log retention: deleted 2 request-log rows older than 7 days" in gateway.output()


def test_the_purge_repeats_while_serving(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY, start=False)
    gateway.serve_args = ["--log-retention-days", "0.0005"]  # 43 s: a pass every ~2 s
    gateway.start()
    _seed(gateway, {"arrived-old": 1, "fresh": 0})  # written after start-up's first pass
    assert _wait_until_gone(gateway, {"arrived-old"}) == {"fresh"}


def test_without_retention_nothing_is_purged(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY, start=False)
    _seed(gateway, {"a-year-old": 365, "today": 0})
    gateway.start()
    time.sleep(1.5)
    assert _ids(gateway) == {"a-year-old", "today"}


def test_a_negative_retention_is_refused(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MOCK_ONLY, start=False)
    result = gateway.cli("serve", "--log-retention-days", "-3", check=False)
    assert result.returncode == 2
    assert "--log-retention-days" in result.stderr and ">= 0" in result.stderr
