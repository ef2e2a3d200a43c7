// Fires per minute and fire lateness over the last hour (GET /stats/fires), drawn as inline
// SVG: no chart library, no other origin.

import { daemon } from "./api.js";
import { el, svg, summary } from "./dom.js";

const W = 1000, H = 240, L = 56, R = 16, T = 14, B = 34;

function niceMax(value) {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

// A top for counts whose quarters are whole numbers: 4, 8, 12, 16, 20, 40, 80, 160, ...
function countMax(value) {
  let top = 4;
  while (top < value) top = top < 20 ? top + 4 : top * 2;
  return top;
}

const clock = (iso) => new Date(iso).toISOString().slice(11, 16);
const seconds = (s) => (s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(s < 10 ? 2 : 1)} s`);

// The frame: y grid with labels, x labels every 10 minutes.
function frame(minutes, top, label) {
  const n = minutes.length;
  const xOf = (i) => L + ((i + 0.5) / n) * (W - L - R);
  const yOf = (v) => H - B - (v / top) * (H - B - T);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => svg("g", { className: "grid" },
    svg("line", { x1: L, x2: W - R, y1: yOf(top * f), y2: yOf(top * f) }),
    svg("text", { x: L - 6, y: yOf(top * f) + 4, className: "tick end" }, label(top * f))));
  const ticks = minutes.map((m, i) => (i % 10 === 0 || i === n - 1
    ? svg("text", { x: xOf(i), y: H - B + 18, className: "tick middle" }, clock(m.at)) : null));
  return { xOf, yOf, nodes: [grid, ticks, svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, className: "axis" })] };
}

function firesChart(minutes) {
  const top = countMax(Math.max(...minutes.map((m) => m.fires)));
  const { xOf, yOf, nodes } = frame(minutes, top, (v) => String(v));
  const barW = Math.max(2, ((W - L - R) / minutes.length) * 0.7);
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, className: "chart", "data-chart": "fires", role: "img", "aria-label": "fires per minute" },
    nodes,
    minutes.map((m, i) => (m.fires ? svg("g", { className: "bar", "data-minute": m.at, "data-fires": m.fires },
      svg("title", {}, `${clock(m.at)}: ${m.fires} fire${m.fires === 1 ? "" : "s"} (${m.due_fires} due)`),
      svg("rect", { x: xOf(i) - barW / 2, y: yOf(m.fires), width: barW, height: yOf(0) - yOf(m.fires), className: "all" }),
      svg("rect", { x: xOf(i) - barW / 2, y: yOf(m.due_fires), width: barW, height: yOf(0) - yOf(m.due_fires), className: "due" }),
    ) : null)));
}

function latenessChart(minutes) {
  const top = niceMax(Math.max(0.001, ...minutes.map((m) => m.lateness_max_s ?? 0)));
  const { xOf, yOf, nodes } = frame(minutes, top, (v) => seconds(v));
  const line = (key) => {
    const points = minutes.map((m, i) => (m[key] === null ? null : `${xOf(i)},${yOf(m[key])}`)).filter(Boolean);
    return points.length ? svg("polyline", { points: points.join(" "), className: `line ${key}` }) : null;
  };
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, className: "chart", "data-chart": "lateness", role: "img", "aria-label": "fire lateness per minute" },
    nodes, line("lateness_max_s"), line("lateness_mean_s"),
    minutes.map((m, i) => (m.lateness_max_s === null ? null : svg("g", { className: "point", "data-minute": m.at, "data-max": m.lateness_max_s },
      svg("title", {}, `${clock(m.at)}: mean ${seconds(m.lateness_mean_s)}, max ${seconds(m.lateness_max_s)} (${m.due_fires} due fires)`),
      svg("circle", { cx: xOf(i), cy: yOf(m.lateness_max_s), r: 3.5, className: "max" }),
      svg("circle", { cx: xOf(i), cy: yOf(m.lateness_mean_s), r: 3.5, className: "mean" })))));
}

const legend = (items) => el("p", { className: "legend" }, items.map(([cls, text]) => el("span", { className: `key ${cls}` }, text)));

export async function fires() {
  const data = await daemon("GET", "/stats/fires?minutes=60");
  const minutes = data.minutes || [];
  const total = minutes.reduce((n, m) => n + m.fires, 0);
  const due = minutes.reduce((n, m) => n + m.due_fires, 0);
  const lateSum = minutes.reduce((n, m) => n + (m.lateness_mean_s ?? 0) * m.due_fires, 0);
  const worst = Math.max(0, ...minutes.map((m) => m.lateness_max_s ?? 0));
  return [
    summary([
      ["fires", total, "fires-total"],
      ["due fires", due],
      ["mean lateness", due ? seconds(lateSum / due) : "—", "lateness-mean"],
      ["max lateness", due ? seconds(worst) : "—", "lateness-max"],
    ]),
    el("section", { className: "panel" },
      el("h2", {}, "Fires per minute"),
      legend([["all", "all fires (due, run, retry)"], ["due", "fires because due"]]),
      firesChart(minutes)),
    el("section", { className: "panel" },
      el("h2", {}, "Fire lateness (due_at to acquire)"),
      legend([["max", "max"], ["mean", "mean"]]),
      latenessChart(minutes)),
    el("p", { className: "hint" }, `Minutes in UTC, up to ${clock(data.now)}. Counted when a fire acquires its attempt; a scheduled message is not a job fire.`),
  ];
}
