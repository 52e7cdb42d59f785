// The ledger page: every balance change, filtered by kind and date on the server
// (GET /v1/ledger?kind=&since=&until=, served from registered queries), and exported as
// the server's own CSV of the same filters (format=csv), so what is shown, what is
// downloaded and what a script gets are one answer.

import { api, apiText } from "./api.js";
import { state } from "./state.js";
import { $, el, num, fmt, when, signClass, showFieldError, download } from "./util.js";

let shown = [];
let asked = 0; // the latest request: an older answer arriving late is dropped

// The form's days are UTC days and "To" includes its day: until is the next day's 00:00.
function filters() {
  const form = $("#ledger-filter");
  const params = new URLSearchParams();
  const kind = form.kind.value;
  const since = form.since.value;
  const to = form.until.value;
  if (kind) params.set("kind", kind);
  if (since) params.set("since", since);
  if (to) {
    const next = new Date(`${to}T00:00:00Z`);
    if (Number.isNaN(next.getTime())) params.set("until", to); // the API says what is wrong
    else { next.setUTCDate(next.getUTCDate() + 1); params.set("until", next.toISOString().slice(0, 10)); }
  }
  return params;
}

export async function loadLedger() {
  const form = $("#ledger-filter");
  const params = filters();
  const mine = ++asked;
  try {
    const rows = await api("GET", `/v1/ledger${params.size ? `?${params}` : ""}`);
    if (mine !== asked) return;
    shown = rows;
    showFieldError(form, null);
  } catch (err) {
    if (mine !== asked) return;
    shown = [];
    showFieldError(form, err);
  }
  renderLedger();
}

export function renderLedger() {
  const rows = shown;
  // Newest first on screen; the CSV keeps the API's order.
  $("#ledger-rows").replaceChildren(...[...rows].reverse().map((e) => {
    const amount = num(e.amount);
    return el("tr", { "data-id": e.id, "data-kind": e.kind },
      el("td", {}, String(e.seq)), el("td", {}, when(e.at)), el("td", { class: "kind" }, e.kind),
      el("td", { class: `amount ${signClass(amount)}` }, fmt(amount, 4)),
      el("td", {}, fmt(num(e.balanceAfter), 4)),
      el("td", {}, e.positionId ? el("code", {}, e.positionId.slice(0, 8)) : ""),
      el("td", {}, e.note ?? ""));
  }));
  const sum = rows.reduce((s, e) => s + num(e.amount), 0);
  $("#ledger-summary").textContent = `${rows.length} of ${state.ledger.length} entries; sum ${fmt(sum, 4)} USDT`;
  $("#no-ledger").hidden = rows.length > 0;
}

async function exportCsv() {
  const form = $("#ledger-filter");
  const params = filters();
  params.set("format", "csv");
  try {
    const text = await apiText("GET", `/v1/ledger?${params}`);
    showFieldError(form, null);
    download(`cogmora-ledger-${new Date().toISOString().slice(0, 10)}.csv`, text);
  } catch (err) { showFieldError(form, err); }
}

export function wireLedger() {
  $("#ledger-filter").addEventListener("input", loadLedger);
  $("#ledger-filter").addEventListener("submit", (e) => { e.preventDefault(); loadLedger(); });
  $("#ledger-csv").addEventListener("click", exportCsv);
}
