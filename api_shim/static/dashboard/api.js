// HTTP to the shim: daemon routes with the daemon token (if any), platform routes with the
// org API key. Both are kept in localStorage.

const DAEMON_TOKEN = "dispatchyard.daemonToken";
const API_KEY = "dispatchyard.apiKey";

export const creds = {
  get daemonToken() { return localStorage.getItem(DAEMON_TOKEN) || ""; },
  set daemonToken(v) { v ? localStorage.setItem(DAEMON_TOKEN, v) : localStorage.removeItem(DAEMON_TOKEN); },
  get apiKey() { return localStorage.getItem(API_KEY) || ""; },
  set apiKey(v) { v ? localStorage.setItem(API_KEY, v) : localStorage.removeItem(API_KEY); },
};

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function call(method, path, token, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) {
    const detail = data && (data.detail ?? data.error ?? data.reason);
    const message = typeof detail === "string" ? detail : JSON.stringify(detail ?? text);
    throw new ApiError(resp.status, `${method} ${path}: ${resp.status} ${message}`);
  }
  return data;
}

export const daemon = (method, path, body) => call(method, path, creds.daemonToken, body);

export function platform(method, path, body) {
  if (!creds.apiKey) throw new ApiError(0, "Paste an org API key above to see this view.");
  return call(method, `/api${path}`, creds.apiKey, body);
}
