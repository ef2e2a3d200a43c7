// One function per tab: load the records, return the nodes to show.

import { ACTIVE, TERMINAL, action } from "./actions.js";
import { daemon, platform } from "./api.js";
import { fires } from "./charts.js";
import { badge, el, mono, summary, table, when } from "./dom.js";
import { job } from "./job.js";
import { jobLink, jobsTable } from "./links.js";
import { peer } from "./peer.js";

const PAGE = 50;
const FILTERS = ["state", "backend", "peer", "q"];
const BACKENDS = ["claude-code", "codex", "gemini", "opencode", "shell"];
const JOB_ID = /^work-[0-9a-f]{12}$/;

// Cursors of the pages before this one, per filter set (the API pages forward only).
const earlier = new Map();
let form = null;

function jobsHash(params) {
  const text = params.toString();
  return text ? `jobs?${text}` : "jobs";
}

function filterForm(params) {
  const field = (label, input) => el("label", {}, label, input);
  const state = el("select", { name: "state", id: "filter-state" },
    el("option", { value: "" }, "any"),
    [...ACTIVE, ...TERMINAL].map((s) => el("option", { value: s, selected: params.get("state") === s }, s)));
  const input = (name, placeholder, extra = {}) =>
    el("input", { name, id: `filter-${name}`, value: params.get(name) || "", placeholder, autocomplete: "off", ...extra });
  return el("form", {
    id: "job-filters",
    className: "filters",
    onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(event.currentTarget);
      const q = String(data.get("q") || "").trim();
      if (JOB_ID.test(q)) { location.hash = `jobs/${q}`; return; }  // an id: its page
      const next = new URLSearchParams();
      for (const name of FILTERS) {
        const value = String(data.get(name) || "").trim();
        if (value) next.set(name, value);
      }
      if (params.get("limit")) next.set("limit", params.get("limit"));  // the page size stays
      location.hash = jobsHash(next);
    },
  },
  field("State", state),
  field("Backend", input("backend", "any", { list: "backends" })),
  el("datalist", { id: "backends" }, BACKENDS.map((b) => el("option", { value: b }))),
  field("Peer", input("peer", "peer id")),
  field("Title words", input("q", "words, or a job id", { type: "search" })),
  el("button", { type: "submit", className: "primary" }, "Filter"),
  FILTERS.some((n) => params.get(n)) ? el("a", { href: "#jobs", className: "clear-filters" }, "Clear") : null);
}

async function jobs(refresh, route) {
  const params = route.params;
  // `limit` in the hash sets the page size (#jobs?limit=200).
  const size = Math.min(1000, Math.max(1, Number.parseInt(params.get("limit"), 10) || PAGE));
  const query = new URLSearchParams({ view: "summary", limit: String(size) });
  for (const name of FILTERS) if (params.get(name)) query.set(name, params.get(name));
  const filterKey = query.toString();
  const cursor = params.get("cursor");
  if (cursor) query.set("cursor", cursor);
  const [data, counts] = await Promise.all([daemon("GET", `/jobs?${query}`), daemon("GET", "/stats/jobs")]);
  const work = data.work || [];
  // Totals by state (from the state indexes); each opens the list of that state.
  const byState = (state) => {
    const next = new URLSearchParams(params);
    next.delete("cursor");
    if (state) next.set("state", state); else next.delete("state");
    return `#${jobsHash(next)}`;
  };
  const totals = summary([
    ["all jobs", el("a", { href: byState(null) }, counts.total), "state-all"],
    ...Object.entries(counts.by_state).filter(([, n]) => n).map(([s, n]) => [s, el("a", { href: byState(s) }, n), `state-${s}`]),
  ]);
  const before = cursor ? (earlier.get(filterKey) || []) : [];
  if (!cursor) earlier.set(filterKey, []);
  const pageNumber = before.length + 1;
  const go = (nextCursor, stack) => () => {
    earlier.set(filterKey, stack);
    const next = new URLSearchParams(params);
    if (nextCursor) next.set("cursor", nextCursor); else next.delete("cursor");
    location.hash = jobsHash(next);
  };
  const pager = el("div", { className: "pager" },
    el("button", { id: "page-newer", disabled: !cursor, onclick: go(before[before.length - 1], before.slice(0, -1)) }, "← Newer"),
    el("span", { id: "page-info" }, `page ${pageNumber} · ${work.length} job${work.length === 1 ? "" : "s"}`),
    el("button", { id: "page-older", disabled: !data.next_cursor, onclick: go(data.next_cursor, [...before, cursor || ""]) }, "Older →"));
  // A live re-render keeps the form as it is (a half-filled filter is not reset under the
  // user); a new route builds it from the hash.
  if (!form || form.dataset.route !== route.key) {
    form = filterForm(params);
    form.dataset.route = route.key;
  }
  return [totals, form, jobsTable("jobs", work, refresh), pager];
}

async function templates(refresh) {
  // limit=1: the templates come whole on the first page; the jobs are not needed here.
  const data = await daemon("GET", "/jobs?view=summary&limit=1");
  const recurring = data.recurring || [];
  const act = (label, verb, t, extra = {}) => action(label, verb, t.calendar_id, {
    run: () => daemon("POST", `/jobs/${t.calendar_id}/${verb}`, {}),
    done: `${label}: ${t.calendar_id} is ${{ pause: "paused", resume: "active", cancel: "cancelled" }[verb]}.`,
    refresh,
    ...extra,
  });
  return [
    table("templates", [
      ["Template", (t) => mono(t.calendar_id)],
      ["Title", (t) => t.title],
      ["State", (t) => badge(t.state)],
      ["Cron", (t) => mono(`${t.cron} ${t.timezone || ""}`.trim())],
      ["Backend", (t) => t.execution?.target?.backend],
      ["Next due", (t) => (t.state === "active" ? when(t.next_due_at) : "—")],
      ["Last job", (t) => (t.last_occurrence_work_id ? jobLink(t.last_occurrence_work_id) : null)],
      ["", (t) => el("span", { className: "actions" },
        t.state === "active" ? act("Pause", "pause", t) : null,
        t.state === "paused" ? act("Resume", "resume", t) : null,
        t.state !== "cancelled" ? act("Cancel", "cancel", t, {
          confirm: `Cancel recurring job ${t.calendar_id}${t.title ? ` “${t.title}”` : ""}? It fires no more; this cannot be undone.`,
          className: "danger",
        }) : null,
      )],
    ], recurring, (t) => t.calendar_id, "No recurring templates."),
  ];
}

async function schedules() {
  const data = await daemon("GET", "/schedules");
  return [
    table("schedules", [
      ["Schedule", (s) => mono(s.schedule_id)],
      ["From → to", (s) => `${s.from_peer} → ${s.to_peer}`],
      ["Kind", (s) => s.kind],
      ["Text", (s) => el("span", { className: "clip" }, s.text)],
      ["When", (s) => mono(s.cron ? `${s.cron} ${s.timezone || ""}` : "once")],
      ["Next fire", (s) => when(s.fire_at)],
      ["State", (s) => badge(s.state)],
      ["Fired", (s) => s.fire_count],
    ], data.schedules || [], (s) => s.schedule_id, "No pending schedules."),
  ];
}

async function peers() {
  const data = await daemon("GET", "/peers");
  return [
    table("peers", [
      ["Peer", (p) => el("span", {}, el("a", { href: `#peers/${encodeURIComponent(p.peer_id)}`, className: "record-link" }, el("strong", {}, p.display_name || p.name)), el("br"), mono(p.peer_id),
        p.description ? el("small", { className: "clip description" }, p.description) : null)],
      ["Circle", (p) => p.circle],
      ["Status", (p) => badge(p.status)],
      ["Role", (p) => p.role],
      ["Backend", (p) => p.backend],
      ["Machine", (p) => p.machine],
      ["Path", (p) => mono(p.path)],
      ["Pending asks", (p) => p.pending_ask_count],
      ["Last seen", (p) => when(p.last_seen)],
    ], data.peers || [], (p) => p.peer_id, "No peers registered."),
  ];
}

async function asks(refresh) {
  const data = await daemon("GET", "/asks/open");
  const all = data.asks || [];
  const questions = all.filter((a) => a.kind === "question");
  const others = all.filter((a) => a.kind !== "question");
  return [
    el("h2", {}, "Blocking questions"),
    table("questions", [
      ["Question", (q) => el("span", {}, el("strong", {}, q.question?.prompt || q.text), el("br"), mono(q.correlation_id))],
      ["From", (q) => q.from_peer],
      ["Scope", (q) => q.question?.scope],
      ["Asked", (q) => when(q.created_at)],
      ["Answer", (q) => el("span", { className: "actions" },
        (q.question?.options || []).map((o, i) => {
          const button = action(o.title || o.id, "answer", q.correlation_id, {
            run: () => daemon("POST", "/answer", { correlation_id: q.correlation_id, option_id: o.id }),
            done: `Answered ${q.correlation_id}: ${o.title || o.id}.`,
            refresh,
            className: i === 0 ? "primary" : "",
          });
          button.dataset.option = o.id;
          return button;
        }),
      )],
    ], questions, (q) => q.correlation_id, "No blocking question is waiting."),
    el("h2", {}, "Pending asks"),
    table("asks", [
      ["Ask", (a) => mono(a.correlation_id)],
      ["From → to", (a) => `${a.from_peer} → ${a.to_peer || "anyone"}`],
      ["Kind", (a) => a.kind],
      ["Text", (a) => el("span", { className: "clip" }, a.text)],
      ["Asked", (a) => when(a.created_at)],
    ], others, (a) => a.correlation_id, "No open asks."),
  ];
}

async function sessions() {
  const data = await platform("GET", "/sessions");
  const h = data.healthSummary || {};
  return [
    summary([["sessions", data.count], ["green", h.green, "health-green"], ["yellow", h.yellow, "health-yellow"], ["red", h.red, "health-red"]]),
    table("sessions", [
      ["Session", (s) => el("span", {}, el("strong", {}, s.identifier), el("br"), mono(s.id))],
      ["Status", (s) => badge(s.status)],
      ["Health", (s) => el("span", {}, badge(s.health?.level, "health"),
        (s.health?.signals || []).map((g) => el("small", { className: "signal" }, ` ${g.kind || g.code || g.type || JSON.stringify(g)}`)))],
      ["Work", (s) => s.workType],
      ["Priority", (s) => s.priority],
      ["Worker", (s) => s.workerId],
      ["Last tool", (s) => s.lastTool],
      ["Queued", (s) => when(s.queuedAt)],
      ["Updated", (s) => when(s.updatedAt)],
    ], data.sessions || [], (s) => s.id, "No sessions."),
  ];
}

async function workers() {
  const data = await platform("GET", "/workers");
  const s = data.summary || {};
  return [
    summary([["hosts", s.totalWorkers], ["active", s.activeWorkers], ["capacity", s.totalCapacity], ["in use", s.totalActive], ["available", s.availableCapacity], ["queue", s.queueLength]]),
    table("workers", [
      ["Host", (w) => el("span", {}, el("strong", {}, w.hostname), el("br"), mono(w.id))],
      ["Status", (w) => badge(w.status)],
      ["Host status", (w) => badge(w.hostStatus?.status)],
      ["Load", (w) => `${w.activeCount} / ${w.capacity}`],
      ["Version", (w) => w.version],
      ["Region", (w) => w.region],
      ["Last heartbeat", (w) => when(w.lastHeartbeat)],
      ["Registered", (w) => when(w.registeredAt)],
    ], data.workers || [], (w) => w.id, "No worker hosts registered."),
  ];
}

async function mutations(refresh) {
  const data = await platform("GET", "/daemon/mutations");
  return [
    table("mutations", [
      ["Mutation", (m) => mono(m.id)],
      ["Op", (m) => el("span", {}, el("strong", {}, m.op), el("br"), el("small", { className: "clip" }, JSON.stringify(m.params)))],
      ["Host", (m) => mono(m.workerHostId)],
      ["Status", (m) => el("span", {}, badge(m.status), m.error ? el("small", {}, ` ${m.error}`) : null)],
      ["Requested", (m) => when(m.requestedAt)],
      ["Deliveries", (m) => m.deliveryCount],
      ["", (m) => (m.status === "pending" ? action("Cancel", "cancel", m.id, {
        confirm: `Cancel mutation ${m.id} (${m.op})? The host will not apply it.`,
        run: () => platform("DELETE", `/daemon/mutations/${m.id}`),
        done: `Cancelled mutation ${m.id}.`,
        refresh,
        className: "danger",
      }) : null)],
    ], data.mutations || [], (m) => m.id, "No mutations."),
  ];
}

export const VIEWS = {
  jobs: { title: "Jobs", load: jobs, events: /^job/ },
  job: { title: (route) => `Job ${route.arg}`, load: job, events: /^job/, concerns: (e, route) => e.job_id === route.arg, detail: true },
  templates: { title: "Templates", load: templates, events: /^(job|template|calendar)/ },
  schedules: { title: "Schedules", load: schedules, events: /^schedule/ },
  peers: { title: "Peers", load: peers, events: /^peer/ },
  peer: { title: (route) => `Peer ${route.arg}`, load: peer, events: /^(peer|ask|job)/, detail: true },
  fires: { title: "Fires in the last hour", load: fires, events: /^job_state_changed$/, every: 5000 },
  asks: { title: "Asks & questions", load: asks, events: /^ask/ },
  sessions: { title: "Sessions", load: sessions, platform: true },
  workers: { title: "Workers", load: workers, platform: true },
  mutations: { title: "Mutations", load: mutations, platform: true },
};
