"""`relaygate serve --workers N`: every scrape is the sum over the workers, whichever worker answers it."""

from __future__ import annotations

import glob
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import GatewayFactory
from tests.helpers import manifests
from tests.helpers.gateway import GatewayHandle
from tests.helpers.prometheus import scrape

HELLO = [{"role": "user", "content": "count me"}]


def _workers_gateway(gateway_factory: GatewayFactory, workers: int, metrics_dir: str) -> GatewayHandle:
    gateway = gateway_factory(manifests.MOCK_ONLY, start=False, env={"RELAYGATE_METRICS_DIR": metrics_dir})
    gateway.serve_args += ["--workers", str(workers)]
    return gateway.start()


def test_every_scrape_sums_all_four_workers(gateway_factory: GatewayFactory, tmp_path: object) -> None:
    metrics_dir = tempfile.mkdtemp(prefix="metrics-parent-")
    gateway = _workers_gateway(gateway_factory, 4, metrics_dir)
    token = gateway.create_token(user=manifests.ALICE)
    body = {"model": "mock/echo", "messages": HELLO}

    def send(_: int) -> int:
        return gateway.request("POST", "/api/llm/chat/completions", token=token, json=body).status

    with ThreadPoolExecutor(8) as pool:  # 8 connections at once: the kernel spreads them over the workers
        statuses = list(pool.map(send, range(400)))
    assert statuses == [200] * 400
    for _ in range(10):
        metrics = scrape(gateway.url)
        assert metrics.total("relaygate_requests_total") == 400
        assert metrics.total("relaygate_requests_total", status_class="2xx") == 400
        assert metrics.total("gen_ai_client_operation_duration_seconds_count") == 400
    # One directory for this gateway under RELAYGATE_METRICS_DIR, removed when it stops.
    instance_dirs = glob.glob(os.path.join(metrics_dir, "relaygate-metrics-*"))
    assert len(instance_dirs) == 1
    gateway.stop()
    assert not os.path.exists(instance_dirs[0])


def test_two_gateways_on_one_host_never_share_counters(gateway_factory: GatewayFactory) -> None:
    metrics_dir = tempfile.mkdtemp(prefix="metrics-parent-")
    first = _workers_gateway(gateway_factory, 2, metrics_dir)
    second = _workers_gateway(gateway_factory, 2, metrics_dir)
    token = first.create_token(user=manifests.ALICE)
    for _ in range(6):
        assert (
            first.request(
                "POST", "/api/llm/chat/completions", token=token, json={"model": "mock/echo", "messages": HELLO}
            ).status
            == 200
        )
    assert len(glob.glob(os.path.join(metrics_dir, "relaygate-metrics-*"))) == 2
    assert scrape(first.url).total("relaygate_requests_total") == 6
    assert scrape(second.url).total("relaygate_requests_total") == 0
