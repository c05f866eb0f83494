// Hand-written SVG charts: lines/areas over time and horizontal bars for top-N. Colours come from app.css
// classes (series-0 … series-4); nothing here sets a style attribute (the CSP allows only app.css).

import { h, s, fmtTime } from "./dom.js";

const W = 640;
const H = 200;
const PAD = { left: 56, right: 12, top: 10, bottom: 26 };

function niceMax(value) {
  if (!(value > 0)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * exp >= value) return step * exp;
  }
  return 10 * exp;
}

/**
 * series: [{name, points: [[ts, value|null], …]}]; opts: {fmt, area, title, start, end}
 * Missing values (null) break the line.
 */
export function timeChart(series, opts = {}) {
  const fmt = opts.fmt || ((v) => String(v));
  const all = series.flatMap((x) => x.points);
  const times = all.map((p) => p[0]);
  const t0 = opts.start ?? Math.min(...times);
  const t1 = opts.end ?? Math.max(...times);
  const span = t1 - t0 || 1;
  const vmax = niceMax(Math.max(0, ...all.map((p) => p[1] ?? 0)));
  const x = (t) => PAD.left + ((t - t0) / span) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / vmax) * (H - PAD.top - PAD.bottom);

  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart time-chart", role: "img", "aria-label": opts.title || "chart" });
  if (opts.title) svg.appendChild(s("title", null, opts.title));
  // grid and y axis
  for (const frac of [0, 0.25, 0.5, 0.75, 1]) {
    const v = vmax * frac;
    svg.appendChild(s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid-line" }));
    svg.appendChild(s("text", { x: PAD.left - 6, y: y(v) + 4, class: "axis-label", "text-anchor": "end" }, fmt(v)));
  }
  // x axis: start, middle, end
  for (const [t, anchor] of [
    [t0, "start"],
    [t0 + span / 2, "middle"],
    [t1, "end"],
  ]) {
    const short = span <= 86400 ? fmtTime(t, false).slice(11) : fmtTime(t, false).slice(5, 10);
    svg.appendChild(s("text", { x: x(t), y: H - 6, class: "axis-label", "text-anchor": anchor }, short));
  }
  series.forEach((serie, i) => {
    const points = [...serie.points].sort((a, b) => a[0] - b[0]);
    const segments = [];
    let current = [];
    for (const [t, v] of points) {
      if (v === null || v === undefined) {
        if (current.length) segments.push(current);
        current = [];
      } else current.push([x(t), y(v), t, v]);
    }
    if (current.length) segments.push(current);
    for (const seg of segments) {
      const line = seg.map((p, j) => `${j ? "L" : "M"}${p[0].toFixed(1)},${p[1].toFixed(1)}`).join("");
      if (opts.area && i === 0) {
        const base = y(0).toFixed(1);
        const area = `${line}L${seg[seg.length - 1][0].toFixed(1)},${base}L${seg[0][0].toFixed(1)},${base}Z`;
        svg.appendChild(s("path", { d: area, class: `area series-${i}` }));
      }
      svg.appendChild(s("path", { d: line, class: `line series-${i}` }));
      for (const p of seg) {
        svg.appendChild(
          s("circle", { cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: seg.length > 60 ? 1.2 : 2.5, class: `dot series-${i}` }, s("title", null, `${serie.name} ${fmtTime(p[2])}: ${fmt(p[3])}`)),
        );
      }
    }
  });
  const legend = h(
    "div",
    { class: "legend" },
    series.map((serie, i) => h("span", { class: "legend-item" }, h("span", { class: `swatch series-${i}` }), serie.name)),
  );
  return h("figure", { class: "chart-box", "data-chart": opts.title || "" }, svg, series.length > 1 || opts.legend ? legend : null);
}

/** items: [{label, value, title?, extra?}] as horizontal bars, largest first. */
export function barChart(items, opts = {}) {
  const fmt = opts.fmt || ((v) => String(v));
  const rowH = 24;
  const width = opts.width || 440;
  const labelW = Math.round(width * 0.3);
  const valueW = 70;
  const height = Math.max(rowH, items.length * rowH) + 4;
  const vmax = Math.max(0, ...items.map((i) => i.value || 0)) || 1;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart bar-chart", role: "img", "aria-label": opts.title || "bars" });
  if (opts.title) svg.appendChild(s("title", null, opts.title));
  items.forEach((item, i) => {
    const top = i * rowH + 2;
    const barW = ((item.value || 0) / vmax) * (width - labelW - valueW - 8);
    const label = item.label.length > 26 ? item.label.slice(0, 25) + "…" : item.label;
    const g = s("g", { class: item.other ? "bar other" : "bar" });
    g.appendChild(s("title", null, item.title || `${item.label}: ${fmt(item.value)}`));
    g.appendChild(s("text", { x: labelW - 8, y: top + rowH / 2 + 4, class: "bar-label", "text-anchor": "end" }, label));
    g.appendChild(s("rect", { x: labelW, y: top + 3, width: Math.max(1, barW).toFixed(1), height: rowH - 8, rx: 2, class: `series-${opts.series || 0}` }));
    g.appendChild(s("text", { x: labelW + barW + 6, y: top + rowH / 2 + 4, class: "bar-value" }, fmt(item.value)));
    svg.appendChild(g);
  });
  return h("figure", { class: "chart-box" }, svg);
}
