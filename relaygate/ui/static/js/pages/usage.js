// Usage: a group-by pivot from one distribution query (one or two dimensions), and the same query as CSV.

import { h, replace, widget, empty, fmtNum, fmtUsd, fmtMs, field, select } from "../dom.js";
import { usageQuery, range, RANGES, BASE, qs, atLeast } from "../api.js";

const DIMENSIONS = [
  ["model", "Model"],
  ["provider", "Provider"],
  ["user", "User"],
  ["team", "Team"],
  ["virtual_account", "Virtual account"],
  ["token", "Token"],
  ["endpoint", "Endpoint"],
  ["status_class", "Status class"],
  ["error_type", "Error type"],
  ["metadata", "Metadata key…"],
];

const AGGREGATIONS = [
  ["requests", "Requests", fmtNum],
  ["errors", "Errors", fmtNum],
  ["input_tokens", "Input tokens", fmtNum],
  ["output_tokens", "Output tokens", fmtNum],
  ["cost_usd", "Cost", fmtUsd],
  ["latency_p50", "Latency p50", fmtMs],
  ["latency_p90", "Latency p90", fmtMs],
  ["latency_p99", "Latency p99", fmtMs],
  ["ttft_p50", "TTFT p50", fmtMs],
  ["ttft_p99", "TTFT p99", fmtMs],
];
const FORMAT = Object.fromEntries(AGGREGATIONS.map(([k, , f]) => [k, f]));
const DEFAULT_AGGREGATIONS = ["requests", "errors", "input_tokens", "output_tokens", "cost_usd", "latency_p50", "latency_p99"];

function readState(params) {
  const aggregations = (params.get("aggregations") || DEFAULT_AGGREGATIONS.join(",")).split(",").filter((a) => FORMAT[a]);
  return {
    range: params.get("range") || "24h",
    by: params.get("by") || "model",
    by_key: params.get("by_key") || "",
    then: params.get("then") || "",
    then_key: params.get("then_key") || "",
    aggregations: aggregations.length ? aggregations : ["requests"],
    limit: Number(params.get("limit")) || 20,
  };
}

function dimension(kind, key) {
  if (!kind) return null;
  if (kind === "metadata") return key ? `metadata.${key}` : null;
  return kind;
}

function label(value) {
  if (value === null || value === undefined || value === "") return h("span", { class: "muted" }, "(none)");
  const text = String(value);
  const short = text.replace(/^(user|team|virtualaccount):/, "");
  return h("span", { title: text }, short);
}

function pivot1(data, dim, aggregations) {
  const header = h("tr", null, h("th", { scope: "col" }, dim), aggregations.map((a) => h("th", { class: "num", scope: "col" }, a)));
  const rows = (data.points || []).map((p) => h("tr", null, h("th", { scope: "row" }, label(p.group ? p.group[dim] : null)), aggregations.map((a) => h("td", { class: "num" }, FORMAT[a](p[a])))));
  if (data.other) rows.push(h("tr", { class: "other" }, h("th", { scope: "row", title: "every group beyond the limit, summed" }, "other"), aggregations.map((a) => h("td", { class: "num" }, FORMAT[a](data.other[a])))));
  return h("table", { class: "grid pivot" }, h("thead", null, header), h("tbody", null, rows));
}

function pivot2(data, dim, then, metric) {
  const points = data.points || [];
  const cols = [...new Set(points.map((p) => String(p.group ? p.group[then] ?? "" : "")))];
  const rowKeys = [...new Set(points.map((p) => String(p.group ? p.group[dim] ?? "" : "")))];
  const cell = new Map(points.map((p) => [`${p.group[dim] ?? ""}\u0000${p.group[then] ?? ""}`, p[metric]]));
  const header = h("tr", null, h("th", { scope: "col" }, `${dim} \\ ${then}`), cols.map((c) => h("th", { class: "num", scope: "col" }, label(c))));
  const rows = rowKeys.map((r) =>
    h(
      "tr",
      null,
      h("th", { scope: "row" }, label(r)),
      cols.map((c) => {
        const v = cell.get(`${r}\u0000${c}`);
        return h("td", { class: "num" }, v === undefined ? "" : FORMAT[metric](v));
      }),
    ),
  );
  const out = [h("table", { class: "grid pivot" }, h("thead", null, header), h("tbody", null, rows))];
  if (data.other) out.push(h("p", { class: "muted" }, `other (groups beyond the limit): ${FORMAT[metric](data.other[metric])}`));
  return h("div", null, out);
}

export default function usage(root, params) {
  const state = readState(params);
  const r = range(state.range);
  const rangeSelect = select("range", RANGES.map((x) => [x[0], x[1]]), state.range);
  const bySelect = select("by", DIMENSIONS, state.by);
  const byKey = h("input", { name: "by_key", value: state.by_key, placeholder: "metadata key, e.g. app" });
  const thenSelect = select("then", [["", "(none)"], ...DIMENSIONS], state.then);
  const thenKey = h("input", { name: "then_key", value: state.then_key, placeholder: "metadata key" });
  const limit = h("input", { name: "limit", type: "number", min: 1, max: 500, value: state.limit });
  const checks = AGGREGATIONS.map(([key, text]) => {
    const box = h("input", { type: "checkbox", name: "aggregation", value: key, checked: state.aggregations.includes(key) });
    return h("label", { class: "check" }, box, " ", text);
  });
  const form = h(
    "form",
    { class: "card filters", id: "usage-form" },
    h(
      "div",
      { class: "filter-grid" },
      field("Range", rangeSelect),
      field("Group by", bySelect),
      field("…metadata key", byKey),
      field("Then by (pivot columns)", thenSelect),
      field("…metadata key", thenKey),
      field("Top N", limit, "the rest is summed as other"),
    ),
    h("fieldset", { class: "checks" }, h("legend", null, "Columns"), checks),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Run")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const aggregations = [...form.querySelectorAll("input[name=aggregation]:checked")].map((b) => b.value);
    location.hash =
      "#/usage" +
      qs({ range: rangeSelect.value, by: bySelect.value, by_key: byKey.value.trim(), then: thenSelect.value, then_key: thenKey.value.trim(), aggregations: aggregations.join(","), limit: limit.value });
  });

  const dim = dimension(state.by, state.by_key) || "model";
  const then = dimension(state.then, state.then_key);
  const groupBy = then && then !== dim ? [dim, then] : [dim];
  const query = { start: r.start, end: r.end, type: "distribution", group_by: groupBy, aggregations: state.aggregations, limit: state.limit };
  const csvHref = BASE + "/usage/export.csv" + qs({ ...query, group_by: groupBy.join(","), aggregations: state.aggregations.join(",") });
  const csv = atLeast("viewer") ? h("a", { href: csvHref, class: "button", download: "relaygate-usage.csv", id: "usage-csv" }, "Download CSV") : null;

  let metric = state.aggregations[0];
  const metricSelect = select("metric", state.aggregations, metric);
  const result = widget(
    `Usage by ${groupBy.join(" × ")}`,
    () => usageQuery(query),
    (data) => {
      if (!(data.points || []).length) return empty("No usage in this range.");
      if (groupBy.length === 1) return pivot1(data, dim, state.aggregations);
      const box = h("div", null, pivot2(data, dim, then, metric));
      metricSelect.onchange = () => {
        metric = metricSelect.value;
        replace(box, pivot2(data, dim, then, metric));
      };
      return box;
    },
    { name: "pivot", class: "wide", tools: [groupBy.length > 1 ? h("label", { class: "inline" }, "Cell ", metricSelect) : null, csv] },
  );
  replace(root, h("div", { class: "page-head" }, h("h1", null, "Usage")), form, result);
}
