// A peer's page (#peers/<id>): who it is, its open asks (both ways), the deliveries queued for
// it (looked at, never taken: a polling peer drains them itself), and its jobs.

import { daemon } from "./api.js";
import { badge, el, mono, summary, table, when } from "./dom.js";
import { jobsTable } from "./links.js";

const JOBS_SHOWN = 50;

export async function peer(refresh, route) {
  const id = encodeURIComponent(route.arg);
  const p = await daemon("GET", `/peers/${id}`);
  const peerId = encodeURIComponent(p.peer_id);
  const [asks, deliveries, jobs] = await Promise.all([
    daemon("GET", `/asks/pending?peer_id=${peerId}&direction=both`),
    daemon("GET", `/peers/${peerId}/deliveries`),
    daemon("GET", `/jobs?view=summary&limit=${JOBS_SHOWN}&peer=${peerId}`),
  ]);
  const work = jobs.work || [];
  return [
    el("div", { className: "job-head" },
      el("h3", { className: "peer-name" }, p.display_name || p.name),
      badge(p.status, "peer-status"),
      mono(p.peer_id)),
    p.description ? el("p", { className: "description" }, p.description) : null,
    summary([
      ["circle", p.circle],
      ["role", p.role],
      ["backend", p.backend],
      ["machine", p.machine],
      ["pending asks", p.pending_ask_count],
      ["last seen", when(p.last_seen)],
    ]),
    el("p", {}, "Path ", mono(p.path)),
    el("section", { className: "panel", "data-section": "asks" },
      el("h2", {}, "Open asks"),
      table("peer-asks", [
        ["Ask", (a) => mono(a.correlation_id)],
        ["Direction", (a) => badge(a.direction)],
        ["From → to", (a) => `${a.from_peer} → ${a.to_peer || "anyone"}`],
        ["Text", (a) => el("span", { className: "clip" }, a.text)],
        ["Asked", (a) => when(a.created_at)],
      ], asks.asks || [], (a) => a.correlation_id, "No open asks to or from this peer.")),
    el("section", { className: "panel", "data-section": "deliveries" },
      el("h2", {}, "Queued deliveries"),
      table("peer-deliveries", [
        ["Delivery", (d) => mono(d.delivery_id)],
        ["Kind", (d) => d.kind],
        ["From", (d) => d.from_peer],
        ["Text", (d) => el("span", { className: "clip" }, d.text)],
        ["Queued", (d) => when(d.created_at)],
        ["Expires", (d) => when(d.expires_at)],
      ], deliveries.deliveries || [], (d) => d.delivery_id, "Nothing queued (a peer with a live socket gets its deliveries at once).")),
    el("section", { className: "panel", "data-section": "jobs" },
      el("h2", {}, "Jobs"),
      jobsTable("peer-jobs", work, refresh),
      jobs.next_cursor ? el("p", {}, el("a", { href: `#jobs?peer=${peerId}` }, "All of its jobs →")) : null),
  ];
}
