// Limits and budgets: every rate-limit and budget rule with its current consumption per bucket (one request).

import { h, replace, widget, empty, fmtTime, fmtNum, fmtUsd, fmtDuration } from "../dom.js";
import { api, now } from "../api.js";

function whenText(when) {
  const entries = Object.entries(when || {});
  if (!entries.length) return h("span", { class: "muted" }, "every request");
  return h(
    "span",
    { class: "chips" },
    entries.map(([k, v]) => h("span", { class: "chip" }, `${k}: ${Array.isArray(v) ? v.join(", ") : typeof v === "object" && v ? Object.entries(v).map(([a, b]) => `${a}=${b}`).join(", ") : v}`)),
  );
}

function amount(rule, value) {
  if (value === null || value === undefined) return "—";
  return rule.kind === "budget" ? fmtUsd(value) : fmtNum(value);
}

function rule(r) {
  const buckets = r.buckets || [];
  return h(
    "article",
    { class: "item", "data-rule": r.id },
    h(
      "header",
      null,
      h("h3", null, r.id),
      h("span", { class: `badge ${r.kind === "budget" ? "budget" : ""}` }, r.kind === "budget" ? "budget" : "rate limit"),
      h("span", null, `${amount(r, r.limit)} ${r.measure && r.measure !== "cost" ? r.measure + " " : ""}per ${r.window || r.unit}`),
      r.kind === "budget" ? null : h("span", { class: "muted small" }, r.sliding === false ? "fixed window" : "sliding window"),
      r.applies_per && r.applies_per.length ? h("span", { class: "muted small" }, `per ${r.applies_per.join(" and ")}`) : h("span", { class: "muted small" }, "one shared bucket"),
      r.spent !== null && r.spent !== undefined ? h("span", { class: "badge budget" }, `spent ${fmtUsd(r.spent)}`) : null,
      r.config ? h("span", { class: "muted small" }, `from ${r.config}`) : null,
      r.audit_mode ? h("span", { class: "badge warn" }, "audit only") : null,
    ),
    h("p", null, "Applies to: ", whenText(r.when)),
    buckets.length
      ? h(
          "table",
          { class: "grid compact" },
          h("thead", null, h("tr", null, ["Bucket", "Used", "Remaining", "", "Resets"].map((x, i) => h("th", { scope: "col", class: i === 1 || i === 2 ? "num" : null }, x)))),
          h(
            "tbody",
            null,
            buckets.map((b) => {
              const limit = r.limit || (b.used || 0) + (b.remaining || 0);
              return h(
                "tr",
                null,
                h("td", { title: b.parts ? Object.entries(b.parts).map(([k, v]) => `${k}=${v ?? "(none)"}`).join(", ") : null }, b.key || h("span", { class: "muted" }, "(shared)")),
                h("td", { class: "num" }, amount(r, b.used)),
                h("td", { class: "num" }, amount(r, b.remaining)),
                h("td", null, h("meter", { min: 0, max: limit || 1, value: Math.min(b.used || 0, limit || 1), low: (limit || 1) * 0.7, high: (limit || 1) * 0.9, optimum: 0 })),
                h("td", { title: fmtTime(b.resets_at) }, b.resets_at ? `in ${fmtDuration(b.resets_at - now())}` : "—"),
              );
            }),
          ),
        )
      : h("p", { class: "muted" }, "No consumption recorded in the current window."),
  );
}

export default function limits(root) {
  replace(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Limits and budgets")),
    widget(
      "Rules",
      () => api("GET", "/limits"),
      (data) => {
        const rules = data.data || [];
        const backend = data.backend_error
          ? h("p", { class: "state error" }, `Consumption could not be read from the ${data.backend || "limits"} backend: ${data.backend_error}`)
          : data.backend
            ? h("p", { class: "muted small" }, `counters: ${data.backend}`)
            : null;
        if (!rules.length) return empty("No rate limits or budgets are configured (gateway-rate-limiting-config, gateway-budget-config).");
        const budgets = rules.filter((r) => r.kind === "budget");
        const rates = rules.filter((r) => r.kind !== "budget");
        return h(
          "div",
          null,
          backend,
          rates.length ? [h("h3", null, "Rate limits"), h("div", { class: "items" }, rates.map(rule))] : null,
          budgets.length ? [h("h3", null, "Budgets"), h("div", { class: "items" }, budgets.map(rule))] : null,
        );
      },
      { name: "limits", class: "wide" },
    ),
  );
}
