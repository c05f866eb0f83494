// Tokens: the list (cursor pages), create (the secret is shown once, here, and never again), revoke and
// rotate. Names and owners are shown; ids only in tooltips.

import { h, replace, loading, empty, failure, fmtTime, table, tableRow, field, select, copyButton, subjectName } from "../dom.js";
import { api, qs, atLeast, session } from "../api.js";
import { handleWriteError } from "../shell.js";

function statusBadge(t) {
  const cls = t.status === "active" ? "ok" : t.status === "revoked" ? "bad" : "warn";
  return h("span", { class: `badge ${cls}` }, t.status || "—");
}

/** The one place a new secret is shown: a box the user dismisses. The page keeps no copy. */
function secretBox(title, secret) {
  const value = h("code", { class: "secret", id: "new-token-secret" }, secret);
  const box = h(
    "div",
    { class: "secret-box", role: "status" },
    h("strong", null, title),
    h("p", null, "Copy it now: it is shown once and cannot be retrieved later."),
    h("div", { class: "secret-row" }, value, copyButton(() => value.textContent)),
  );
  const done = h("button", { type: "button", class: "small" }, "Done");
  done.addEventListener("click", () => box.remove());
  box.appendChild(done);
  return box;
}

export default function tokens(root, params) {
  const admin = atLeast("admin");
  const notice = h("div", { class: "notice-area" });
  const listBox = h("div", { class: "table-box" }, loading("tokens"));
  const more = h("button", { type: "button", class: "load-more", hidden: true }, "Load more");
  let cursor = null;
  let grid = null;

  const filter = {
    owner: params.get("owner") || "",
    team: params.get("team") || "",
    virtual_account: params.get("virtual_account") || "",
    revoked: params.get("revoked") || "false",
  };

  async function act(button, run) {
    button.disabled = true;
    try {
      await run();
    } catch (error) {
      if (!handleWriteError(error)) replace(notice, failure(error));
    } finally {
      button.disabled = false;
    }
  }

  function actions(t) {
    if (t.status === "revoked") return h("span", { class: "muted" }, "—");
    const mine = session.me && t.subject === session.me.subject;
    if (!admin && !mine) return null;
    const revoke = h("button", { type: "button", class: "small danger", "data-action": "revoke" }, "Revoke");
    revoke.addEventListener("click", (e) => {
      e.stopPropagation();
      if (!window.confirm(`Revoke the token "${t.name || "(unnamed)"}" of ${t.owner_name || t.subject}? Callers using it are refused within seconds.`)) return;
      act(revoke, async () => {
        await api("POST", "/tokens/revoke", { body: { id: t.id }, write: true });
        replace(notice, h("p", { class: "state ok" }, `Revoked "${t.name || "(unnamed)"}".`));
        reload();
      });
    });
    const rotate = h("button", { type: "button", class: "small", "data-action": "rotate" }, "Rotate");
    rotate.addEventListener("click", (e) => {
      e.stopPropagation();
      const answer = window.prompt("Keep the old secret working for how many seconds (grace period)?", "3600");
      if (answer === null) return;
      const grace = Math.max(0, Number.parseInt(answer, 10) || 0);
      act(rotate, async () => {
        const result = await api("POST", "/tokens/rotate", { body: { id: t.id, grace_seconds: grace }, write: true });
        replace(notice, secretBox(`New secret for "${result.record.name || "(unnamed)"}" (the old one stops working ${fmtTime(result.previous && result.previous.expires_at)})`, result.token));
        reload();
      });
    });
    return h("span", { class: "row-actions" }, rotate, revoke);
  }

  const columns = [
    { label: "Name", cell: (t) => h("span", { title: t.id }, t.name || h("span", { class: "muted" }, "(unnamed)")) },
    { label: "Owner", cell: (t) => (t.owner_name ? h("span", { title: t.subject }, t.owner_name) : subjectName(t.subject)) },
    { label: "Kind", cell: (t) => t.kind },
    { label: "Teams", cell: (t) => (t.teams || []).join(", ") || h("span", { class: "muted" }, "—") },
    { label: "Created", cell: (t) => fmtTime(t.created_at) },
    { label: "Expires", cell: (t) => (t.expires_at ? fmtTime(t.expires_at) : h("span", { class: "muted" }, "never")) },
    { label: "Status", cell: statusBadge },
    { label: "", cell: actions },
  ];

  async function loadPage() {
    more.disabled = true;
    try {
      const query = { ...filter, revoked: filter.revoked === "any" ? "" : filter.revoked, cursor, limit: 50 };
      const answer = await api("GET", "/tokens", { query });
      const rows = answer.data || [];
      if (!cursor && !rows.length) replace(listBox, empty("No tokens match."));
      else {
        if (!grid) {
          grid = table(columns, [], { class: "tokens", rowAttrs: (t) => ({ "data-token": t.name || "" }) });
          replace(listBox, grid);
        }
        for (const row of rows) grid.tbody.appendChild(tableRow(columns, row, { rowAttrs: (t) => ({ "data-token": t.name || "", title: t.id }) }));
      }
      cursor = answer.next_cursor || null;
      more.hidden = !cursor;
    } catch (error) {
      replace(listBox, failure(error));
    } finally {
      more.disabled = false;
    }
  }

  function reload() {
    cursor = null;
    grid = null;
    replace(listBox, loading("tokens"));
    loadPage();
  }
  more.addEventListener("click", loadPage);

  // -- filters
  const owner = h("input", { name: "owner", value: filter.owner, placeholder: "email" });
  const team = h("input", { name: "team", value: filter.team });
  const revoked = select("revoked", [["false", "active and expired"], ["true", "revoked"], ["any", "all"]], filter.revoked);
  const filterForm = h(
    "form",
    { class: "filters inline-form" },
    field("Owner", owner),
    field("Team", team),
    field("Show", revoked),
    h("button", { type: "submit" }, "Filter"),
  );
  filterForm.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = "#/tokens" + qs({ owner: owner.value.trim(), team: team.value.trim(), revoked: revoked.value });
  });

  // -- create
  const kind = select("kind", admin ? [["user", "personal (user)"], ["virtual_account", "virtual account"]] : [["user", "personal (you)"]], "user");
  const who = h("input", { name: "who", placeholder: admin ? "alice@example.com or a virtual account name" : "", value: admin ? "" : (session.me.subject || "").replace(/^user:/, ""), readonly: !admin, required: true });
  const name = h("input", { name: "name", placeholder: "laptop, ci, …" });
  const expires = select("expires_in", [["", "never"], ["1d", "1 day"], ["7d", "7 days"], ["30d", "30 days"], ["90d", "90 days"], ["365d", "1 year"]], "");
  const createStatus = h("div");
  const create = h(
    "form",
    { class: "card create-token", id: "create-token" },
    h("h2", null, "Create a token"),
    h("div", { class: "filter-grid" }, field("Kind", kind), field("For", who), field("Name", name), field("Expires", expires)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create token")),
    createStatus,
  );
  create.addEventListener("submit", (e) => {
    e.preventDefault();
    const button = create.querySelector("button[type=submit]");
    act(button, async () => {
      const body = { name: name.value.trim() || undefined, expires_in: expires.value || undefined };
      body[kind.value] = who.value.trim();
      const result = await api("POST", "/tokens", { body, write: true });
      replace(notice, secretBox(`Token "${result.record.name || "(unnamed)"}" for ${result.record.owner_name || result.record.subject}`, result.token));
      name.value = "";
      reload();
    });
  });

  replace(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Tokens")),
    h("p", { class: "muted" }, "What a token may call is set in config manifests (teams, collaborators, virtual accounts); here you manage the secrets."),
    notice,
    admin || atLeast("user") ? create : null,
    h("section", { class: "card wide" }, filterForm, listBox, h("div", { class: "list-foot" }, more)),
  );
  loadPage();
}
