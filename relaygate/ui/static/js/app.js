// The dashboard shell: login, hash routing (#/overview, #/logs, …), the navigation and the detail drawer.

import { h, replace, failure } from "./dom.js";
import { session, login, restore, logout, onUnauthorized, atLeast } from "./api.js";
import { closeDrawer, shell } from "./shell.js";
import overview from "./pages/overview.js";
import logs from "./pages/logs.js";
import usage from "./pages/usage.js";
import models from "./pages/models.js";
import tokens from "./pages/tokens.js";
import limits from "./pages/limits.js";
import config from "./pages/config.js";

const PAGES = {
  overview: { render: overview, title: "Overview" },
  logs: { render: logs, title: "Logs" },
  usage: { render: usage, title: "Usage" },
  models: { render: models, title: "Models and endpoints" },
  tokens: { render: tokens, title: "Tokens" },
  limits: { render: limits, title: "Limits and budgets", role: "viewer" },
  config: { render: config, title: "Config", role: "viewer" },
};

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

let cleanup = null; // the current page's teardown (closes live tails)

function renderWho() {
  if (!session.me) {
    replace(who);
    return;
  }
  const out = h("button", { type: "button", class: "link" }, "Log out");
  out.addEventListener("click", async () => {
    await logout();
    navigate("#/login");
  });
  replace(
    who,
    h("span", { class: "subject", title: session.me.token_id ? `token ${session.me.token_id}` : session.me.subject }, session.me.subject.replace(/^user:/, "")),
    h("span", { class: `role role-${session.me.role}` }, session.me.role),
    session.csrf ? null : h("a", { href: "#/login", class: "readonly", title: "Reads work with the session cookie; log in again to make changes" }, "read-only"),
    out,
  );
  for (const link of nav.querySelectorAll("a")) {
    const min = link.dataset.minRole;
    link.hidden = Boolean(min) && !atLeast(min);
  }
  nav.hidden = false;
}

function loginPage() {
  nav.hidden = true;
  const input = h("input", { type: "password", name: "token", autocomplete: "off", spellcheck: "false", placeholder: "rg-…", required: true });
  const status = h("div", { class: "login-status" });
  const form = h(
    "form",
    { class: "login card", id: "login-form" },
    h("h1", null, "Log in to Relaygate"),
    h("p", null, "Paste a Relaygate token. It is exchanged once for an HttpOnly session cookie (8 hours) and is not stored by this page."),
    shell.loginMessage ? h("p", { class: "state info" }, shell.loginMessage) : null,
    h("label", { class: "field" }, h("span", { class: "label" }, "Token"), input),
    h("button", { type: "submit", class: "primary" }, "Log in"),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    replace(status, h("p", { class: "state loading" }, "Logging in…"));
    try {
      await login(input.value.trim());
      input.value = "";
      shell.loginMessage = "";
      const target = sessionTarget || "#/overview";
      sessionTarget = null;
      navigate(target);
    } catch (error) {
      input.value = "";
      replace(status, failure(error));
    }
  });
  replace(view, form);
  input.focus();
}

let sessionTarget = null;

/** Go to a hash; route() runs once (from hashchange, or here when the hash is already that). */
function navigate(target) {
  if (location.hash === target) route();
  else location.hash = target;
}

async function route() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a page's teardown never blocks navigation */
    }
    cleanup = null;
  }
  closeDrawer();
  const hash = location.hash || "#/overview";
  const [name, query] = hash.slice(2).split("?");
  if (name === "login") {
    renderWho();
    loginPage();
    return;
  }
  if (!session.me) {
    try {
      await restore();
    } catch {
      sessionTarget = hash;
      location.hash = "#/login";
      return;
    }
  }
  renderWho();
  const page = PAGES[name] || PAGES.overview;
  for (const link of nav.querySelectorAll("a")) link.classList.toggle("active", link.dataset.page === (PAGES[name] ? name : "overview"));
  document.title = `${page.title} · Relaygate`;
  if (page.role && !atLeast(page.role)) {
    replace(view, h("h1", null, page.title), h("p", { class: "state error" }, `This page needs the ${page.role} role; you are ${session.me.role}.`));
    return;
  }
  const root = h("div", { class: "page", "data-page": name });
  replace(view, root);
  cleanup = page.render(root, new URLSearchParams(query || "")) || null;
}

onUnauthorized(() => {
  session.me = null;
  session.csrf = null;
  if (location.hash !== "#/login") {
    shell.loginMessage = "Your session ended; log in again.";
    sessionTarget = location.hash;
    location.hash = "#/login";
  }
});

window.addEventListener("hashchange", route);
route();
