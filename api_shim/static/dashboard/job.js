// A job's page (#jobs/<id>): what was asked, its state history with the trace's stages on a
// timeline, its attempts, the output we keep, its result, and cancel / run / retry.

import { jobActions } from "./actions.js";
import { ApiError, daemon } from "./api.js";
import { badge, el, mono, pre, summary, svg, table, when } from "./dom.js";
import { peerLink } from "./links.js";

async function traceOf(id) {
  try {
    return (await daemon("GET", `/traces/${encodeURIComponent(id)}`)).stages || [];
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return [];  // none kept (yet)
    throw error;
  }
}

function fields(rows) {
  return el("dl", { className: "fields" },
    rows.map(([label, value, name]) => el("div", { "data-field": name || label.toLowerCase() }, el("dt", {}, label), el("dd", {}, value ?? "—"))));
}

const ms = (iso) => { const t = Date.parse(iso); return Number.isNaN(t) ? null : t; };

function span(msValue) {
  if (msValue < 1000) return `${Math.round(msValue)} ms`;
  if (msValue < 120_000) return `${(msValue / 1000).toFixed(1)} s`;
  if (msValue < 7_200_000) return `${(msValue / 60_000).toFixed(1)} min`;
  return `${(msValue / 3_600_000).toFixed(1)} h`;
}

// The stages as dots on a time axis from the first to the last; labels that would overlap go
// to the next row down.
function timeline(stages) {
  const timed = stages.map((s) => ({ ...s, t: ms(s.ts) })).filter((s) => s.t !== null);
  if (!timed.length) return el("p", { className: "empty" }, "No stages recorded.");
  const t0 = timed[0].t;
  const t1 = Math.max(timed[timed.length - 1].t, t0 + 1);
  const W = 1000, left = 30, right = 970, axisY = 30, rowH = 34, labelW = 120;
  const rows = [];
  const placed = timed.map((s) => {
    const x = left + ((s.t - t0) / (t1 - t0)) * (right - left);
    const flip = x > right - labelW;  // near the right end the label goes left of its dot
    const start = flip ? x - labelW : x;
    let row = rows.findIndex((end) => end < start);
    if (row < 0) { rows.push(-Infinity); row = rows.length - 1; }
    rows[row] = start + labelW;
    return { ...s, x, row, flip };
  });
  const H = axisY + 20 + rows.length * rowH;
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, className: "timeline", role: "img", "aria-label": "stages on a time axis" },
    svg("line", { x1: left, y1: axisY, x2: right, y2: axisY, className: "axis" }),
    svg("text", { x: left, y: 14, className: "tick" }, when(timed[0].ts, true)),
    svg("text", { x: right, y: 14, className: "tick end" }, `+${span(t1 - t0)}`),
    placed.map((s) => {
      const y = axisY + 26 + s.row * rowH;
      const look = (s.status && s.status !== "ok" ? s.status : s.state) || "ok";
      return svg("g", { className: `stage stage-${String(look).replace(/[^a-z_-]/gi, "")}`, "data-stage": s.stage },
        svg("title", {}, `${s.stage} · ${s.state || ""} · ${s.ts}`),
        svg("line", { x1: s.x, y1: axisY, x2: s.x, y2: y - 10, className: "stem" }),
        svg("circle", { cx: s.x, cy: axisY, r: 5 }),
        svg("text", { x: s.flip ? s.x - 3 : s.x + 3, y, className: `label${s.flip ? " end" : ""}` }, s.stage),
        svg("text", { x: s.flip ? s.x - 3 : s.x + 3, y: y + 12, className: `sub${s.flip ? " end" : ""}` }, `+${span(s.t - t0)}`));
    }));
}

function attemptsTable(attempts) {
  return table("attempts", [
    ["Attempt", (a) => mono(a.attempt_id)],
    ["Fire", (a) => a.fire],
    ["Status", (a) => el("span", {}, badge(a.status), a.phase ? el("small", {}, ` ${a.phase}`) : null)],
    ["Started", (a) => when(a.started_at, true)],
    ["Ended", (a) => when(a.ended_at, true)],
    ["Exit", (a) => a.exit_code],
    ["Where", (a) => (a.assigned_peer_id ? peerLink(a.assigned_peer_id)
      : el("span", {}, a.machine || "—", a.executor ? el("small", {}, ` pid ${a.executor.pid}`) : null))],
    ["Error", (a) => (a.error && Object.keys(a.error).length ? el("small", { className: "clip" }, a.error.reason || JSON.stringify(a.error)) : null)],
  ], attempts, (a) => a.attempt_id, "No attempt yet: the job has not fired.");
}

function resultBlock(result, state) {
  if (!result || result.result_state === "not_ready") {
    return el("p", { className: "empty", "data-result": "not_ready" }, `Not ready: the job is ${state}.`);
  }
  return el("div", { "data-result": result.state },
    fields([
      ["State", badge(result.state), "result-state"],
      ["Completed", when(result.completed_at, true), "completed"],
    ]),
    el("h4", {}, "Summary"), pre(result.summary, "result-summary"),
    result.data && Object.keys(result.data).length ? [el("h4", {}, "Data"), pre(result.data, "result-data")] : null,
    result.error && Object.keys(result.error).length ? [el("h4", {}, "Error"), pre(result.error, "result-error")] : null,
    result.artifacts && result.artifacts.length ? [el("h4", {}, "Artifacts"), pre(result.artifacts, "artifacts")] : null);
}

export async function job(refresh, route) {
  const id = route.arg;
  const [status, stages, result] = await Promise.all([
    daemon("GET", `/jobs/${encodeURIComponent(id)}`),
    traceOf(id),
    daemon("GET", `/jobs/${encodeURIComponent(id)}/result`),
  ]);
  const j = status.status;
  const target = j.execution?.target || {};
  const prompt = j.request?.execution?.prompt || {};
  const attempts = j.runner?.attempts || [];
  const notes = j.progress_events || [];
  return [
    el("div", { className: "job-head" },
      el("h3", { className: "job-title" }, j.title || "(untitled)"),
      badge(j.state, "job-state"),
      j.state_reason ? el("small", { className: "job-reason" }, j.state_reason) : null,
      jobActions(j, refresh)),
    summary([["attempts", attempts.length], ["stages", stages.length], ["created", when(j.created_at, true)], ["updated", when(j.updated_at, true)]]),
    el("section", { className: "panel", "data-section": "request" },
      el("h2", {}, "Request"),
      fields([
        ["Title", j.title],
        ["Backend", target.backend],
        ["Path", mono(target.path)],
        ["Due", when(j.due_at), "due"],
        ["Machine", target.machine],
        ["Peer", peerLink(j.assigned_peer_id)],
        ["Scope", j.execution?.process_scope],
        ["Continuity", j.execution?.continuity],
        ["Deadline", when(j.deadline_at)],
        ["Expires", when(j.expires_at)],
      ]),
      el("h4", {}, `Prompt${prompt.source ? ` (${prompt.source})` : ""}`),
      pre(prompt.body, "prompt")),
    el("section", { className: "panel", "data-section": "history" },
      el("h2", {}, "State history"),
      timeline(stages),
      table("stages", [
        ["#", (s) => s.seq],
        ["When", (s) => when(s.ts, true)],
        ["Stage", (s) => el("strong", {}, s.stage)],
        ["State", (s) => badge(s.state)],
        ["Detail", (s) => (s.detail && Object.keys(s.detail).length ? el("small", { className: "clip" }, JSON.stringify(s.detail)) : null)],
      ], stages, (s) => String(s.seq), "No stages recorded.")),
    el("section", { className: "panel", "data-section": "attempts" },
      el("h2", {}, "Attempts"), attemptsTable(attempts)),
    el("section", { className: "panel", "data-section": "output" },
      el("h2", {}, "Output"),
      el("p", { className: "hint" }, "What the job keeps: the result summary (for a shell job, the tail of its stdout), the tail of stderr of a failed run, and progress notes."),
      el("h4", {}, "Result summary / stdout tail"), pre(j.result_summary, "stdout"),
      el("h4", {}, "stderr tail"), pre(j.error?.message, "stderr"),
      el("h4", {}, "Progress notes"),
      table("notes", [
        ["When", (n) => when(n.at, true)],
        ["State", (n) => n.state],
        ["Phase", (n) => n.phase],
        ["Note", (n) => n.note],
      ], notes, (n) => n.at, "No progress notes.")),
    el("section", { className: "panel", "data-section": "result" },
      el("h2", {}, "Result"), resultBlock(result.result, j.state)),
  ];
}
