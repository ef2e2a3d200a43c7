// One function per tab: load the records, return the nodes to show.

import { daemon, platform } from "./api.js";
import { badge, el, mono, summary, table, when } from "./dom.js";

function actionButton(label, action, id, run, extra = {}) {
  return el("button", { className: `action action-${action}`, "data-action": action, "data-target": id, onclick: run, ...extra }, label);
}

async function jobs() {
  const data = await daemon("GET", "/jobs?view=summary");
  const work = data.work || [];
  const counts = {};
  for (const j of work) counts[j.state] = (counts[j.state] || 0) + 1;
  return [
    summary([["jobs", work.length], ...Object.entries(counts).sort().map(([s, n]) => [s, n, `state-${s}`])]),
    table("jobs", [
      ["Job", (j) => mono(j.job_id)],
      ["Title", (j) => j.title],
      ["State", (j) => el("span", {}, badge(j.state), j.state_reason ? el("small", {}, ` ${j.state_reason}`) : null)],
      ["Backend", (j) => j.execution?.target?.backend],
      ["Path", (j) => mono(j.execution?.target?.path)],
      ["Peer", (j) => j.assigned_peer_id],
      ["Due", (j) => when(j.due_at)],
      ["Updated", (j) => when(j.updated_at)],
    ], work, (j) => j.job_id, "No jobs yet."),
  ];
}

async function templates(refresh) {
  const data = await daemon("GET", "/jobs?view=summary");
  const recurring = data.recurring || [];
  const act = (verb, id) => async (event) => {
    event.target.disabled = true;
    await daemon("POST", `/jobs/${id}/${verb}`, {});
    await refresh();
  };
  return [
    table("templates", [
      ["Template", (t) => mono(t.calendar_id)],
      ["Title", (t) => t.title],
      ["State", (t) => badge(t.state)],
      ["Cron", (t) => mono(`${t.cron} ${t.timezone || ""}`.trim())],
      ["Backend", (t) => t.execution?.target?.backend],
      ["Next due", (t) => (t.state === "active" ? when(t.next_due_at) : "—")],
      ["Last job", (t) => t.last_occurrence_work_id],
      ["", (t) => el("span", { className: "actions" },
        t.state === "active" ? actionButton("Pause", "pause", t.calendar_id, act("pause", t.calendar_id)) : null,
        t.state === "paused" ? actionButton("Resume", "resume", t.calendar_id, act("resume", t.calendar_id)) : null,
        t.state !== "cancelled" ? actionButton("Cancel", "cancel", t.calendar_id, act("cancel", t.calendar_id), { className: "action action-cancel danger" }) : null,
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
      ["Peer", (p) => el("span", {}, el("strong", {}, p.display_name || p.name), el("br"), mono(p.peer_id),
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
  const answer = (cid, option) => async (event) => {
    event.target.disabled = true;
    await daemon("POST", "/answer", { correlation_id: cid, option_id: option });
    await refresh();
  };
  return [
    el("h2", {}, "Blocking questions"),
    table("questions", [
      ["Question", (q) => el("span", {}, el("strong", {}, q.question?.prompt || q.text), el("br"), mono(q.correlation_id))],
      ["From", (q) => q.from_peer],
      ["Scope", (q) => q.question?.scope],
      ["Asked", (q) => when(q.created_at)],
      ["Answer", (q) => el("span", { className: "actions" },
        (q.question?.options || []).map((o, i) =>
          actionButton(o.title || o.id, "answer", q.correlation_id, answer(q.correlation_id, o.id), {
            "data-option": o.id,
            className: `action action-answer${i === 0 ? " primary" : ""}`,
          }),
        ),
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
  const cancel = (id) => async (event) => {
    event.target.disabled = true;
    await platform("DELETE", `/daemon/mutations/${id}`);
    await refresh();
  };
  return [
    table("mutations", [
      ["Mutation", (m) => mono(m.id)],
      ["Op", (m) => el("span", {}, el("strong", {}, m.op), el("br"), el("small", { className: "clip" }, JSON.stringify(m.params)))],
      ["Host", (m) => mono(m.workerHostId)],
      ["Status", (m) => el("span", {}, badge(m.status), m.error ? el("small", {}, ` ${m.error}`) : null)],
      ["Requested", (m) => when(m.requestedAt)],
      ["Deliveries", (m) => m.deliveryCount],
      ["", (m) => (m.status === "pending" ? actionButton("Cancel", "cancel", m.id, cancel(m.id), { className: "action action-cancel danger" }) : null)],
    ], data.mutations || [], (m) => m.id, "No mutations."),
  ];
}

export const VIEWS = {
  jobs: { title: "Jobs", load: jobs, events: /^job/ },
  templates: { title: "Templates", load: templates, events: /^(job|template|calendar)/ },
  schedules: { title: "Schedules", load: schedules, events: /^schedule/ },
  peers: { title: "Peers", load: peers, events: /^peer/ },
  asks: { title: "Asks & questions", load: asks, events: /^ask/ },
  sessions: { title: "Sessions", load: sessions, platform: true },
  workers: { title: "Workers", load: workers, platform: true },
  mutations: { title: "Mutations", load: mutations, platform: true },
};
