// The dashboard: tabs over the daemon and platform routes, kept live by the event stream.
//
// Live updates: without a daemon token the page opens an EventSource on /events/stream.
// EventSource cannot send an Authorization header, so with a daemon token it polls
// `/events?since=<last id>` every two seconds instead. Either way a relevant event reloads
// the open tab; the platform tabs (no stream) reload every ten seconds.

import { creds, daemon } from "./api.js";
import { el } from "./dom.js";
import { VIEWS } from "./views.js";

const POLL_MS = 2000;
const PLATFORM_REFRESH_MS = 10000;

const view = document.getElementById("view");
const status = document.getElementById("status");
const live = document.getElementById("live");
let current = null;
let loading = null;
let again = false;

function viewFromHash() {
  const name = location.hash.replace(/^#/, "");
  return VIEWS[name] ? name : "jobs";
}

async function render() {
  if (loading) { again = true; return loading; }
  const name = current;
  const spec = VIEWS[name];
  loading = (async () => {
    try {
      const nodes = await spec.load(render);
      if (name !== current) return;
      view.replaceChildren(el("h2", { className: "view-title" }, spec.title), ...nodes);
      view.dataset.view = name;
      view.dataset.loaded = String(Date.now());
      status.textContent = "";
      status.className = "status";
    } catch (error) {
      if (name !== current) return;
      view.replaceChildren(el("h2", { className: "view-title" }, spec.title));
      view.dataset.view = name;
      status.textContent = error.message;
      status.className = "status error";
    }
  })();
  try { await loading; } finally { loading = null; }
  if (again) { again = false; await render(); }
}

function show(name) {
  current = name;
  for (const tab of document.querySelectorAll("#tabs button")) {
    const on = tab.dataset.view === name;
    tab.classList.toggle("active", on);
    tab.setAttribute("aria-selected", String(on));
  }
  view.replaceChildren();
  view.dataset.view = "";
  return render();
}

function onEvent(event) {
  const spec = VIEWS[current];
  if (spec && spec.events && spec.events.test(event.type || "")) render();
}

// ---- live events -------------------------------------------------------------------------

let stream = null;
let pollTimer = null;

function setLive(text, cls) {
  live.textContent = text;
  live.className = `live ${cls}`;
}

function startLive() {
  if (stream) { stream.close(); stream = null; }
  if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  if (!creds.daemonToken) {
    stream = new EventSource("/events/stream");
    stream.onopen = () => setLive("live (stream)", "on");
    stream.onerror = () => setLive("reconnecting…", "off");
    stream.onmessage = (message) => {
      try { onEvent(JSON.parse(message.data)); } catch { /* a malformed line: ignore */ }
    };
    return;
  }
  let since = null;
  const poll = async () => {
    try {
      const found = await daemon("GET", since ? `/events?since=${encodeURIComponent(since)}` : "/events");
      if (since !== null) found.forEach(onEvent);
      if (found.length) since = found[found.length - 1].id;
      setLive("live (polling)", "on");
    } catch {
      setLive("events unavailable", "off");
    }
    pollTimer = setTimeout(poll, POLL_MS);
  };
  poll();
}

// ---- wiring ------------------------------------------------------------------------------

const form = document.getElementById("credentials");
const tokenInput = document.getElementById("daemon-token");
const keyInput = document.getElementById("api-key");
tokenInput.value = creds.daemonToken;
keyInput.value = creds.apiKey;
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const tokenChanged = tokenInput.value.trim() !== creds.daemonToken;
  creds.daemonToken = tokenInput.value.trim();
  creds.apiKey = keyInput.value.trim();
  if (tokenChanged) startLive();
  render();
});

for (const tab of document.querySelectorAll("#tabs button")) {
  tab.addEventListener("click", () => { location.hash = tab.dataset.view; });
}
window.addEventListener("hashchange", () => show(viewFromHash()));
setInterval(() => { if (VIEWS[current]?.platform && !document.hidden) render(); }, PLATFORM_REFRESH_MS);

startLive();
show(viewFromHash());
