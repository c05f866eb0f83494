// Overview: totals and charts over time from one timeseries query, and three top-N breakdowns
// (one distribution query each).

import { h, replace, widget, empty, fmtNum, fmtUsd, fmtMs, fmtPct, select } from "../dom.js";
import { usageQuery, range, RANGES } from "../api.js";
import { timeChart, barChart } from "../chart.js";

const SERIES_AGGREGATIONS = ["requests", "errors", "cost_usd", "input_tokens", "output_tokens", "latency_p50", "latency_p99", "ttft_p50", "ttft_p99"];

const STEP = { "1m": 60, "5m": 300, "1h": 3600, "1d": 86400 };

/** Every bucket of the range, so counts read as 0 where nothing happened (percentiles stay empty). */
function buckets(points, r) {
  const step = STEP[r.interval] || 60;
  const byTs = new Map(points.map((p) => [Math.floor(p.ts / step) * step, p]));
  const out = [];
  for (let t = Math.floor(r.start / step) * step; t <= r.end; t += step) out.push(byTs.get(t) || { ts: t, empty: true });
  return out.length <= 2000 ? out : points;
}

function sum(points, key) {
  return points.reduce((acc, p) => acc + (p[key] || 0), 0);
}

function kpi(label, value, title) {
  return h("div", { class: "kpi", "data-kpi": label, title: title || null }, h("div", { class: "kpi-value" }, value), h("div", { class: "kpi-label" }, label));
}

function overTime(r) {
  return widget(
    "Traffic over time",
    () => usageQuery({ start: r.start, end: r.end, type: "timeseries", interval: r.interval, aggregations: SERIES_AGGREGATIONS }),
    (data) => {
      const points = (data.points || []).filter((p) => p.ts !== undefined && p.ts !== null);
      if (!points.length) return empty("No requests in this range. Send one and reload.");
      const requests = sum(points, "requests");
      const errors = sum(points, "errors");
      const all = buckets(points, r);
      const COUNTS = new Set(["requests", "errors", "cost_usd", "input_tokens", "output_tokens"]);
      const series = (key) => all.map((p) => [p.ts, p[key] ?? (COUNTS.has(key) ? 0 : null)]);
      const weighted = (key) => {
        // a range-wide percentile is not a mean of percentiles; show the worst bucket for p99 and the
        // request-weighted mean for p50 as a summary (the chart has the detail)
        const values = points.filter((p) => p[key] !== null && p[key] !== undefined);
        if (!values.length) return null;
        if (key.endsWith("p99")) return Math.max(...values.map((p) => p[key]));
        const n = values.reduce((a, p) => a + (p.requests || 0), 0) || values.length;
        return values.reduce((a, p) => a + p[key] * (p.requests || 1), 0) / n;
      };
      return h(
        "div",
        null,
        h(
          "div",
          { class: "kpis" },
          kpi("Requests", fmtNum(requests)),
          kpi("Error rate", fmtPct(requests ? errors / requests : 0), `${errors} errors`),
          kpi("Cost", fmtUsd(sum(points, "cost_usd"))),
          kpi("Tokens", fmtNum(sum(points, "input_tokens") + sum(points, "output_tokens")), `${sum(points, "input_tokens")} in, ${sum(points, "output_tokens")} out`),
          kpi("Latency p50", fmtMs(weighted("latency_p50")), "request-weighted mean of the buckets' p50"),
          kpi("Latency p99", fmtMs(weighted("latency_p99")), "highest bucket p99"),
        ),
        h(
          "div",
          { class: "chart-grid" },
          h("div", null, h("h3", null, "Requests and errors"), timeChart([{ name: "requests", points: series("requests") }, { name: "errors", points: series("errors") }], { area: true, fmt: (v) => fmtNum(v, 1), title: "Requests and errors", start: r.start, end: r.end })),
          h(
            "div",
            null,
            h("h3", null, "Error rate"),
            timeChart([{ name: "error rate", points: all.map((p) => [p.ts, p.requests ? (p.errors || 0) / p.requests : null]) }], { area: true, fmt: fmtPct, title: "Error rate", start: r.start, end: r.end }),
          ),
          h("div", null, h("h3", null, "Cost"), timeChart([{ name: "cost (USD)", points: series("cost_usd") }], { area: true, fmt: fmtUsd, title: "Cost", start: r.start, end: r.end })),
          h("div", null, h("h3", null, "Tokens"), timeChart([{ name: "input", points: series("input_tokens") }, { name: "output", points: series("output_tokens") }], { fmt: (v) => fmtNum(v, 1), title: "Tokens", start: r.start, end: r.end })),
          h(
            "div",
            null,
            h("h3", null, "Latency"),
            timeChart([{ name: "p50", points: series("latency_p50") }, { name: "p99", points: series("latency_p99") }], { fmt: fmtMs, title: "Latency", start: r.start, end: r.end }),
          ),
          h(
            "div",
            null,
            h("h3", null, "Time to first token"),
            timeChart([{ name: "p50", points: series("ttft_p50") }, { name: "p99", points: series("ttft_p99") }], { fmt: fmtMs, title: "Time to first token", start: r.start, end: r.end }),
          ),
        ),
        data.source ? h("p", { class: "muted small" }, `source: ${data.source}`) : null,
      );
    },
    { name: "timeseries", class: "wide" },
  );
}

function topN(title, dim, r, opts = {}) {
  const aggregations = opts.aggregations || ["requests", "errors", "cost_usd"];
  const metric = opts.metric || "requests";
  return widget(
    title,
    () => usageQuery({ start: r.start, end: r.end, type: "distribution", group_by: [dim], aggregations, limit: 8, filters: opts.filters }),
    (data) => {
      let points = data.points || [];
      if (opts.keep) points = points.filter(opts.keep);
      if (!points.length) return empty(opts.emptyText || "No data in this range.");
      const label = (p) => {
        const v = p.group ? p.group[dim] : null;
        return v === null || v === undefined || v === "" ? "(none)" : String(v).replace(/^(user|team|virtualaccount):/, "");
      };
      const items = points.map((p) => ({
        label: label(p),
        value: p[metric] || 0,
        title: `${p.group ? p.group[dim] : ""}: ${fmtNum(p.requests)} requests, ${fmtNum(p.errors)} errors, ${fmtUsd(p.cost_usd)}`,
      }));
      if (data.other && data.other[metric]) items.push({ label: "other", value: data.other[metric], other: true });
      return barChart(items, { fmt: (v) => fmtNum(v), title, series: opts.series || 0 });
    },
    { name: `top-${dim}` },
  );
}

export default function overview(root, params) {
  const key = params.get("range") || "1h";
  const r = range(key);
  const picker = select(
    "range",
    RANGES.map((x) => [x[0], x[1]]),
    r.key,
  );
  picker.addEventListener("change", () => {
    location.hash = `#/overview?range=${picker.value}`;
  });
  replace(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Overview"), h("label", { class: "inline" }, "Range ", picker)),
    overTime(r),
    h(
      "div",
      { class: "cards-3" },
      topN("Top models", "model", r),
      topN("Top users", "user", r, { series: 1 }),
      topN("Top errors", "error_type", r, { aggregations: ["requests", "errors"], metric: "errors", keep: (p) => p.group && p.group.error_type, emptyText: "No errors in this range.", series: 2 }),
    ),
  );
}
