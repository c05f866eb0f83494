// DOM helpers: every piece of data reaches the page as a text node or an attribute value, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "value" && "value" in el) {
      el.value = value;
    } else if (key === "checked" || key === "selected" || key === "disabled" || key === "multiple") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** h("div", {class: "x"}, "text", child, [more]) */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** Loading, empty and error states. */
export function loading(what) {
  return h("p", { class: "state loading" }, `Loading ${what || ""}…`.replace(" …", "…"));
}
export function empty(message) {
  return h("p", { class: "state empty" }, message || "Nothing here yet.");
}
export function failure(error) {
  const message = error && error.message ? error.message : String(error);
  return h(
    "p",
    { class: "state error", role: "alert" },
    error && error.status ? `Error ${error.status}${error.code ? ` (${error.code})` : ""}: ` : "Error: ",
    message,
  );
}

/**
 * A widget: a titled card whose body shows loading, then what `render(data)` returns, or the API's error.
 * `load()` makes exactly one request. Returns the card; `card.reload()` runs it again.
 */
export function widget(title, load, render, opts = {}) {
  const body = h("div", { class: "card-body" });
  const tools = h("div", { class: "card-tools" }, opts.tools || null);
  const card = h("section", { class: ["card", opts.class], "data-widget": opts.name || title }, h("header", null, h("h2", null, title), tools), body);
  card.reload = async () => {
    replace(body, loading());
    card.setAttribute("aria-busy", "true");
    try {
      const data = await load();
      const out = render(data, card);
      replace(body, out === undefined || out === null ? empty() : out);
    } catch (error) {
      replace(body, failure(error));
    } finally {
      card.setAttribute("aria-busy", "false");
    }
  };
  card.reload();
  return card;
}

// ---- formatting --------------------------------------------------------------------------------

export function fmtTime(ts, withSeconds = true) {
  if (ts === null || ts === undefined) return "—";
  const d = new Date(ts * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}${withSeconds ? ":" + pad(d.getSeconds()) : ""}`;
  return `${date} ${time}`;
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  const abs = Math.abs(n);
  if (abs >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (abs >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (abs >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits });
}

export function fmtUsd(n) {
  if (n === null || n === undefined) return "—";
  if (n === 0) return "$0";
  if (Math.abs(n) < 0.01) return "$" + n.toPrecision(2);
  return "$" + n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

export function fmtMs(n) {
  if (n === null || n === undefined) return "—";
  if (n >= 10000) return (n / 1000).toFixed(1) + " s";
  return (n >= 100 ? Math.round(n) : n.toFixed(1)) + " ms";
}

export function fmtPct(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  return (n * 100).toFixed(n < 0.1 ? 2 : 1) + "%";
}

export function fmtDuration(seconds) {
  if (seconds <= 0) return "now";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

/** A subject such as "user:alice@example.com" shown as its name, the full subject in the tooltip. */
export function subjectName(subject) {
  if (!subject) return h("span", { class: "muted" }, "—");
  const name = subject.replace(/^(user|team|virtualaccount|virtual-account):/, "");
  return h("span", { title: subject }, name);
}

/** Copy text to the clipboard, with a fallback for pages that are not a secure context. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "offscreen", readonly: true }, text);
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

export function copyButton(getText, label = "Copy") {
  const button = h("button", { type: "button", class: "small" }, label);
  button.addEventListener("click", async () => {
    const ok = await copyText(typeof getText === "function" ? getText() : getText);
    button.textContent = ok ? "Copied" : "Select and copy";
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

/** A small tab strip: tabs = [{label, content: Node}] */
export function tabs(items, name) {
  const strip = h("div", { class: "tabs", role: "tablist" });
  const panel = h("div", { class: "tab-panel", role: "tabpanel" });
  const buttons = items.map((item, i) => {
    const b = h("button", { type: "button", role: "tab", class: "tab", "data-tab": item.label, "aria-selected": i === 0 ? "true" : "false" }, item.label);
    b.addEventListener("click", () => select(i));
    return b;
  });
  function select(i) {
    buttons.forEach((b, j) => b.setAttribute("aria-selected", j === i ? "true" : "false"));
    replace(panel, items[i].content);
  }
  append(strip, buttons);
  select(0);
  return h("div", { class: "tabbed", "data-tabs": name || "" }, strip, panel);
}

/** A table from column specs: [{label, cell: row => Node|string, class?}] */
export function table(columns, rows, opts = {}) {
  const head = h("thead", null, h("tr", null, columns.map((c) => h("th", { class: c.class, scope: "col" }, c.label))));
  const body = h("tbody");
  for (const row of rows) body.appendChild(tableRow(columns, row, opts));
  const t = h("table", { class: ["grid", opts.class] }, head, body);
  t.tbody = body;
  return t;
}

export function tableRow(columns, row, opts = {}) {
  const tr = h("tr", opts.rowAttrs ? opts.rowAttrs(row) : null, columns.map((c) => h("td", { class: c.class }, c.cell(row))));
  if (opts.onRow) {
    tr.classList.add("clickable");
    tr.tabIndex = 0;
    tr.addEventListener("click", () => opts.onRow(row, tr));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter") opts.onRow(row, tr);
    });
  }
  return tr;
}

/** A labelled form field. */
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "label" }, label), control, hint ? h("small", { class: "hint" }, hint) : null);
}

export function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === value }, label);
    }),
  );
}

/** Minimal YAML for display (plain JSON-like data: objects, arrays, strings, numbers, booleans, null). */
export function toYaml(value, indent = "") {
  const scalar = (v) => {
    if (v === null || v === undefined) return "null";
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    const text = String(v);
    if (text === "" || /^[\s\-?:,[\]{}#&*!|>'"%@`]|[:#]\s|\s#|\s$|^(true|false|null|yes|no|on|off|~)$|^[0-9.+-]/i.test(text) || text.includes("\n")) {
      return JSON.stringify(text);
    }
    return text;
  };
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return value
      .map((item) => {
        if (item && typeof item === "object" && !Array.isArray(item) && Object.keys(item).length) {
          const inner = toYaml(item, indent + "  ");
          return `${indent}- ${inner.slice(indent.length + 2)}`;
        }
        return `${indent}- ${item && typeof item === "object" ? toYaml(item, indent + "  ").trimStart() : scalar(item)}`;
      })
      .join("\n");
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 0) return "{}";
    return keys
      .map((k) => {
        const v = value[k];
        const key = indent + scalar(k);
        if (v && typeof v === "object" && (Array.isArray(v) ? v.length : Object.keys(v).length)) {
          return `${key}:\n${toYaml(v, indent + "  ")}`;
        }
        return `${key}: ${v && typeof v === "object" ? toYaml(v) : scalar(v)}`;
      })
      .join("\n");
  }
  return indent + scalar(value);
}
