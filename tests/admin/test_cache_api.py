"""DELETE /cache and POST /cache/explain through HTTP, on the memory store and on Redis.

Entries are made by real chat requests through the mock model (a miss, then a hit once the background
write landed); a delete is judged by what the next identical request gets (`x-tfy-cache-status`) and,
on Redis, by the keys left in the server. Explain is judged against what the real request logged
(`extra.cache.key_prefix`) and the entry it stored. Redis tests use their own databases (14, and 15
for the one that drops everything), so nothing here touches other tests' entries.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis

from relaygate.cache.key import KEY_PREFIX, namespace_prefix
from tests.admin.admin_config import ADMIN, BOOTSTRAP, CONFIG, USER, VIEWER, assert_no_secret, start
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle, GatewayProcess, free_port, render
from tests.helpers.redis_check import redis_answers

REDIS_DB = "redis://127.0.0.1:6379/14"
REDIS_DB_ALL = "redis://127.0.0.1:6379/15"  # only the drop-everything test writes here

CACHE = """---
type: gateway-cache-config
name: cache
backend: {backend}
rules:
  - id: echo
    when: {models: [mock/echo]}
    ttl: 600
  - id: priced-opt-in
    when: {models: [mock/priced]}
    mode: opt_in
    allow_client_controls: [ttl]
  - id: team-router
    when: {models: [router/chat]}
    scope: team
"""


@dataclass
class Served:
    gateway: GatewayHandle
    backend: str
    redis_url: str | None
    alice: str  # admin
    sam: str  # viewer
    bob: str  # user, team ml

    def chat(self, token: str, text: str, namespace: str | None = None, model: str = "mock/echo") -> tuple[str, str]:
        """One chat request with the cache header: (x-tfy-cache-status, x-request-id)."""
        config: dict[str, Any] = {"type": "exact-match"}
        if namespace is not None:
            config["namespace"] = namespace
        answer = self.gateway.request(
            "POST",
            "/api/llm/chat/completions",
            token=token,
            json={"model": model, "messages": [{"role": "user", "content": text}]},
            headers={"x-tfy-cache-config": json.dumps(config)},
        )
        assert answer.status == 200, answer.body
        return str(answer.headers["x-tfy-cache-status"]), str(answer.headers["x-request-id"])

    def cached(self, token: str, text: str, namespace: str | None = None) -> str:
        """Make an entry (a miss, then wait for the hit: writes land after the answer); its request id."""
        status, request_id = self.chat(token, text, namespace)
        assert status == "miss"
        deadline = time.monotonic() + 5
        while self.chat(token, text, namespace)[0] != "hit":
            assert time.monotonic() < deadline, "the entry was never stored"
            time.sleep(0.05)
        return request_id

    def delete(self, token: str, **params: str) -> Any:
        query = urlencode(params)
        return self.gateway.request("DELETE", "/api/admin/v1/cache" + (f"?{query}" if query else ""), token=token)

    def explain(self, token: str, **body: Any) -> Any:
        body.setdefault("operation", "chat")
        body.setdefault("model", "mock/echo")
        return self.gateway.request("POST", "/api/admin/v1/cache/explain", token=token, json=body)


def _serve(gateway_factory: GatewayFactory, backend: str, redis_url: str | None) -> Served:
    env = {"RELAYGATE_CACHE_REDIS_URL": redis_url} if redis_url else {}
    gateway = start(gateway_factory, CONFIG + render(CACHE, backend=backend), **env)
    return Served(
        gateway,
        backend,
        redis_url,
        gateway.create_token(user=ADMIN),
        gateway.create_token(user=VIEWER),
        gateway.create_token(user=USER),
    )


@pytest.fixture(params=["memory", "redis"])
def served(request: pytest.FixtureRequest, gateway_factory: GatewayFactory) -> Served:
    if request.param == "redis" and not redis_answers(REDIS_DB):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    return _serve(gateway_factory, request.param, REDIS_DB if request.param == "redis" else None)


def _question() -> str:
    return f"cache admin question {secrets.token_hex(6)}"


def test_delete_by_namespace_drops_that_namespace_only(served: Served) -> None:
    ns, other = f"ns-{secrets.token_hex(4)}", f"ns-{secrets.token_hex(4)}"
    text = _question()
    served.cached(served.bob, text, ns)
    served.cached(served.bob, text, other)
    served.cached(served.bob, text)  # the default namespace
    answer = served.delete(served.alice, namespace=ns)
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "deleted": 1,
        "backend": served.backend,
        "scope": "shared" if served.backend == "redis" else "process",
        "note": None,
    }
    assert served.chat(served.bob, text, ns)[0] == "miss"
    assert served.chat(served.bob, text, other)[0] == "hit"
    assert served.chat(served.bob, text)[0] == "hit"
    if served.redis_url:
        client = redis.Redis.from_url(served.redis_url)
        assert client.keys(namespace_prefix(other) + "*")  # still there
    assert served.delete(served.alice, namespace="").json()["deleted"] >= 1  # present but empty: the default one
    assert served.chat(served.bob, text)[0] == "miss"
    assert served.chat(served.bob, text, other)[0] == "hit"


def test_delete_by_request_id_drops_the_entry_that_request_produced(served: Served) -> None:
    text = _question()
    request_id = served.cached(served.bob, text)
    kept = served.cached(served.bob, _question())
    assert served.delete(served.alice, request_id=request_id).json()["deleted"] == 1
    assert served.delete(served.alice, request_id=request_id).json()["deleted"] == 0  # already gone
    assert served.chat(served.bob, text)[0] == "miss"
    assert served.delete(served.alice, request_id="no-such-request").json()["deleted"] == 0
    assert served.delete(served.alice, request_id=kept).json()["deleted"] == 1


def test_bad_delete_parameters_are_400(served: Served) -> None:
    both = served.delete(served.alice, namespace="a", request_id="b")
    assert both.status == 400 and both.json()["error"]["param"] == "request_id"
    assert served.delete(served.alice, namespace="x" * 129).status == 400
    assert served.delete(served.alice, request_id="").status == 400


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_delete_without_parameters_drops_every_entry(gateway_factory: GatewayFactory, backend: str) -> None:
    if backend == "redis":
        if not redis_answers(REDIS_DB):
            pytest.skip("Redis is not reachable on 127.0.0.1:6379")
        redis.Redis.from_url(REDIS_DB_ALL).flushdb()
    served = _serve(gateway_factory, backend, REDIS_DB_ALL if backend == "redis" else None)
    texts = [_question() for _ in range(3)]
    for text in texts:
        served.cached(served.bob, text)
    served.cached(served.alice, texts[0], "elsewhere")
    answer = served.delete(served.alice)
    assert answer.status == 200
    assert answer.json()["deleted"] == 4  # entries, not the request-index keys beside them
    for text in texts:
        assert served.chat(served.bob, text)[0] == "miss"
    if backend == "redis":
        time.sleep(0.3)  # the misses' background writes
        keys = redis.Redis.from_url(REDIS_DB_ALL).keys(KEY_PREFIX + "*")
        assert len([k for k in keys if b":req:" not in k]) == 3  # only what the misses stored again


def test_only_admins_delete_and_a_cookie_write_needs_the_csrf_header(served: Served) -> None:
    for token in (served.sam, served.bob):
        answer = served.delete(token)
        assert answer.status == 403 and answer.json()["error"]["code"] == "admin_forbidden"
    assert served.delete(BOOTSTRAP).status == 200
    login = served.gateway.request("POST", "/api/admin/v1/session", json={"token": served.alice})
    cookie = login.headers["set-cookie"].split(";")[0]
    refused = served.gateway.request("DELETE", "/api/admin/v1/cache", headers={"Cookie": cookie})
    assert refused.status == 403 and refused.json()["error"]["code"] == "csrf_failed"
    allowed = served.gateway.request(
        "DELETE",
        "/api/admin/v1/cache",
        headers={"Cookie": cookie, "x-relaygate-csrf": login.json()["csrf_token"]},
    )
    assert allowed.status == 200, allowed.body


def test_explain_names_the_key_the_real_request_logged_and_its_entry(served: Served) -> None:
    text, ns = _question(), f"ns-{secrets.token_hex(4)}"
    request_id = served.cached(served.alice, text, ns)
    logged = served.gateway.wait_for_log(request_id)["extra"]["cache"]
    messages = [{"role": "user", "content": text}]
    answer = served.explain(
        served.alice,
        body={"model": "mock/echo", "messages": messages, "stream": True},  # stream is not part of the key
        headers={"x-tfy-cache-config": json.dumps({"type": "exact-match", "namespace": ns})},
    )
    assert answer.status == 200, answer.body
    assert_no_secret(answer)
    facts = answer.json()
    assert facts["eligible"] is True and facts["rule"] == "echo" == logged["rule"]
    assert facts["key_prefix"] == logged["key_prefix"] and facts["digest"].startswith(logged["key_prefix"])
    assert facts["scope"] == "user:alice@example.com" and facts["namespace"] == ns and facts["ttl"] == 600
    assert facts["storage_key"] == namespace_prefix(ns) + facts["digest"]
    assert facts["key_object"]["body"] == {"model": "mock/echo", "messages": messages}
    assert facts["exists"] is True and facts["entry"]["request_id"] == request_id
    assert facts["backend"] == served.backend

    for_bob = served.explain(
        served.alice,
        subject="user:bob@example.com",
        body={"model": "mock/echo", "messages": messages},
        headers={"x-tfy-cache-config": json.dumps({"type": "exact-match", "namespace": ns})},
    ).json()
    assert for_bob["scope"] == "user:bob@example.com" and for_bob["digest"] != facts["digest"]
    assert for_bob["exists"] is False  # bob never asked

    served.delete(served.alice, request_id=request_id)
    gone = served.explain(
        served.alice,
        body={"model": "mock/echo", "messages": messages},
        headers={"x-tfy-cache-config": json.dumps({"type": "exact-match", "namespace": ns})},
    ).json()
    assert gone["digest"] == facts["digest"] and gone["exists"] is False


def test_explain_rules_scopes_and_refusals(served: Served) -> None:
    body = {"model": "mock/priced", "messages": [{"role": "user", "content": "x"}]}
    opt_in = served.explain(served.alice, model="mock/priced", body=body).json()
    assert opt_in["eligible"] is False and opt_in["rule"] == "priced-opt-in" and "opt_in" in opt_in["reason"]
    assert opt_in["digest"] is None and opt_in["exists"] is False
    asked = served.explain(
        served.alice, model="mock/priced", body=body, headers={"X-TFY-Cache-Config": '{"type": "exact-match"}'}
    ).json()
    assert asked["eligible"] is True and asked["rule"] == "priced-opt-in"
    refused = served.explain(
        served.alice, model="mock/priced", body=body, headers={"x-tfy-cache-config": '{"namespace": "n"}'}
    )
    assert refused.status == 400 and "not allowed by cache rule 'priced-opt-in'" in refused.json()["error"]["message"]

    team = served.explain(served.alice, model="router/chat", subject="user:bob@example.com", body=body).json()
    assert team["rule"] == "team-router" and team["scope"] == "team:ml"
    images = served.explain(served.alice, operation="images_generations", body={"prompt": "a cat"}).json()
    assert images["eligible"] is False and images["reason"] == "endpoint is not cached"
    nothing = served.explain(served.alice, model="closed/gpt", body=body).json()
    assert nothing["eligible"] is False and nothing["rule"] is None

    assert served.explain(served.alice, operation="teleport", body=body).status == 400
    assert served.explain(served.alice, subject="team:ml", body=body).status == 400
    assert served.explain(served.alice, body=body, headers={"x-tfy-cache-config": "[1]"}).status == 400
    assert served.explain(BOOTSTRAP, body=body).status == 400  # no subject of its own
    assert served.explain(BOOTSTRAP, body=body, subject="user:bob@example.com").status == 200


def test_viewers_explain_but_see_existence_only_for_themselves(served: Served) -> None:
    text = _question()
    served.cached(served.alice, text)
    body = {"model": "mock/echo", "messages": [{"role": "user", "content": text}]}
    headers = {"x-tfy-cache-config": '{"type": "exact-match"}'}
    other = served.explain(served.sam, subject="user:alice@example.com", body=body, headers=headers).json()
    assert other["eligible"] is True and other["exists"] is None and other["entry"] is None
    own = served.explain(served.sam, body=body, headers=headers).json()
    assert own["scope"] == "user:sam@example.com" and own["exists"] is False
    assert served.explain(served.bob, body=body).status == 403


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[GatewayProcess]:
    config = CONFIG.replace("{closed_port}", str(free_port())) + render(CACHE, backend="memory")
    gateway = GatewayProcess(tmp_path, config, env={"RELAYGATE_ADMIN_TOKEN": BOOTSTRAP})
    gateway.serve_args = ["--workers", "2"]
    gateway.extra_env.update({"ADMIN_TEST_UPSTREAM_KEY": "k", "ADMIN_TEST_ENDPOINT_SECRET": "s"})
    gateway.start(timeout=30)
    try:
        yield gateway
    finally:
        gateway.stop()


def test_with_memory_and_several_workers_the_answer_says_it_reached_one_worker(two_workers: GatewayProcess) -> None:
    answer = two_workers.request("DELETE", "/api/admin/v1/cache", token=BOOTSTRAP)
    assert answer.status == 200, answer.body
    facts = answer.json()
    assert facts["backend"] == "memory" and facts["scope"] == "worker"
    assert "one cache per worker" in facts["note"]


def test_cache_operations_are_in_the_openapi_document(served: Served) -> None:
    paths = served.gateway.request("GET", "/api/admin/v1/openapi.json").json()["paths"]
    delete = paths["/api/admin/v1/cache"]["delete"]
    assert {p["name"] for p in delete["parameters"]} == {"namespace", "request_id"}
    assert delete["responses"]["200"]["content"]["application/json"]["schema"]["required"][0] == "deleted"
    explain = paths["/api/admin/v1/cache/explain"]["post"]
    assert explain["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "operation",
        "model",
        "body",
    ]
