// Small helpers every view uses: building DOM nodes, numbers for display, field errors, CSV.
// Money arrives as decimal strings; Number() is used only to display and to draw, never to
// compute anything that is sent back (the API does the money maths, in Decimal).

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

export const num = (s) => (s === null || s === undefined || s === "" ? null : Number(s));
export const fmt = (x, places = 2) =>
  x === null || x === undefined || Number.isNaN(x) ? "-" : x.toFixed(places);
// "58900.50000000" -> "58900.5", "67000" stays: only a fraction's trailing zeros go.
export const trim = (s) => {
  if (s === null || s === undefined) return "-";
  const text = String(s);
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
};
export const when = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "-");
export const signClass = (x) => (x === null || x === undefined ? "" : x >= 0 ? "up" : "down");

// The API's 422 names its field as a dotted path (`risk.maxLeverage`, `symbols[2]`,
// `action.qty`): the input whose name is the path, else its last part, gets the message.
export function showFieldError(form, err) {
  for (const e of $$(".field-error", form)) e.remove();
  for (const i of $$("[aria-invalid]", form)) i.removeAttribute("aria-invalid");
  const general = $(".form-error", form);
  if (!err) { if (general) general.textContent = ""; return; }
  const path = err.field || "";
  const leaf = path.split(".").pop().replace(/\[\d+\]$/, "");
  const input = (path && $(`[name="${path}"]`, form)) || (leaf && $(`[name="${leaf}"]`, form));
  if (input) {
    input.setAttribute("aria-invalid", "true");
    (input.closest("label") || input.parentElement).append(el("span", { class: "error field-error" }, err.message));
    if (general) general.textContent = "";
  } else if (general) {
    general.textContent = err.message;
  }
}

export function formValues(form, names) {
  const data = new FormData(form);
  const out = {};
  for (const n of names) {
    const v = String(data.get(n) ?? "").trim();
    if (v !== "") out[n] = v;
  }
  return out;
}

// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
const cell = (v) => {
  const s = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};
export const toCsv = (columns, rows) =>
  [columns.join(","), ...rows.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\r\n") + "\r\n";

export function download(name, text, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Dates typed in <input type=date> are UTC days, as the tables show times; `to` is included.
export function inDateRange(iso, from, to) {
  const t = Date.parse(iso);
  if (from && t < new Date(`${from}T00:00:00Z`).getTime()) return false;
  if (to && t >= new Date(`${to}T00:00:00Z`).getTime() + 86400000) return false;
  return true;
}
