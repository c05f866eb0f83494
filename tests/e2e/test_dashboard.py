"""The dashboard at /ui driven in headless Chromium (Debian's `chromium`, Playwright's Python package).

One real `relaygate serve` process per module, its config held in the database with
RELAYGATE_ADMIN_CONFIG_WRITES=on (so "Add custom endpoint" can apply), the built-in mock model, an
admin, a viewer and a user. The flows: log in, see the overview chart with the requests sent here,
filter logs by a metadata key, open a detail (bodies for the admin), live tail, create and revoke a
token, add a custom endpoint through the form and call it through /proxy-api, and a scan proving no
secret (token, upstream key, masked config value, session cookie) reaches any browser-visible asset.

Screenshots of every page go to tests/artifacts/ (gitignored); with RELAYGATE_UPDATE_SCREENSHOTS=1
the main ones are also copied to docs/img/ for the README. No browser is ever downloaded: without
/usr/bin/chromium (or the playwright package) the module is skipped and says why.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from yaml import safe_load

from tests.helpers.gateway import REPO_ROOT, GatewayProcess, token_secret_of
from tests.upstreams.aiohttp_server import AiohttpServer

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium; .ci/run installs it); "
        "the dashboard tests never download a browser",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[test]')"
)

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
DOC_IMAGES = REPO_ROOT / "docs" / "img"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN = "alice@example.com"
VIEWER = "sam@example.com"
USER = "bob@example.com"
UPSTREAM_KEY = "upstream-key-value-7f3a9c1e5b"  # the custom endpoint's key: only in the gateway's environment
LITERAL_SECRET = "sk-literal-config-secret-4d8e2a"  # a literal secret in a manifest: GET /config masks it
BOOTSTRAP = "bootstrap-admin-secret-91c3e7a2"
SENT = {"checkout": 4, "search": 2}  # chat requests per metadata app, sent before the browser opens

CONFIG = f"""\
type: provider-account/mock
name: mock
integrations:
  - name: echo
    type: integration/model/mock
    model_id: echo-1
    model_types: [chat, completion, embedding]
    cost: {{input_per_million_tokens: 1000, output_per_million_tokens: 2000}}
---
type: provider-account/openai
name: openai-main
base_url: http://127.0.0.1:9/v1
auth_data: {{type: api-key, api_key: {LITERAL_SECRET}}}
integrations:
  - {{name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}}
---
type: team
name: sre
members: [{VIEWER}]
---
type: gateway-rate-limiting-config
name: limits
rules:
  - {{id: per-user-rpm, when: {{}}, limit_to: 1000, unit: requests_per_minute, rate_limit_applies_per: [user]}}
---
type: gateway-budget-config
name: budgets
rules:
  - {{id: daily-spend, when: {{}}, limit_to: 50, unit: cost_per_day}}
---
type: gateway-admin-config
name: gateway-admin  # the schema's default name, written out: `relaygate apply` skips a manifest without one
admins: [user:{ADMIN}]
viewers: [team:sre]
"""


class KeyedUpstream(AiohttpServer):
    """A tiny HTTP service behind the custom endpoint: answers 200 only with the right key."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append({"path": request.path, "authorization": request.headers.get("Authorization", "")})
        if request.headers.get("Authorization") != f"Bearer {UPSTREAM_KEY}":
            return web.json_response({"error": "wrong key"}, status=401)
        return web.json_response({"ok": True, "path": request.path})


class Dashboard:
    """What the tests share: the gateway, tokens, the upstream and every response a browser loaded."""

    def __init__(self, gateway: GatewayProcess, upstream: KeyedUpstream) -> None:
        self.gateway = gateway
        self.upstream = upstream
        self.admin = gateway.create_token(user=ADMIN)
        self.viewer = gateway.create_token(user=VIEWER)
        self.user = gateway.create_token(user=USER)
        self.responses: list[tuple[str, int, bytes]] = []  # (method url, status, body) of every response
        self.cookies: set[str] = set()
        self.created: set[str] = set()  # secrets the dashboard itself created (shown once, by design)
        self.pending: list[Any] = []  # Playwright responses of the open page, not read yet

    def drain(self) -> None:
        """Read the bodies of the open page's responses into `responses` (event streams never end: skipped)."""
        pending, self.pending = self.pending, []
        for response in pending:
            if "text/event-stream" in response.headers.get("content-type", ""):
                continue
            try:
                body = response.body()
            except Exception:  # noqa: BLE001 - a body the browser discarded (the page navigated away)
                continue
            self.responses.append((f"{response.request.method} {response.url}", response.status, body))

    @property
    def secrets(self) -> dict[str, str]:
        found = {
            "admin token": self.admin,
            "admin token secret": token_secret_of(self.admin),
            "viewer token": self.viewer,
            "user token": self.user,
            "upstream key": UPSTREAM_KEY,
            "literal config secret": LITERAL_SECRET,
            "bootstrap admin token": BOOTSTRAP,
        }
        for i, cookie in enumerate(sorted(self.cookies)):
            found[f"session cookie {i}"] = cookie
        return found

    def chat(self, app: str, content: str = "hello dashboard") -> None:
        body = {"model": "mock/echo", "messages": [{"role": "user", "content": content}]}
        headers = {"x-tfy-metadata": orjson.dumps({"app": app}).decode()}
        answer = self.gateway.request("POST", "/api/llm/chat/completions", token=self.user, json=body, headers=headers)
        assert answer.status == 200, answer.body


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    root = tmp_path_factory.mktemp("dashboard")
    with KeyedUpstream().running() as upstream:
        gateway = GatewayProcess(
            root / "gw",
            "",
            env={
                "RELAYGATE_ADMIN_CONFIG_WRITES": "on",
                "RELAYGATE_ADMIN_TOKEN": BOOTSTRAP,
                "DASHBOARD_UPSTREAM_KEY": UPSTREAM_KEY,
            },
        )
        gateway.use_config_file = False
        config = root / "config.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        gateway.cli("apply", "-f", str(config), "--database-url", gateway.database_url)
        gateway.start()
        try:
            shared = Dashboard(gateway, upstream)
            for app, count in SENT.items():
                for i in range(count):
                    shared.chat(app, f"hello {app} {i}")
            failing = gateway.request(
                "POST",
                "/api/llm/chat/completions",
                token=shared.user,
                json={"model": "mock/nope", "messages": [{"role": "user", "content": "x"}]},
            )
            assert failing.status >= 400
            assert len(gateway.wait_for_logs(sum(SENT.values()) + 1, timeout=10)) >= sum(SENT.values())
            yield shared
        finally:
            gateway.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, dashboard: Dashboard, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies) whose responses and console errors are recorded; the page as
    the test left it is in tests/artifacts/end-<test>.png (what a failure looked like)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=dashboard.gateway.url)
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    dashboard.pending = []
    errors: list[str] = []
    opened.on("response", lambda response: dashboard.pending.append(response))
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "CSP" in msg.text else None)
    opened.on("dialog", lambda dialog: dialog.accept(dialog.default_value))  # confirm: OK; prompt: its default
    yield opened
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / f"end-{request.node.name}.png"), full_page=True)
    for cookie in context.cookies():
        if cookie["name"] == "relaygate_session" and cookie["value"]:
            dashboard.cookies.add(cookie["value"])
    dashboard.drain()
    context.close()
    assert not errors, f"errors in the page: {errors}"


def login(page: Any, token: str) -> None:
    page.goto("/ui/")
    page.wait_for_url(re.compile(r"#/login"))
    page.fill("input[name=token]", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])")


def shot(page: Any, name: str, *, doc: bool = False) -> None:
    """tests/artifacts/NAME.png; also docs/img/NAME.png for the README when RELAYGATE_UPDATE_SCREENSHOTS=1."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if doc and os.environ.get("RELAYGATE_UPDATE_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_IMAGES / f"dashboard-{name}.png")


def settled(page: Any, selector: str = "[data-widget]") -> None:
    """Every widget on the page has finished loading (no aria-busy=true left)."""
    page.wait_for_selector(selector)
    page.wait_for_function("() => !document.querySelector('[aria-busy=true]')")


# -- the flows -------------------------------------------------------------------------------------


def test_login_then_overview_shows_the_requests_sent(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.wait_for_url(re.compile(r"#/overview"))
    settled(page)
    requests = page.locator("[data-widget=timeseries] [data-kpi=Requests] .kpi-value").inner_text()
    assert int(requests.replace(",", "")) >= sum(SENT.values()), requests
    assert page.locator("[data-widget=timeseries] svg.time-chart path.line").count() >= 4
    assert "mock/echo" in page.locator("[data-widget=top-model]").inner_text()
    assert "bob@example.com" in page.locator("[data-widget=top-user]").inner_text()
    assert page.locator("#who .role").text_content() == "admin"
    shot(page, "overview", doc=True)


def test_login_with_a_wrong_token_shows_the_api_error(page: Any, dashboard: Dashboard) -> None:
    page.goto("/ui/#/login")
    page.fill("input[name=token]", "rg-000000000000-not-a-real-secret")
    page.click("#login-form button[type=submit]")
    error = page.wait_for_selector(".login-status .state.error")
    assert "401" in error.inner_text()
    shot(page, "login")


def test_logs_filter_by_metadata_and_detail_with_bodies(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.goto("/ui/#/logs")
    page.wait_for_selector("table.logs tbody tr")
    page.fill("input[name=metadata]", "app=search")
    page.click("#log-filters button[type=submit]")
    page.wait_for_url(re.compile(r"metadata\.app=search"))
    page.wait_for_function(
        "n => document.querySelectorAll('table.logs tbody tr').length === n", arg=SENT["search"], timeout=10_000
    )
    chips = page.locator("table.logs tbody tr .chip").all_inner_texts()
    assert chips and all(chip == "app=search" for chip in chips), chips
    shot(page, "logs", doc=True)
    page.locator("table.logs tbody tr").first.click()
    drawer = page.wait_for_selector("#drawer:not([hidden]) .body-block")
    text = page.locator("#drawer").inner_text()
    assert "Request body" in text and "hello search" in text
    assert "app=search" in text
    shot(page, "log-detail", doc=True)
    assert drawer is not None


def test_viewer_detail_has_no_bodies(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.viewer)
    page.goto("/ui/#/logs?metadata.app=checkout")
    page.wait_for_selector("table.logs tbody tr")
    page.locator("table.logs tbody tr").first.click()
    page.wait_for_selector("#drawer:not([hidden]) dl.kv")
    text = page.locator("#drawer").inner_text()
    assert "hello checkout" not in text and "Request body" not in text


def test_live_tail_applies_the_filters(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.goto("/ui/#/logs?metadata.app=tail")
    page.wait_for_selector("[data-page=logs] .state.empty, table.logs")
    page.check("input[name=live]")
    page.wait_for_function("() => /live/.test(document.querySelector('.live-status').textContent)")
    dashboard.chat("other", "not for this tail")
    dashboard.chat("tail", "tail me")
    row = page.wait_for_selector("table.logs tbody tr.fresh", timeout=10_000)
    assert "app=tail" in row.inner_text()
    time.sleep(1.0)
    fresh = page.locator("table.logs tbody tr.fresh").all_inner_texts()
    assert fresh and all("app=tail" in text for text in fresh), fresh
    page.uncheck("input[name=live]")


def test_create_and_revoke_a_token(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.goto("/ui/#/tokens")
    page.wait_for_selector("table.tokens tbody tr")
    page.fill("#create-token input[name=who]", "carol@example.com")
    page.fill("#create-token input[name=name]", "carol-laptop")
    page.click("#create-token button[type=submit]")
    secret = page.wait_for_selector("#new-token-secret").inner_text().strip()
    dashboard.created.add(secret)
    assert secret.startswith("rg-")
    assert dashboard.gateway.request("GET", "/api/admin/v1/whoami", token=secret).status == 200
    row = page.locator("table.tokens tbody tr[data-token=carol-laptop]")
    row.wait_for()
    assert "carol" in row.inner_text()
    assert secret not in row.inner_text() and secret[3:15] not in row.inner_text()  # the id is a tooltip only
    shot(page, "tokens", doc=True)
    row.locator("button[data-action=revoke]").click()
    page.wait_for_selector(".notice-area .state.ok")
    page.wait_for_selector("table.tokens tbody tr[data-token=carol-laptop]", state="detached")
    deadline = time.monotonic() + 5
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = dashboard.gateway.request("GET", "/api/admin/v1/whoami", token=secret).status
        time.sleep(0.2)
    assert status == 401


def test_rotate_shows_the_new_secret_once_and_the_old_one_keeps_its_grace(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.goto("/ui/#/tokens")
    page.fill("#create-token input[name=who]", "erin@example.com")
    page.fill("#create-token input[name=name]", "erin-ci")
    page.click("#create-token button[type=submit]")
    old = page.wait_for_selector("#new-token-secret").inner_text().strip()
    dashboard.created.add(old)
    row = page.locator("table.tokens tbody tr[data-token=erin-ci]")
    row.wait_for()
    row.locator("button[data-action=rotate]").click()  # the grace prompt is accepted with its default (1 h)
    page.wait_for_function("old => document.querySelector('#new-token-secret')?.textContent.trim() !== old", arg=old)
    new = page.locator("#new-token-secret").inner_text().strip()
    dashboard.created.add(new)
    assert new.startswith("rg-") and new != old
    for token in (old, new):
        assert dashboard.gateway.request("GET", "/api/admin/v1/whoami", token=token).status == 200


def test_add_a_custom_endpoint_through_the_form_and_call_it(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.goto("/ui/#/config")
    settled(page)
    form = page.locator("#add-endpoint")
    form.locator("input[name=account]").fill("internal-apis")
    form.locator("input[name=endpoint]").fill("echo")
    form.locator("input[name=base_url]").fill(dashboard.upstream.url)
    form.locator("input[name=header]").fill("Authorization")
    form.locator("input[name=env]").fill("DASHBOARD_UPSTREAM_KEY")
    form.locator("textarea[name=collaborators]").fill(f"user:{USER}")
    form.locator("button[type=submit]").click()
    yaml = page.wait_for_selector("#endpoint-yaml").inner_text()
    assert "type: provider-account/custom-endpoint" in yaml and "${DASHBOARD_UPSTREAM_KEY}" in yaml
    assert UPSTREAM_KEY not in yaml
    assert safe_load(yaml) == {  # the YAML shown to copy is the manifest applied
        "type": "provider-account/custom-endpoint",
        "name": "internal-apis",
        "auth_data": {"type": "header", "headers": {"Authorization": "Bearer ${DASHBOARD_UPSTREAM_KEY}"}},
        "collaborators": [{"subject": f"user:{USER}", "role_id": "provider-account-access"}],
        "integrations": [
            {"name": "echo", "type": "integration/model/custom-endpoint", "base_url": dashboard.upstream.url}
        ],
    }
    page.click("#apply-endpoint")
    page.wait_for_selector("#endpoint-applied")
    shot(page, "config", doc=True)
    deadline = time.monotonic() + 8
    status = 0
    while time.monotonic() < deadline and status != 200:
        answer = dashboard.gateway.request("POST", "/proxy-api/internal-apis/echo/hello", token=dashboard.user, json={})
        status = answer.status
        time.sleep(0.2)
    assert status == 200, answer.body
    assert answer.json() == {"ok": True, "path": "/hello"}
    assert dashboard.upstream.seen[-1]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    # The endpoint is listed with its URL and a usage snippet filled in with this gateway's address.
    page.goto("/ui/#/models")
    settled(page)
    item = page.locator("[data-endpoint='internal-apis/echo']")
    item.locator("summary").click()
    item.locator("[data-tab='Python requests']").click()
    snippet = item.locator("[data-snippet=requests]").inner_text()
    assert f"{dashboard.gateway.url}/proxy-api/internal-apis/echo/" in snippet


def test_models_page_shows_health_and_three_snippets(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.goto("/ui/#/models")
    settled(page)
    model = page.locator("[data-model='mock/echo']")
    model.locator("summary").click()
    curl = model.locator("[data-snippet=curl]").inner_text()
    assert f"curl {dashboard.gateway.url}/api/llm/chat/completions" in curl
    model.locator("[data-tab='Python openai']").click()
    openai = model.locator("[data-snippet=openai]").inner_text()
    assert f'base_url="{dashboard.gateway.url}/api/llm"' in openai and 'model="mock/echo"' in openai
    assert model.locator(".badge.ok, .badge.warn").count() >= 1
    shot(page, "models", doc=True)


def test_usage_pivot_and_csv(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.goto("/ui/#/usage?range=24h&by=model&then=metadata&then_key=app")
    settled(page)
    pivot = page.locator("[data-widget=pivot] table.pivot").inner_text()
    assert "mock/echo" in pivot and "checkout" in pivot
    href = page.get_attribute("#usage-csv", "href")
    assert href is not None and href.startswith("/api/admin/v1/usage/export.csv?")
    csv = page.evaluate("async (url) => (await fetch(url)).text()", href)
    assert "mock/echo" in csv
    shot(page, "usage", doc=True)


def test_limits_page_lists_rules_and_buckets(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.goto("/ui/#/limits")
    settled(page)
    text = page.locator("[data-widget=limits]").inner_text()
    assert "per-user-rpm" in text and "daily-spend" in text
    shot(page, "limits")


def test_config_page_masks_secrets_and_shows_history(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.admin)
    page.goto("/ui/#/config")
    settled(page)
    manifest = page.locator("[data-manifest='provider-account/openai openai-main']")
    manifest.locator("summary").click()
    text = manifest.inner_text()
    assert "openai-main" in text and LITERAL_SECRET not in text
    assert page.locator("[data-widget=history] tbody tr").count() >= 1
    page.fill("#diff-form textarea", CONFIG.replace("limit_to: 50", "limit_to: 60"))
    page.click("#diff-form button[type=submit]")
    page.wait_for_selector("#diff-form pre.diff .line.add")
    shot(page, "config-diff")


def test_writes_after_a_reload_ask_for_the_token_again(page: Any, dashboard: Dashboard) -> None:
    """The CSRF token lives in memory only: a reload keeps the cookie for reads, and writes need a new login."""
    login(page, dashboard.admin)
    page.reload()
    page.goto("/ui/#/tokens")
    page.wait_for_selector("table.tokens tbody tr")
    assert page.locator("#who .readonly").count() == 1
    page.fill("#create-token input[name=who]", "dave@example.com")
    page.click("#create-token button[type=submit]")
    page.wait_for_url(re.compile(r"#/login"))
    assert "Log in again" in page.locator("#login-form").inner_text()
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    assert "relaygate_session" not in page.evaluate("() => document.cookie")


def test_a_user_sees_only_their_own_pages(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.user)
    assert page.locator("#nav a[data-page=config]").is_hidden()
    page.goto("/ui/#/logs")
    page.wait_for_selector("table.logs tbody tr, [data-page=logs] .state")
    subjects = page.locator("table.logs tbody tr td:nth-child(3)").all_inner_texts()
    assert all(s == USER for s in subjects), subjects


TRICKY = {
    "type": "provider-account/custom-endpoint",
    "name": "a-b",
    "empty": "",
    "colon": "a: b",
    "hash": "x #y",
    "bool_like": "yes",
    "number_like": "012",
    "ref": "${KEY}",
    "quote": 'it\'s "q"',
    "lines": "one\ntwo",
    "list": [1, 2.5, True, None, "- dash", {"k": "v", "n": {"m": []}}],
    "nested": {"a": {"b": {}}, "c": [[1, 2], []]},
}


def test_the_yaml_the_dashboard_shows_parses_back_to_the_same_data(page: Any, dashboard: Dashboard) -> None:
    login(page, dashboard.viewer)
    shown = page.evaluate("async (data) => (await import('/ui/js/dom.js')).toYaml(data)", TRICKY)
    assert safe_load(shown) == TRICKY, shown


# -- no secret in anything the browser can see -----------------------------------------------------

SECRET_SHAPES = (
    re.compile(rb"rg-[a-z0-9]{12}-[A-Za-z0-9_-]{16,}"),  # a whole Relaygate token
    re.compile(rb"sk-[A-Za-z0-9-]{16,}"),  # an upstream API key
)


def static_files() -> list[Path]:
    root = REPO_ROOT / "relaygate" / "ui" / "static"
    return [p for p in sorted(root.rglob("*")) if p.is_file()]


def test_no_secret_in_the_static_files() -> None:
    files = static_files()
    assert any(p.name == "index.html" for p in files)
    for path in files:
        content = path.read_bytes()
        for shape in SECRET_SHAPES:
            assert not shape.search(content), f"{path} holds something shaped like a secret"
        assert b"innerHTML" not in content and b"outerHTML" not in content, f"{path} builds HTML from strings"
        if path.suffix in (".html", ".js"):
            assert not re.search(rb"<script>(?!\s*</script>)|\son[a-z]+=\"", content), f"{path}: inline script"
            assert not re.search(rb"(localStorage|sessionStorage|document\.cookie)\s*[.\[=]", content), (
                f"{path} stores something in the browser"
            )


def test_no_secret_in_any_response_the_dashboard_loaded(page: Any, dashboard: Dashboard) -> None:
    """Visit every page here too (so this test stands alone), then scan every response of the module."""
    login(page, dashboard.admin)
    for name in ("overview", "logs", "usage", "models", "tokens", "limits", "config"):
        page.goto(f"/ui/#/{name}")
        settled(page, f"[data-page={name}]")
        if name == "config":
            for manifest in page.locator("details.manifest summary").all():
                manifest.click()
    page.goto("/ui/#/logs")
    page.wait_for_selector("table.logs tbody tr")
    page.locator("table.logs tbody tr").first.click()
    page.wait_for_selector("#drawer:not([hidden]) dl.kv")
    scan_now(page, dashboard)


def scan_now(page: Any, dashboard: Dashboard) -> None:
    """Check every response the module's pages loaded so far (this page's too) and this page's DOM."""
    dashboard.drain()
    for cookie in page.context.cookies():
        if cookie["name"] == "relaygate_session":
            dashboard.cookies.add(cookie["value"])
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert dashboard.cookies, "the login set no session cookie"
    secrets = dashboard.secrets
    dom = page.content()
    for label, secret in secrets.items():
        assert secret not in dom, f"the {label} is in the page"
    assert any("/api/admin/v1/" in where for where, _, _ in dashboard.responses)
    for where, _status, body in dashboard.responses:
        for label, secret in secrets.items():
            assert secret.encode() not in body, f"the {label} is in the answer to {where}"
        for created in dashboard.created:
            if created.encode() in body:
                assert where.startswith("POST ") and where.endswith(("/tokens", "/tokens/rotate")), (
                    f"a created token's secret is in {where}: it may only be in the answer that created it"
                )
