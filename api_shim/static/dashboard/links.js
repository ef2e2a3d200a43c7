// Links between the pages (a job's, a peer's) and the jobs table the list and a peer's page
// share.

import { jobActions } from "./actions.js";
import { badge, el, mono, table, when } from "./dom.js";

export const jobLink = (id) => el("a", { href: `#jobs/${encodeURIComponent(id)}`, className: "record-link" }, mono(id));
export const peerLink = (id) => (id ? el("a", { href: `#peers/${encodeURIComponent(id)}`, className: "record-link" }, id) : null);

// The jobs table the list and the peer page share.
export function jobsTable(name, work, refresh) {
  return table(name, [
    ["Job", (j) => jobLink(j.job_id)],
    ["Title", (j) => j.title],
    ["State", (j) => el("span", {}, badge(j.state), j.state_reason ? el("small", {}, ` ${j.state_reason}`) : null)],
    ["Backend", (j) => j.execution?.target?.backend],
    ["Path", (j) => mono(j.execution?.target?.path)],
    ["Peer", (j) => peerLink(j.assigned_peer_id)],
    ["Due", (j) => when(j.due_at)],
    ["Updated", (j) => when(j.updated_at)],
    ["", (j) => jobActions(j, refresh)],
  ], work, (j) => j.job_id, "No jobs match.");
}

