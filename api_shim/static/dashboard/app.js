// The dashboard: tabs over the daemon and platform routes, kept live by the event stream.
//
// Live updates: without a daemon token the page opens an EventSource on /events/stream.
// EventSource cannot send an Authorization header, so with a daemon token it polls
// `/events?since=<last id>` every two seconds instead. Either way a relevant event reloads
// the open tab; the platform tabs (no stream) reload every ten seconds.
//
// Routes are the hash: `#<tab>`, `#jobs?state=failed&q=nightly` (the list's filters),
// `#jobs/<job id>` (a job's page), `#peers/<peer id>` (a peer's page).

import { say } from "./actions.js";
import { creds, daemon } from "./api.js";
import { el } from "./dom.js";
import { VIEWS } from "./views.js";

const POLL_MS = 2000;
const LIVE_MIN_MS = 1000;
const PLATFORM_REFRESH_MS = 10000;

const view = document.getElementById("view");
const status = document.getElementById("status");
const live = document.getElementById("live");
let current = null;
let loading = null;
let again = false;

// The hash as {key, name (the view), tab, arg, params}.
function routeFromHash() {
  const raw = location.hash.replace(/^#/, "");
  const cut = raw.indexOf("?");
  const path = cut < 0 ? raw : raw.slice(0, cut);
  const params = new URLSearchParams(cut < 0 ? "" : raw.slice(cut + 1));
  const [tab, ...rest] = path.split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  const detail = { jobs: "job", peers: "peer" }[tab];
  if (arg && detail) return { key: raw, name: detail, tab, arg, params };
  const name = VIEWS[tab] && !VIEWS[tab].detail ? tab : "jobs";
  return { key: raw, name, tab: name, arg: null, params };
}

async function render() {
  if (loading) { again = true; return loading; }
  const route = current;
  const name = route.name;
  const spec = VIEWS[name];
  const title = typeof spec.title === "function" ? spec.title(route) : spec.title;
  loading = (async () => {
    try {
      const nodes = await spec.load(render, route);
      if (route !== current) return;
      view.replaceChildren(el("h2", { className: "view-title" }, title), ...nodes.flat(Infinity).filter(Boolean));
      view.dataset.view = name;
      view.dataset.route = route.key;
      view.dataset.loaded = String(Date.now());
      status.textContent = "";
      status.className = "status";
    } catch (error) {
      if (route !== current) return;
      view.replaceChildren(el("h2", { className: "view-title" }, title));
      view.dataset.view = name;
      status.textContent = error.message;
      status.className = "status error";
    }
  })();
  try { await loading; } finally { loading = null; }
  if (again) { again = false; await render(); }
}

function show(route) {
  const moved = !current || current.name !== route.name || current.arg !== route.arg;
  current = route;
  for (const tab of document.querySelectorAll("#tabs button")) {
    const on = tab.dataset.view === route.tab;
    tab.classList.toggle("active", on);
    tab.setAttribute("aria-selected", String(on));
  }
  if (moved) {  // a new page starts empty; new filters keep the old rows until the new ones come
    say("");
    view.replaceChildren();
    view.dataset.view = "";
  }
  return render();
}

let deferred = false;
let lastLive = 0;
let liveTimer = null;

// A burst of events re-renders the view once a LIVE_MIN_MS (a view may ask for longer), the
// last event's change included.
function liveRender(spec) {
  const wait = (spec.every || LIVE_MIN_MS) - (Date.now() - lastLive);
  if (wait > 0) {
    if (!liveTimer) liveTimer = setTimeout(() => { liveTimer = null; liveRender(VIEWS[current.name]); }, wait);
    return;
  }
  lastLive = Date.now();
  render();
}

function onEvent(event) {
  const spec = VIEWS[current.name];
  if (!spec || !spec.events || !spec.events.test(event.type || "")) return;
  if (spec.concerns && !spec.concerns(event, current)) return;  // another record's event
  // Someone is typing in the view (a filter): re-render once they leave the field, not under
  // their cursor.
  const focused = document.activeElement;
  if (focused && view.contains(focused) && /^(INPUT|SELECT|TEXTAREA)$/.test(focused.tagName)) {
    if (!deferred) {
      deferred = true;
      focused.addEventListener("blur", () => { deferred = false; render(); }, { once: true });
    }
    return;
  }
  liveRender(spec);
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
window.addEventListener("hashchange", () => show(routeFromHash()));
setInterval(() => { if (VIEWS[current.name]?.platform && !document.hidden) render(); }, PLATFORM_REFRESH_MS);

startLive();
show(routeFromHash());
