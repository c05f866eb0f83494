"""The configs the benchmark generates: nginx.conf and Relaygate's manifests (chat + custom endpoint)."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

BENCH_USER = "bench@example.com"
UPSTREAM_KEY = "sk-bench-upstream-key"
PROXY_ACCOUNT = "bench-proxy"
PROXY_ENDPOINT = "mock"
PROXY_PREFIX = f"/proxy-api/{PROXY_ACCOUNT}/{PROXY_ENDPOINT}"  # + the upstream path, e.g. /echo-json
PROXY_UPSTREAM_AUTH = "Bearer upstream-secret"
PLAIN_MODEL = "bench-openai/gpt-4o"  # the real model the chat scenarios call
VM_ACCOUNT = "bench-vm"
VM_MODEL = f"{VM_ACCOUNT}/chat"  # a virtual model whose only target is PLAIN_MODEL (the vm_* scenarios)
# The rl_* scenarios: a second integration of the same account and upstream model, matched by one
# requests_per_minute rule (per user) whose limit is never reached, so every request pays the full
# reserve (and, in Redis, one script round trip) and none is refused.
LIMITED_MODEL = "bench-openai/gpt-4o-limited"
RL_RULE_ID = "bench-rpm"
RL_LIMIT = 1_000_000_000
RL_UNIT = "requests_per_minute"
REDIS_PREFIX = "relaygate:limits:"  # RedisBackend's default key prefix


def rl_redis_key(user: str = BENCH_USER) -> str:
    """The Redis key the rl_* rule counts in for `user` (rules.py: stem, then `<len>=<subject>` per dimension)."""
    subject = f"user:{user}"
    return f"{REDIS_PREFIX}rl:{RL_RULE_ID}:{RL_UNIT}:{len(subject)}={subject}"


def nginx_config(
    tmp: Path, listen_port: int, upstream_port: int, without: set[str] | frozenset[str] = frozenset()
) -> str:
    """nginx.conf: 1 worker, proxy_pass with upstream keepalive, no buffering (SSE relayed).

    `location /` serves the chat path as is; `location /proxy-api/bench-proxy/mock/` maps Relaygate's
    custom-endpoint URL shape onto the mock (`proxy_pass http://mock/` strips the prefix), injects the
    upstream credential like Relaygate does, and relays bodies unbuffered both ways in 64 KiB buffers.
    """
    temp_paths = "\n".join(
        f"    {mod}_temp_path {tmp}/nginx-{mod};" for mod in ("fastcgi", "uwsgi", "scgi") if mod not in without
    )
    user = ""
    if os.geteuid() == 0:  # a root master would drop workers to 'nobody'; stay the current user
        user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
    return f"""{user}
worker_processes 1;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
{temp_paths}
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream mock {{
        server 127.0.0.1:{upstream_port};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{listen_port} backlog=4096;
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering on;
            proxy_read_timeout 60s;
        }}
        location {PROXY_PREFIX}/ {{
            proxy_pass http://mock/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "{PROXY_UPSTREAM_AUTH}";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size 64k;
            proxy_buffers 4 64k;
            proxy_busy_buffers_size 128k;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def relaygate_yaml(mock_port: int) -> str:
    """The manifests the benchmark serves: an OpenAI account (chat; `gpt-4o` and `gpt-4o-limited`, the same
    upstream model), a custom-endpoint account (proxy), a virtual model (`bench-vm/chat`, weight-based, one
    target: `bench-openai/gpt-4o`) and a rate-limit rule matching only `bench-openai/gpt-4o-limited`."""
    return f"""type: provider-account/openai
name: bench-openai
base_url: http://127.0.0.1:{mock_port}/v1
auth_data: {{type: api-key, api_key: {UPSTREAM_KEY}}}
collaborators: [{{subject: "user:{BENCH_USER}", role_id: provider-account-access}}]
integrations:
  - name: gpt-4o
    type: integration/model/openai
    model_id: gpt-4o
    model_types: [chat]
  - name: gpt-4o-limited
    type: integration/model/openai
    model_id: gpt-4o
    model_types: [chat]
---
type: provider-account/custom-endpoint
name: {PROXY_ACCOUNT}
auth_data: {{type: header, headers: {{Authorization: "{PROXY_UPSTREAM_AUTH}"}}}}
collaborators: [{{subject: "user:{BENCH_USER}", role_id: provider-account-access}}]
integrations:
  - {{type: integration/model/custom-endpoint, name: {PROXY_ENDPOINT}, base_url: "http://127.0.0.1:{mock_port}"}}
---
type: provider-account/virtual-model
name: {VM_ACCOUNT}
collaborators: [{{subject: "user:{BENCH_USER}", role_id: provider-account-access}}]
integrations:
  - name: chat
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: weight-based-routing
      load_balance_targets:
        - {{target: {PLAIN_MODEL}, weight: 100}}
---
type: gateway-rate-limiting-config
name: bench-limits
rules:
  - id: {RL_RULE_ID}
    when: {{models: [{LIMITED_MODEL}]}}
    limit_to: {RL_LIMIT}
    unit: {RL_UNIT}
    rate_limit_applies_per: [user]
"""
