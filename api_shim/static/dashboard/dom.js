// Small DOM helpers: every value goes in as text, never as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A time in UTC to the minute, or with `seconds` to the second.
export function when(iso, seconds = false) {
  if (!iso) return "—";
  const t = typeof iso === "number" ? new Date(iso) : new Date(iso);
  if (Number.isNaN(t.getTime())) return String(iso);
  const text = t.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  return seconds ? text : text.replace(/:\d\dZ$/, "Z");
}

export function badge(value, extra = "") {
  const text = value ?? "—";
  return el("span", { className: `badge badge-${String(text).replace(/[^a-z_-]/gi, "")} ${extra}`.trim() }, text);
}

export function mono(text) {
  return el("code", {}, text ?? "—");
}

// A table: columns are [heading, row => cell content]; each row carries data-id.
export function table(name, columns, rows, idOf, empty) {
  if (!rows.length) return el("p", { className: "empty", "data-empty": name }, empty);
  return el(
    "table",
    { className: "records", "data-table": name },
    el("thead", {}, el("tr", {}, columns.map(([heading]) => el("th", {}, heading)))),
    el(
      "tbody",
      {},
      rows.map((row) =>
        el("tr", { "data-id": idOf(row) }, columns.map(([, cell]) => el("td", {}, cell(row) ?? "—"))),
      ),
    ),
  );
}

export function summary(items) {
  return el(
    "dl",
    { className: "summary" },
    items.map(([label, value, cls]) => el("div", { className: cls || "" }, el("dt", {}, label), el("dd", {}, value ?? "—"))),
  );
}

// An SVG element: attributes as given (presentation attributes, never a style), text as text.
const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") node.setAttribute("class", value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A block of text kept as written (output, a prompt); "—" when there is none.
export function pre(text, name) {
  if (text === undefined || text === null || text === "") return el("p", { className: "empty-text", "data-text": name }, "—");
  return el("pre", { className: "text", "data-text": name }, typeof text === "string" ? text : JSON.stringify(text, null, 2));
}
