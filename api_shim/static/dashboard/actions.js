// Buttons that change something: an optional confirmation (an in-page <dialog>, outside the
// view so a live re-render does not close it), then the call, then what happened, said in the
// feedback line (what was done, or the error the API answered).

import { daemon } from "./api.js";
import { el } from "./dom.js";

const dialog = document.getElementById("confirm");
const question = document.getElementById("confirm-text");
const yes = document.getElementById("confirm-yes");
const feedback = document.getElementById("feedback");
document.getElementById("confirm-no").addEventListener("click", () => dialog.close("no"));
yes.addEventListener("click", () => dialog.close("yes"));

export function confirmed(text, verb) {
  question.textContent = text;
  yes.textContent = verb;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// kind: "ok", "error", "busy"; an empty text clears the line.
export function say(text, kind = "ok") {
  if (!text) {
    feedback.replaceChildren();
    feedback.className = "feedback";
    delete feedback.dataset.kind;
    return;
  }
  feedback.replaceChildren(
    el("span", { className: "feedback-text" }, text),
    el("button", { className: "dismiss", "aria-label": "Dismiss", onclick: () => say("") }, "×"),
  );
  feedback.className = `feedback ${kind}`;
  feedback.dataset.kind = kind;
}

// A button for `name` on record `id`: asks `confirm` first when given, runs `run`, says `done`
// (or the API's error), then `refresh`es the view.
export function action(label, name, id, { confirm, run, done, refresh, className = "" }) {
  return el("button", {
    className: `action action-${name} ${className}`.trim(),
    "data-action": name,
    "data-target": id,
    onclick: async (event) => {
      const button = event.currentTarget;
      if (confirm && !(await confirmed(confirm, label))) return;
      button.disabled = true;
      say(`${label}: ${id}…`, "busy");
      try {
        const result = await run();
        say(typeof done === "function" ? done(result) : done, "ok");
      } catch (error) {
        say(error.message, "error");
        button.disabled = false;
      }
      if (refresh) await refresh();
    },
  }, label);
}

export const ACTIVE = ["queued", "dispatching", "delivered", "running", "awaiting_input", "blocked"];
export const TERMINAL = ["completed", "failed", "cancelled", "expired", "unavailable"];
const RUN_FROM = ["queued", "failed", "unavailable"];
const RETRY_FROM = ["failed", "unavailable", "delivered"];

// Cancel / run / retry of a job, as its state allows them.
export function jobActions(job, refresh) {
  const id = job.job_id;
  const title = job.title ? ` “${job.title}”` : "";
  return el("span", { className: "actions" },
    RUN_FROM.includes(job.state) ? action("Run", "run", id, {
      confirm: `Run job ${id}${title} now? It starts a new attempt.`,
      run: () => daemon("POST", `/jobs/${id}/run`, {}),
      done: `Run requested for ${id}.`,
      refresh,
    }) : null,
    RETRY_FROM.includes(job.state) ? action("Retry", "retry", id, {
      confirm: `Retry job ${id}${title}? It starts a new attempt.`,
      run: () => daemon("POST", `/jobs/${id}/retry`, {}),
      done: `Retry requested for ${id}.`,
      refresh,
    }) : null,
    ACTIVE.includes(job.state) ? action("Cancel", "cancel", id, {
      confirm: `Cancel job ${id}${title}? A running executor is stopped.`,
      run: () => daemon("POST", `/jobs/${id}/cancel`, { reason: "cancelled_from_dashboard" }),
      done: (answer) => (answer?.status?.state === "cancelled"
        ? `Cancelled ${id}.`
        : `Cancel requested for ${id}: its executor is being stopped.`),
      refresh,
      className: "danger",
    }) : null,
  );
}
