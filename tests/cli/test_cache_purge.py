"""`relaygate cache purge` through the real CLI (`python -m relaygate`) against a serving gateway:
straight to Redis when the served config's backend is redis (read from `--config` or from the config
stored in the database), through the gateway's admin API when the entries are in its memory, and
clear errors when neither way is open. Entries are made by real requests; a purge is judged by what
the next identical request gets and by the keys left in Redis (database 13: nobody else's)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from relaygate.cache.key import KEY_PREFIX
from tests.admin.admin_config import BOOTSTRAP, CONFIG, ENV, start
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle, free_port, render, run_cli, subprocess_env

REDIS_URL = "redis://127.0.0.1:6379/13"
CACHE = """---
type: gateway-cache-config
name: cache
backend: {backend}
rules:
  - {id: echo, when: {models: [mock/echo]}, ttl: 600}
"""


def _redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    return client


@dataclass
class Served:
    gateway: GatewayHandle
    token: str

    def status(self, text: str, namespace: str | None = None) -> str:
        header = {"type": "exact-match", **({"namespace": namespace} if namespace is not None else {})}
        answer = self.gateway.request(
            "POST",
            "/api/llm/chat/completions",
            token=self.token,
            json={"model": "mock/echo", "messages": [{"role": "user", "content": text}]},
            headers={"x-tfy-cache-config": json.dumps(header)},
        )
        assert answer.status == 200, answer.body
        return str(answer.headers["x-tfy-cache-status"])

    def cached(self, text: str, namespace: str | None = None) -> None:
        assert self.status(text, namespace) == "miss"
        deadline = time.monotonic() + 5
        while self.status(text, namespace) != "hit":
            assert time.monotonic() < deadline, "the entry was never stored"
            time.sleep(0.05)

    def purge(self, *args: str, **env: str) -> tuple[int, str, str]:
        """`python -m relaygate cache purge ARGS` with only the given RELAYGATE_* variables."""
        result = run_cli(
            "cache", "purge", "--database-url", self.gateway.database_url, *args, env=subprocess_env(**env)
        )
        return result.returncode, result.stdout, result.stderr


def _serve(gateway_factory: GatewayFactory, backend: str) -> Served:
    gateway = start(gateway_factory, CONFIG + render(CACHE, backend=backend), RELAYGATE_CACHE_REDIS_URL=REDIS_URL)
    return Served(gateway, gateway.create_token(user="bob@example.com"))


def _text() -> str:
    return f"purge me {secrets.token_hex(6)}"


def test_redis_backend_is_purged_straight_from_redis(gateway_factory: GatewayFactory) -> None:
    client = _redis()
    client.flushdb()
    served = _serve(gateway_factory, "redis")
    config = str(served.gateway.config_path)
    kept, dropped = _text(), _text()
    served.cached(dropped, "team-a")
    served.cached(kept, "team-b")
    code, out, err = served.purge("--config", config, "--namespace", "team-a", "--cache-redis-url", REDIS_URL)
    assert code == 0, err
    assert out.strip() == f"deleted 1 cache entry (namespace 'team-a') from Redis {REDIS_URL}"
    assert served.status(dropped, "team-a") == "miss" and served.status(kept, "team-b") == "hit"

    served.cached(dropped)  # the default namespace
    code, out, _ = served.purge("--config", config, "--namespace", "", RELAYGATE_REDIS_URL=REDIS_URL)
    assert code == 0 and out.startswith("deleted 1 cache entry (the default namespace)")
    assert served.status(dropped) == "miss"

    code, out, _ = served.purge("--config", config, RELAYGATE_CACHE_REDIS_URL=REDIS_URL)
    assert code == 0 and "(every entry)" in out
    assert int(out.split()[1]) >= 2  # team-b's entry, the one the miss above stored again, ...
    assert served.status(kept, "team-b") == "miss"
    time.sleep(0.3)
    assert [k for k in client.keys(KEY_PREFIX + "*") if b":req:" not in k] != []  # ...and that miss stored again


def test_redis_purge_by_request_id(gateway_factory: GatewayFactory) -> None:
    _redis()
    served = _serve(gateway_factory, "redis")
    text = _text()
    answer = served.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=served.token,
        json={"model": "mock/echo", "messages": [{"role": "user", "content": text}]},
        headers={"x-tfy-cache-config": '{"type": "exact-match"}'},
    )
    request_id = answer.headers["x-request-id"]
    time.sleep(0.3)
    args = ("--config", str(served.gateway.config_path), "--request-id", request_id, "--redis-url", REDIS_URL)
    code, out, err = served.purge(*args)
    assert code == 0, err
    assert out.strip() == f"deleted 1 cache entry (the entry of request {request_id}) from Redis {REDIS_URL}"
    assert served.purge(*args)[1].startswith("deleted 0 cache entries")
    assert served.status(text) == "miss"


def test_the_stored_config_decides_when_there_is_no_config_file(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    _redis()
    served = _serve(gateway_factory, "redis")
    database = f"sqlite:///{tmp_path / 'stored.db'}"
    manifest = tmp_path / "cache.yaml"
    manifest.write_text(render(CACHE, backend="redis").lstrip("-\n"), encoding="utf-8")
    applied = run_cli("apply", "-f", str(manifest), "--database-url", database)
    assert applied.returncode == 0, applied.stderr + applied.stdout
    text = _text()
    served.cached(text, "stored")
    result = run_cli(
        "cache",
        "purge",
        "--database-url",
        database,
        "--namespace",
        "stored",
        env=subprocess_env(RELAYGATE_REDIS_URL=REDIS_URL),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deleted 1 cache entry") and "from Redis" in result.stdout
    assert served.status(text, "stored") == "miss"


def test_memory_backend_is_purged_through_the_gateways_admin_api(gateway_factory: GatewayFactory) -> None:
    served = _serve(gateway_factory, "memory")
    config = str(served.gateway.config_path)
    text = _text()
    served.cached(text, "mem")
    served.cached(text)
    code, out, err = served.purge(
        "--config", config, "--namespace", "mem", "--gateway-url", served.gateway.url + "/",
        RELAYGATE_ADMIN_TOKEN=BOOTSTRAP,
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == f"deleted 1 cache entry (namespace 'mem') from the gateway at {served.gateway.url} (memory)"
    assert BOOTSTRAP not in out + err
    assert served.status(text, "mem") == "miss" and served.status(text) == "hit"
    code, out, _ = served.purge(
        "--config", config, RELAYGATE_GATEWAY_URL=served.gateway.url, RELAYGATE_ADMIN_TOKEN=BOOTSTRAP
    )
    assert code == 0 and out.startswith("deleted 2 cache entries (every entry)")
    assert served.status(text) == "miss"


def test_clear_errors_when_no_way_is_open(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    served = _serve(gateway_factory, "memory")
    config = str(served.gateway.config_path)
    code, _, err = served.purge("--config", config)
    assert code == 2 and "backend: memory" in err and "--gateway-url" in err and "RELAYGATE_ADMIN_TOKEN" in err
    code, _, err = served.purge("--config", config, "--gateway-url", served.gateway.url)
    assert code == 1 and "set RELAYGATE_ADMIN_TOKEN" in err
    wrong = "not-the-admin-token"
    code, _, err = served.purge("--config", config, "--gateway-url", served.gateway.url, RELAYGATE_ADMIN_TOKEN=wrong)
    assert code == 1 and "refused: HTTP 401" in err and wrong not in err
    user = served.token
    code, _, err = served.purge("--config", config, "--gateway-url", served.gateway.url, RELAYGATE_ADMIN_TOKEN=user)
    assert code == 1 and "HTTP 403" in err and "admin role" in err and user not in err
    closed = f"http://127.0.0.1:{free_port()}"
    code, _, err = served.purge("--config", config, "--gateway-url", closed, RELAYGATE_ADMIN_TOKEN=BOOTSTRAP)
    assert code == 1 and f"cannot reach the gateway at {closed}" in err

    redis_config = tmp_path / "redis.yaml"
    redis_config.write_text(render(CACHE, backend="redis").lstrip("-\n"), encoding="utf-8")
    code, _, err = served.purge("--config", str(redis_config))
    assert code == 2 and "backend: redis, but no Redis URL" in err and "--cache-redis-url" in err
    dead = f"redis://:hunter2-password@127.0.0.1:{free_port()}/0"
    code, _, err = served.purge("--config", str(redis_config), "--cache-redis-url", dead)
    assert code == 1 and "cannot purge Redis redis://:***@127.0.0.1" in err and "hunter2" not in err

    broken = tmp_path / "broken.yaml"
    broken.write_text("type: gateway-cache-config\nname: cache\nbackend: disk\n", encoding="utf-8")
    code, _, err = served.purge("--config", str(broken), "--gateway-url", served.gateway.url)
    assert code == 1 and "is invalid" in err and "backend" in err


def test_namespace_and_request_id_are_exclusive() -> None:
    result = run_cli("cache", "purge", "--namespace", "a", "--request-id", "b", env=subprocess_env(**ENV))
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
