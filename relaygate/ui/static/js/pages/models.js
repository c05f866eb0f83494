// Models and endpoints: every model and virtual model with price, access, targets and live health
// (one request), every custom endpoint with its URL and cooldowns (one request), and for each a
// usage snippet (curl, Python `openai`, Python `requests`) with this gateway's URL from window.location.

import { h, replace, widget, empty, fmtMs, fmtPct, fmtNum, fmtTime, fmtDuration, tabs, copyButton, subjectName } from "../dom.js";
import { api, atLeast, now } from "../api.js";

const TOKEN_PLACEHOLDER = "YOUR_RELAYGATE_TOKEN";

export function gatewayOrigin() {
  return window.location.origin;
}

function codeBlock(text, name) {
  return h("div", { class: "snippet", "data-snippet": name }, h("div", { class: "snippet-tools" }, copyButton(text)), h("pre", { class: "code" }, h("code", null, text)));
}

function operationFor(model) {
  const types = model.model_types || [];
  if (types.includes("chat") || types.length === 0) return "chat";
  if (types.includes("embedding")) return "embedding";
  if (types.includes("completion")) return "completion";
  return "chat";
}

export function modelSnippets(model) {
  const origin = gatewayOrigin();
  const base = `${origin}/api/llm`;
  const op = operationFor(model);
  const name = model.name;
  let path, body, openaiCall, printLine;
  if (op === "embedding") {
    path = "/embeddings";
    body = { model: name, input: "Hello from Relaygate" };
    openaiCall = `result = client.embeddings.create(model="${name}", input="Hello from Relaygate")`;
    printLine = "print(len(result.data[0].embedding))";
  } else if (op === "completion") {
    path = "/completions";
    body = { model: name, prompt: "Hello from Relaygate" };
    openaiCall = `result = client.completions.create(model="${name}", prompt="Hello from Relaygate")`;
    printLine = "print(result.choices[0].text)";
  } else {
    path = "/chat/completions";
    body = { model: name, messages: [{ role: "user", content: "Hello from Relaygate" }] };
    openaiCall = `result = client.chat.completions.create(\n    model="${name}",\n    messages=[{"role": "user", "content": "Hello from Relaygate"}],\n)`;
    printLine = "print(result.choices[0].message.content)";
  }
  const json = JSON.stringify(body);
  const curl = `curl ${base}${path} \\\n  -H "Authorization: Bearer $RELAYGATE_TOKEN" \\\n  -H "Content-Type: application/json" \\\n  -d '${json}'`;
  const openai = `from openai import OpenAI\n\nclient = OpenAI(\n    base_url="${base}",\n    api_key="${TOKEN_PLACEHOLDER}",  # a Relaygate token (rg-...)\n)\n${openaiCall}\n${printLine}`;
  const requests = `import requests\n\nurl = "${base}${path}"\nheaders = {\n    "Authorization": "Bearer ${TOKEN_PLACEHOLDER}",\n    "Content-Type": "application/json",\n}\nbody = ${JSON.stringify(body, null, 4).replace(/\n/g, "\n")}\n\nresponse = requests.post(url, headers=headers, json=body)\nprint(response.status_code)\nprint(response.json())`;
  return snippetTabs(curl, openai, requests);
}

export function endpointSnippets(endpoint) {
  const url = `${gatewayOrigin()}/proxy-api/${endpoint.name}`;
  const curl = `curl ${url}/your/upstream/path \\\n  -H "Authorization: Bearer $RELAYGATE_TOKEN" \\\n  -H "Content-Type: application/json" \\\n  -d '{"key": "value"}'`;
  const openai = `# For an OpenAI-compatible upstream: the endpoint's URL is the SDK's base_url.\nfrom openai import OpenAI\n\nclient = OpenAI(\n    base_url="${url}",\n    api_key="${TOKEN_PLACEHOLDER}",  # a Relaygate token; the gateway adds the upstream's key\n)\nresult = client.chat.completions.create(\n    model="your-upstream-model",\n    messages=[{"role": "user", "content": "Hello"}],\n)\nprint(result.choices[0].message.content)`;
  const requests = `import requests\n\nurl = "${url}/your/upstream/path"\nheaders = {\n    "Authorization": "Bearer ${TOKEN_PLACEHOLDER}",\n    "Content-Type": "application/json",\n}\nbody = {"key": "value"}\n\nresponse = requests.post(url, headers=headers, json=body)\nprint(response.status_code)\nprint(response.text)`;
  return snippetTabs(curl, openai, requests);
}

function snippetTabs(curl, openai, requests) {
  return tabs(
    [
      { label: "curl", content: codeBlock(curl, "curl") },
      { label: "Python openai", content: codeBlock(openai, "openai") },
      { label: "Python requests", content: codeBlock(requests, "requests") },
    ],
    "snippet",
  );
}

function health(state) {
  if (!state) return h("span", { class: "muted" }, "no recent traffic");
  const parts = [];
  const until = state.cooldown_until;
  if (until && until > now()) {
    parts.push(h("span", { class: "badge warn", title: `until ${fmtTime(until)}` }, `cooling down ${fmtDuration(until - now())}`));
  } else {
    parts.push(h("span", { class: "badge ok" }, "healthy"));
  }
  if (state.latency_p50_ms !== null && state.latency_p50_ms !== undefined) parts.push(h("span", { class: "stat", title: "recent latency p50" }, `p50 ${fmtMs(state.latency_p50_ms)}`));
  if (state.error_rate !== null && state.error_rate !== undefined) parts.push(h("span", { class: "stat", title: "recent error rate" }, `errors ${fmtPct(state.error_rate)}`));
  if (state.requests !== null && state.requests !== undefined) parts.push(h("span", { class: "stat", title: "recent requests" }, `${fmtNum(state.requests)} req`));
  return h("span", { class: "health" }, parts);
}

function access(list) {
  if (!list) return h("span", { class: "muted", title: "no collaborators: every authenticated user" }, "everyone");
  if (!list.length) return h("span", { class: "muted" }, "nobody");
  return h(
    "span",
    { class: "chips" },
    list.map((s) => h("span", { class: "chip" }, subjectName(s))),
  );
}

function price(p) {
  if (!p) return h("span", { class: "muted" }, "—");
  const f = (v) => (v === null || v === undefined ? "?" : `$${v}`);
  return `${f(p.input_per_million)} in / ${f(p.output_per_million)} out per 1M tokens`;
}

function targetsTable(targets) {
  if (!targets || !targets.length) return null;
  return h(
    "table",
    { class: "grid compact" },
    h("thead", null, h("tr", null, ["Target", "Weight", "Priority", "Health"].map((x, i) => h("th", { scope: "col", class: i === 1 || i === 2 ? "num" : null }, x)))),
    h(
      "tbody",
      null,
      targets.map((t) =>
        h(
          "tr",
          null,
          h("td", null, t.name),
          h("td", { class: "num" }, t.weight ?? "—"),
          h("td", { class: "num" }, t.priority ?? "—"),
          h("td", null, health({ cooldown_until: t.cooldown_until, latency_p50_ms: t.latency_p50_ms, error_rate: t.error_rate })),
        ),
      ),
    ),
  );
}

function modelItem(model) {
  const snippet = h("details", { class: "snippet-box" }, h("summary", null, "Usage snippet"));
  snippet.addEventListener("toggle", () => {
    if (snippet.open && !snippet.dataset.built) {
      snippet.dataset.built = "1";
      snippet.appendChild(modelSnippets(model));
    }
  });
  return h(
    "article",
    { class: "item", "data-model": model.name },
    h(
      "header",
      null,
      h("h3", { title: model.name }, model.display_name || model.name),
      h("span", { class: "badge" }, model.kind === "virtual-model" ? "virtual model" : model.provider || "model"),
      health(model.health),
    ),
    h(
      "dl",
      { class: "kv inline-kv" },
      h("dt", null, "Call as"),
      h("dd", null, h("code", null, model.name)),
      h("dt", null, "Account"),
      h("dd", null, model.account || "—"),
      h("dt", null, "Types"),
      h("dd", null, (model.model_types || []).join(", ") || "—"),
      h("dt", null, "Price"),
      h("dd", null, price(model.price)),
      h("dt", null, "Access"),
      h("dd", null, access(model.access)),
    ),
    targetsTable(model.targets),
    snippet,
  );
}

function endpointItem(endpoint) {
  const snippet = h("details", { class: "snippet-box" }, h("summary", null, "Usage snippet"));
  snippet.addEventListener("toggle", () => {
    if (snippet.open && !snippet.dataset.built) {
      snippet.dataset.built = "1";
      snippet.appendChild(endpointSnippets(endpoint));
    }
  });
  const url = `${gatewayOrigin()}/proxy-api/${endpoint.name}`;
  const cooldowns = (endpoint.cooldowns || []).filter((c) => (c.cooldown_until || c.until || 0) > now());
  return h(
    "article",
    { class: "item", "data-endpoint": endpoint.name },
    h(
      "header",
      null,
      h("h3", null, endpoint.name),
      endpoint.kind === "pool" ? h("span", { class: "badge" }, `pool${endpoint.strategy ? ` (${endpoint.strategy})` : ""}`) : null,
      cooldowns.length ? h("span", { class: "badge warn" }, `${cooldowns.length} cooling down`) : null,
      endpoint.health ? health(endpoint.health) : cooldowns.length ? null : h("span", { class: "badge ok" }, "healthy"),
    ),
    h(
      "dl",
      { class: "kv inline-kv" },
      h("dt", null, "URL"),
      h("dd", null, h("code", null, url), " ", copyButton(url)),
      h("dt", null, "Upstream"),
      h("dd", null, endpoint.upstream || "—"),
      endpoint.endpoint_type ? [h("dt", null, "Type"), h("dd", null, endpoint.endpoint_type)] : null,
      h("dt", null, "Access"),
      h("dd", null, access(endpoint.access)),
    ),
    endpoint.pool && endpoint.pool.length ? targetsTable(endpoint.pool) : null,
    cooldowns.length
      ? h(
          "ul",
          { class: "cooldowns" },
          cooldowns.map((c) => h("li", null, `${c.target || c.name || endpoint.name}: until ${fmtTime(c.cooldown_until || c.until)}`)),
        )
      : null,
    snippet,
  );
}

export default function models(root) {
  const cards = [
    widget(
      "Models",
      () => api("GET", "/models"),
      (data) => (data.data && data.data.length ? h("div", { class: "items" }, data.data.map(modelItem)) : empty("No models are configured.")),
      { name: "models", class: "wide" },
    ),
  ];
  if (atLeast("viewer")) {
    cards.push(
      widget(
        "Custom endpoints",
        () => api("GET", "/endpoints"),
        (data) =>
          data.data && data.data.length
            ? h("div", { class: "items" }, data.data.map(endpointItem))
            : empty("No custom endpoints. Add one on the Config page (Add custom endpoint)."),
        { name: "endpoints", class: "wide", tools: atLeast("admin") ? h("a", { href: "#/config?add=endpoint", class: "button" }, "Add custom endpoint") : null },
      ),
    );
  }
  replace(root, h("div", { class: "page-head" }, h("h1", null, "Models and endpoints")), cards);
}
