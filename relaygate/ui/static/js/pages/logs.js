// Logs: a filter form (kept in the URL hash), one cursor page per request with "Load more", a detail
// drawer that fetches one row (bodies for admins) when opened, and a live tail over server-sent events
// with the same filters and the server's dropped count.

import { h, replace, loading, empty, failure, fmtTime, fmtMs, fmtUsd, fmtNum, table, tableRow, field, select, subjectName } from "../dom.js";
import { api, qs, range, RANGES, BASE, atLeast } from "../api.js";
import { openDrawer } from "../shell.js";

const TEXT_FILTERS = [
  ["model", "Model", "requested or resolved, e.g. mock/echo"],
  ["provider", "Provider", "openai, mock, …"],
  ["user", "User", "email"],
  ["team", "Team", ""],
  ["virtual_account", "Virtual account", ""],
  ["error_type", "Error type", "rate_limited, timeout, …"],
  ["request_id", "Request id", ""],
  ["trace_id", "Trace id", ""],
  ["min_latency_ms", "Min latency (ms)", ""],
  ["max_latency_ms", "Max latency (ms)", ""],
];

/** The API filters from the page's hash parameters. */
function filtersFrom(params) {
  const r = range(params.get("range") || "1h");
  const out = { start: r.start, end: r.end };
  for (const [key] of TEXT_FILTERS) if (params.get(key)) out[key] = params.get(key);
  for (const key of ["status_class", "streaming", "status"]) if (params.get(key)) out[key] = params.get(key);
  for (const [key, value] of params.entries()) if (key.startsWith("metadata.") && value) out[key] = value;
  return out;
}

function metadataText(params) {
  return [...params.entries()]
    .filter(([k]) => k.startsWith("metadata."))
    .map(([k, v]) => `${k.slice(9)}=${v}`)
    .join(", ");
}

function statusBadge(row) {
  const status = row.status || 0;
  const cls = status >= 500 ? "bad" : status >= 400 ? "warn" : "ok";
  return h("span", { class: `badge ${cls}`, title: row.error_type ? `${row.error_type}${row.error_message ? ": " + row.error_message : ""}` : null }, String(status), row.error_type ? ` ${row.error_type}` : "");
}

function metadataChips(metadata) {
  const entries = Object.entries(metadata || {});
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h(
    "span",
    { class: "chips" },
    entries.map(([k, v]) => h("span", { class: "chip", title: `${k}=${v}` }, `${k}=${v}`)),
  );
}

const COLUMNS = [
  { label: "Time", cell: (r) => h("span", { title: `request ${r.request_id}` }, fmtTime(r.time)) },
  { label: "Model", cell: (r) => h("span", { title: r.resolved_model && r.resolved_model !== r.requested_model ? `resolved: ${r.resolved_model}` : r.provider || "" }, r.requested_model || r.resolved_model || r.path || "—") },
  { label: "User", cell: (r) => subjectName(r.subject) },
  { label: "Team", cell: (r) => r.team || h("span", { class: "muted" }, "—") },
  { label: "Status", cell: statusBadge },
  { label: "Latency", class: "num", cell: (r) => fmtMs(r.latency_ms) },
  { label: "Tokens", class: "num", cell: (r) => (r.input_tokens === null && r.output_tokens === null ? "—" : `${fmtNum(r.input_tokens || 0)} / ${fmtNum(r.output_tokens || 0)}`) },
  { label: "Cost", class: "num", cell: (r) => fmtUsd(r.cost_usd) },
  { label: "Metadata", cell: (r) => metadataChips(r.metadata) },
];

function kv(rows) {
  return h(
    "dl",
    { class: "kv" },
    rows.filter(([, v]) => v !== undefined).map(([k, v]) => [h("dt", null, k), h("dd", null, v === null || v === "" ? h("span", { class: "muted" }, "—") : v)]),
  );
}

function bodyBlock(title, body) {
  let text = body;
  if (typeof body !== "string") text = JSON.stringify(body, null, 2);
  else {
    try {
      text = JSON.stringify(JSON.parse(body), null, 2);
    } catch {
      /* not JSON: shown as it is */
    }
  }
  return h("section", { class: "body-block" }, h("h3", null, title), h("pre", { class: "code" }, text));
}

async function showDetail(row) {
  const body = openDrawer(`Request ${fmtTime(row.time)}`, loading("the request"));
  try {
    const data = (await api("GET", "/logs/detail", { query: { request_id: row.request_id } })).data;
    const bodies = [];
    const hasBodies = data.request_body !== undefined || data.response_body !== undefined;
    if (data.request_body) bodies.push(bodyBlock("Request body", data.request_body));
    if (data.response_body) bodies.push(bodyBlock("Response body", data.response_body));
    if (!bodies.length) {
      bodies.push(h("p", { class: "muted" }, hasBodies || atLeast("admin") ? "No bodies were logged for this request." : "Bodies are shown to admins only."));
    }
    replace(
      body,
      kv([
        ["Request id", h("code", null, data.request_id)],
        ["Time", fmtTime(data.time)],
        ["Method and path", `${data.method || ""} ${data.path || ""}`],
        ["User", subjectName(data.subject)],
        ["Team", data.team],
        ["Token", data.token_id ? h("span", { title: data.token_id }, data.token_name || "(hover for its id)") : null],
        ["Requested model", data.requested_model],
        ["Resolved model", data.resolved_model],
        ["Provider", data.provider],
        ["Status", statusBadge(data)],
        ["Error", data.error_message || data.error_type],
        ["Streaming", data.streaming ? "yes" : "no"],
        ["Latency", fmtMs(data.latency_ms)],
        ["Time to first token", fmtMs(data.ttft_ms)],
        ["Input tokens", fmtNum(data.input_tokens)],
        ["Output tokens", fmtNum(data.output_tokens)],
        ["Cost", data.cost_unknown ? "unknown (no price)" : fmtUsd(data.cost_usd)],
        ["Metadata", metadataChips(data.metadata)],
        ["Trace id", data.trace_id ? h("code", null, data.trace_id) : null],
        ["Details", data.extra && Object.keys(data.extra).length ? h("pre", { class: "code small" }, JSON.stringify(data.extra, null, 2)) : null],
      ]),
      bodies,
    );
  } catch (error) {
    replace(body, failure(error));
  }
}

function filterForm(params) {
  const inputs = {};
  const rangeSelect = select("range", RANGES.map((x) => [x[0], x[1]]), params.get("range") || "1h");
  const statusSelect = select("status_class", [["", "any"], "2xx", "4xx", "5xx"], params.get("status_class") || "");
  const metadata = h("input", { name: "metadata", value: metadataText(params), placeholder: "app=checkout, env=prod" });
  const fields = TEXT_FILTERS.map(([key, label, hint]) => {
    inputs[key] = h("input", { name: key, value: params.get(key) || "", placeholder: hint });
    return field(label, inputs[key]);
  });
  const form = h(
    "form",
    { class: "filters card", id: "log-filters" },
    h("div", { class: "filter-grid" }, field("Range", rangeSelect), field("Status", statusSelect), field("Metadata", metadata, "key=value, comma-separated"), fields),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Apply filters"), h("a", { href: "#/logs", class: "button" }, "Clear")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = { range: rangeSelect.value, status_class: statusSelect.value };
    for (const key of Object.keys(inputs)) next[key] = inputs[key].value.trim();
    for (const pair of metadata.value.split(/[,\n]/)) {
      const [k, ...rest] = pair.split("=");
      if (k && k.trim() && rest.length) next[`metadata.${k.trim()}`] = rest.join("=").trim();
    }
    location.hash = "#/logs" + qs(next);
  });
  return form;
}

export default function logs(root, params) {
  const filters = filtersFrom(params);
  const status = h("div", { class: "list-status" });
  const more = h("button", { type: "button", class: "load-more", hidden: true }, "Load more");
  const live = h("input", { type: "checkbox", name: "live" });
  const liveStatus = h("span", { class: "live-status muted" });
  const listBox = h("div", { class: "table-box" }, loading("logs"));
  let grid = null;
  let cursor = null;
  let source = null;
  let dropped = 0;

  function ensureGrid() {
    if (!grid) {
      grid = table(COLUMNS, [], { onRow: showDetail, class: "logs" });
      replace(listBox, grid);
    }
    return grid;
  }

  async function loadPage() {
    more.disabled = true;
    try {
      const answer = await api("GET", "/logs", { query: { ...filters, cursor, limit: 50 } });
      const rows = answer.data || [];
      if (!rows.length && !cursor) {
        replace(listBox, empty("No requests match these filters in this range."));
      } else {
        const t = ensureGrid();
        for (const row of rows) t.tbody.appendChild(tableRow(COLUMNS, row, { onRow: showDetail }));
      }
      cursor = answer.next_cursor || null;
      more.hidden = !cursor;
      replace(status, grid ? `${grid.tbody.children.length} requests shown${cursor ? "" : " (all)"}` : "");
    } catch (error) {
      if (cursor) replace(status, failure(error));
      else replace(listBox, failure(error));
    } finally {
      more.disabled = false;
    }
  }

  function startTail() {
    const query = { ...filters };
    delete query.start;
    delete query.end;
    dropped = 0;
    source = new EventSource(BASE + "/logs/stream" + qs(query));
    replace(liveStatus, "connecting…");
    source.addEventListener("open", () => replace(liveStatus, dropped ? `live · ${dropped} dropped` : "live"));
    source.addEventListener("log", (event) => {
      let row;
      try {
        row = JSON.parse(event.data);
      } catch {
        return;
      }
      if (row && row.data && !row.request_id) row = row.data;
      const t = ensureGrid();
      const tr = tableRow(COLUMNS, row, { onRow: showDetail });
      tr.classList.add("fresh");
      t.tbody.insertBefore(tr, t.tbody.firstChild);
      while (t.tbody.children.length > 1000) t.tbody.removeChild(t.tbody.lastChild);
    });
    source.addEventListener("dropped", (event) => {
      try {
        dropped += JSON.parse(event.data).count || 0;
      } catch {
        /* ignore a malformed event */
      }
      replace(liveStatus, `live · ${dropped} dropped (the server sends at most a few rows per second)`);
    });
    source.addEventListener("error", () => {
      replace(liveStatus, source && source.readyState === EventSource.CLOSED ? "live tail closed by the gateway" : "reconnecting…");
    });
  }

  function stopTail() {
    if (source) source.close();
    source = null;
    replace(liveStatus);
  }

  live.addEventListener("change", () => (live.checked ? startTail() : stopTail()));
  more.addEventListener("click", loadPage);

  replace(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Request logs"), h("label", { class: "inline toggle" }, live, " Live tail ", liveStatus)),
    filterForm(params),
    h("section", { class: "card wide" }, listBox, h("div", { class: "list-foot" }, status, more)),
  );
  loadPage();
  return stopTail;
}
