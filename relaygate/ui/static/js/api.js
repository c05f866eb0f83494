// The admin API client. The session is an HttpOnly cookie the page cannot read; the CSRF token from the
// login answer lives only in this module's memory (never localStorage or sessionStorage). After a
// reload the cookie still authenticates reads, and the first write asks for the token again.

export const BASE = "/api/admin/v1";

export const session = {
  me: null, // the whoami answer
  csrf: null, // kept in memory only
};

export class ApiError extends Error {
  constructor(message, status, code, type) {
    super(message);
    this.status = status;
    this.code = code;
    this.type = type;
  }
}

export class NeedsLogin extends ApiError {}

/** A query string from an object; arrays repeat the key, empty values are left out. */
export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) {
      for (const v of value) search.append(key, v);
    } else {
      search.append(key, String(value));
    }
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

const listeners = new Set();
export function onUnauthorized(fn) {
  listeners.add(fn);
}

/** One request to the admin API; resolves to the JSON answer, rejects with ApiError(message from the API). */
const RELOGIN = "Log in again to make changes: the CSRF token is kept in memory only, and a reload forgets it.";

export async function api(method, path, { query, body, write = false } = {}) {
  const headers = { accept: "application/json" };
  if (method !== "GET" && method !== "HEAD" && path !== "/session") {
    // Every POST/DELETE carries the CSRF token when the page has one; writes cannot go without it.
    if (session.csrf) headers["x-relaygate-csrf"] = session.csrf;
    else if (write) throw new NeedsLogin(RELOGIN, 0, "csrf_missing");
  }
  let payload;
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path + qs(query), { method, headers, body: payload, credentials: "same-origin", cache: "no-store" });
  } catch (error) {
    throw new ApiError(`the gateway did not answer (${error.message})`, 0, "network");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const err = data && data.error ? data.error : {};
    if (err.code === "csrf_failed") throw new NeedsLogin(RELOGIN, response.status, err.code);
    const error = new ApiError(err.message || `${response.status} ${response.statusText}`, response.status, err.code, err.type);
    if (response.status === 401 && path !== "/session") {
      for (const fn of listeners) fn(error);
    }
    throw error;
  }
  return data;
}

export async function login(token) {
  const answer = await api("POST", "/session", { body: { token } });
  session.csrf = answer.csrf_token;
  const me = { ...answer };
  delete me.csrf_token;
  session.me = me;
  return me;
}

export async function restore() {
  session.me = await api("GET", "/whoami");
  return session.me;
}

export async function logout() {
  try {
    await fetch(BASE + "/session/logout", {
      method: "POST",
      credentials: "same-origin",
      headers: session.csrf ? { "x-relaygate-csrf": session.csrf } : {},
    });
  } finally {
    session.me = null;
    session.csrf = null;
  }
}

const RANK = { user: 1, viewer: 2, admin: 3 };
export function atLeast(role) {
  return Boolean(session.me) && RANK[session.me.role] >= RANK[role];
}

/** Times: the API takes unix seconds. */
export function now() {
  return Date.now() / 1000;
}

export const RANGES = [
  ["15m", "Last 15 minutes", 900, "1m"],
  ["1h", "Last hour", 3600, "1m"],
  ["6h", "Last 6 hours", 6 * 3600, "5m"],
  ["24h", "Last 24 hours", 86400, "1h"],
  ["7d", "Last 7 days", 7 * 86400, "1h"],
  ["30d", "Last 30 days", 30 * 86400, "1d"],
];

export function range(key) {
  const found = RANGES.find((r) => r[0] === key) || RANGES[1];
  const end = now();
  return { start: Math.floor(end - found[2]), end: Math.ceil(end), interval: found[3], key: found[0] };
}

/** The usage query for this caller: /usage/query for viewers and admins, /me/usage for everyone else. */
export function usageQuery(body) {
  return api("POST", atLeast("viewer") ? "/usage/query" : "/me/usage", { body });
}
