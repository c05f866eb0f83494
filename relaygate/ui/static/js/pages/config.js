// Config: the served manifests (secrets masked by the API), the revision history, a diff box, and the
// "Add custom endpoint" form, which builds one provider-account/custom-endpoint manifest, validates it
// with the gateway's own validator (POST /config/validate), shows the YAML, and applies it (POST
// /config/apply) when this gateway allows config writes; otherwise the YAML is there to copy.

import { h, replace, widget, empty, failure, loading, fmtTime, field, select, copyButton, toYaml } from "../dom.js";
import { api, session, atLeast } from "../api.js";
import { handleWriteError } from "../shell.js";

const ACCOUNT_NAME = /^[a-z0-9-]{3,32}$/;
const ENDPOINT_NAME = /^[A-Za-z_.-][A-Za-z0-9_.-]{1,61}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SUBJECT = /^(user|team|virtualaccount|virtual-account):.+$/;

function problemsList(problems) {
  if (!problems || !problems.length) return null;
  return h(
    "ul",
    { class: "problems", role: "alert" },
    problems.map((p) => h("li", null, p.path ? h("code", null, Array.isArray(p.path) ? p.path.join(".") : String(p.path)) : null, p.path ? ": " : "", p.message || String(p))),
  );
}

function diffView(text) {
  if (!text) return h("p", { class: "muted" }, "No differences.");
  return h(
    "pre",
    { class: "code diff" },
    text.split("\n").map((line) => {
      const s = line.trimStart(); // `relaygate diff` indents each manifest's unified diff
      const cls = s.startsWith("+++") || s.startsWith("---") ? "file" : s.startsWith("+") ? "add" : s.startsWith("-") ? "del" : s.startsWith("@@") ? "hunk" : s.startsWith("~") ? "change" : "";
      return h("span", { class: cls ? `line ${cls}` : "line" }, line + "\n");
    }),
  );
}

function served() {
  return widget(
    "Served config",
    () => api("GET", "/config"),
    (data) => {
      const manifests = data.manifests || [];
      return h(
        "div",
        null,
        h(
          "dl",
          { class: "kv inline-kv" },
          h("dt", null, "Source"),
          h("dd", null, data.source === "database" ? "database (relaygate apply)" : "files (--config)"),
          h("dt", null, "Revision"),
          h("dd", null, data.revision ?? "—"),
          h("dt", null, "Version"),
          h("dd", null, h("code", { title: data.version || "" }, (data.version || "").slice(0, 19))),
          h("dt", null, "Writes from the dashboard"),
          h("dd", null, data.writes_enabled ? h("span", { class: "badge ok" }, "enabled") : h("span", { class: "badge" }, "off")),
        ),
        manifests.length
          ? h(
              "div",
              { class: "manifests" },
              manifests.map((m) =>
                h(
                  "details",
                  { class: "manifest", "data-manifest": `${m.type} ${m.name || ""}` },
                  h("summary", null, h("code", null, m.type), " ", m.name || ""),
                  h("pre", { class: "code" }, toYaml(m)),
                ),
              ),
            )
          : empty("No manifests."),
      );
    },
    { name: "config", class: "wide" },
  );
}

function history() {
  return widget(
    "Revision history",
    () => api("GET", "/config/history"),
    (data) => {
      const rows = data.data || [];
      if (!rows.length) return empty("No applied revisions (a --config gateway has none: its files are the history).");
      return h(
        "table",
        { class: "grid compact" },
        h("thead", null, h("tr", null, ["Revision", "Applied", "By", "Summary"].map((x) => h("th", { scope: "col" }, x)))),
        h(
          "tbody",
          null,
          rows.map((r) => h("tr", null, h("td", { class: "num" }, r.revision), h("td", null, fmtTime(r.applied_at)), h("td", null, (r.applied_by || "—").replace(/^user:/, "")), h("td", null, r.summary || ""))),
        ),
      );
    },
    { name: "history" },
  );
}

function diffBox() {
  const area = h("textarea", { name: "yaml", rows: 10, spellcheck: "false", placeholder: "type: provider-account/mock\nname: second\n…" });
  const out = h("div", { class: "diff-out" });
  const form = h(
    "form",
    { class: "card", id: "diff-form" },
    h("header", null, h("h2", null, "Diff")),
    h("p", { class: "muted" }, "Paste manifests (YAML) to see what applying them would change. Secrets are compared, never shown."),
    area,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Show diff")),
    out,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    replace(out, loading("the diff"));
    try {
      const result = await api("POST", "/config/diff", { body: { yaml: area.value } });
      replace(out, result.valid === false ? h("p", { class: "state error" }, "Not valid:") : null, problemsList(result.problems), diffView(result.diff));
    } catch (error) {
      replace(out, failure(error));
    }
  });
  return form;
}

/** The manifest the form describes (exported for tests of the shape). */
export function customEndpointManifest(v) {
  const manifest = { type: "provider-account/custom-endpoint", name: v.account };
  if (v.header && v.env) {
    manifest.auth_data = { type: "header", headers: { [v.header]: `${v.prefix || ""}\${${v.env}}` } };
  }
  if (v.collaborators.length) {
    manifest.collaborators = v.collaborators.map((subject) => ({ subject, role_id: v.role || "provider-account-access" }));
  }
  manifest.integrations = [{ name: v.endpoint, type: "integration/model/custom-endpoint", base_url: v.base_url }];
  return manifest;
}

function addEndpoint() {
  const account = h("input", { name: "account", required: true, placeholder: "internal-apis"});
  const endpoint = h("input", { name: "endpoint", required: true, placeholder: "search" });
  const baseUrl = h("input", { name: "base_url", type: "url", required: true, placeholder: "https://search.internal.example.com/v1" });
  const header = h("input", { name: "header", value: "Authorization", placeholder: "Authorization, x-api-key, …" });
  const prefix = select("prefix", [["Bearer ", "Bearer <key>"], ["", "<key> as it is"]], "Bearer ");
  const env = h("input", { name: "env", placeholder: "SEARCH_API_KEY" });
  const collaborators = h("textarea", { name: "collaborators", rows: 3, placeholder: "team:search\nuser:alice@example.com" });
  const role = select("role", [["provider-account-access", "may call it"], ["provider-account-manager", "may call and manage it"]], "provider-account-access");
  const out = h("div", { class: "endpoint-out" });
  const writes = Boolean(session.me && session.me.config_writes) && atLeast("admin");

  function values() {
    return {
      account: account.value.trim(),
      endpoint: endpoint.value.trim(),
      base_url: baseUrl.value.trim(),
      header: header.value.trim(),
      prefix: prefix.value,
      env: env.value.trim(),
      collaborators: collaborators.value.split(/[\s,]+/).filter(Boolean),
      role: role.value,
    };
  }

  function localProblems(v) {
    const problems = [];
    if (!ACCOUNT_NAME.test(v.account)) problems.push({ path: "name", message: "3-32 lowercase letters, digits or hyphens" });
    if (!ENDPOINT_NAME.test(v.endpoint)) problems.push({ path: "integrations.0.name", message: "2-62 letters, digits, -, _ or ., not starting with a digit" });
    if (v.header && !HEADER_NAME.test(v.header)) problems.push({ path: "auth_data.headers", message: "not a valid header name" });
    if (v.env && !ENV_NAME.test(v.env)) problems.push({ path: "auth_data.headers", message: "the environment variable name is letters, digits and _ (the key's value stays on the gateway)" });
    if (v.header && !v.env) problems.push({ path: "auth_data", message: "name the environment variable that holds the upstream key, or clear the header name" });
    for (const s of v.collaborators) if (!SUBJECT.test(s)) problems.push({ path: "collaborators", message: `${s}: a subject is user:<email>, team:<name> or virtualaccount:<name>` });
    return problems;
  }

  async function validate() {
    const v = values();
    const local = localProblems(v);
    if (local.length) {
      replace(out, h("p", { class: "state error" }, "Fix these first:"), problemsList(local));
      return null;
    }
    const manifest = customEndpointManifest(v);
    replace(out, loading("the validation"));
    try {
      const result = await api("POST", "/config/validate", { body: { manifests: [manifest] } });
      // The form's own YAML: it holds no secret (the key is a ${NAME} reference), and unlike the
      // validator's masked echo it can be copied into a config file as it is.
      const yaml = toYaml(manifest) + "\n";
      const yamlBlock = h("div", { class: "snippet" }, h("div", { class: "snippet-tools" }, copyButton(yaml, "Copy YAML")), h("pre", { class: "code", id: "endpoint-yaml" }, yaml));
      if (!result.valid) {
        replace(out, h("p", { class: "state error" }, "The gateway's validator refused it:"), problemsList(result.problems), yamlBlock);
        return null;
      }
      const next = [];
      if (writes) {
        const apply = h("button", { type: "button", class: "primary", id: "apply-endpoint" }, "Apply to the gateway");
        const applied = h("div", { class: "apply-out" });
        apply.addEventListener("click", async () => {
          apply.disabled = true;
          replace(applied, loading("the apply"));
          try {
            const result2 = await api("POST", "/config/apply", { body: { manifests: [manifest] }, write: true });
            if (result2.valid === false) {
              replace(applied, h("p", { class: "state error" }, "Not applied:"), problemsList(result2.problems));
              apply.disabled = false;
              return;
            }
            const url = `${window.location.origin}/proxy-api/${v.account}/${v.endpoint}`;
            replace(
              applied,
              h("p", { class: "state ok", id: "endpoint-applied" }, `Applied${result2.revision ? ` as config revision ${result2.revision}` : ""}. Call it at `, h("code", null, url + "/…"), " (every replica picks the change up within seconds)."),
              result2.diff ? diffView(result2.diff) : null,
              h("a", { href: "#/models", class: "button" }, "See it with its usage snippet"),
            );
          } catch (error) {
            apply.disabled = false;
            if (!handleWriteError(error)) replace(applied, failure(error));
          }
        });
        next.push(apply, applied);
      } else {
        next.push(
          h(
            "p",
            { class: "state info", id: "endpoint-copy" },
            "Config writes from the dashboard are off on this gateway (they need --admin-config-writes and a database-held config). Copy the YAML into your config and run ",
            h("code", null, "relaygate apply -f endpoint.yaml"),
            " or reload the --config files.",
          ),
        );
      }
      replace(
        out,
        h("p", { class: "state ok" }, "Valid."),
        v.env ? h("p", { class: "muted" }, `Set ${v.env} in the gateway's environment; the key's value never goes through the dashboard.`) : null,
        yamlBlock,
        next,
      );
      return manifest;
    } catch (error) {
      replace(out, failure(error));
      return null;
    }
  }

  const form = h(
    "form",
    { class: "card", id: "add-endpoint" },
    h("header", null, h("h2", null, "Add custom endpoint")),
    h("p", { class: "muted" }, "A transparent proxy to an HTTP service at /proxy-api/<account>/<endpoint>/…; callers use their Relaygate token and the gateway adds the upstream's key."),
    h(
      "div",
      { class: "filter-grid" },
      field("Account", account, "3-32 lowercase letters, digits, -"),
      field("Endpoint name", endpoint, "URL segment after the account"),
      field("Upstream base URL", baseUrl, "no trailing slash"),
      field("Auth header name", header, "leave empty for none"),
      field("Header value", prefix),
      field("Key from environment variable", env, "written as ${NAME}: the value stays on the gateway"),
      field("Collaborators", collaborators, "subjects, one per line; empty: every user"),
      field("Collaborators may", role),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Validate"), writes ? null : h("span", { class: "muted" }, "This gateway does not accept config writes from the dashboard: you will get the YAML to apply.")),
    out,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    validate();
  });
  return form;
}

export default function config(root, params) {
  const add = addEndpoint();
  replace(root, h("div", { class: "page-head" }, h("h1", null, "Config")), served(), h("div", { class: "cards-2" }, history(), diffBox()), add);
  if (params.get("add") === "endpoint") add.scrollIntoView();
}
