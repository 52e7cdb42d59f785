// The ledger page: every balance change, filtered by kind and date, exported as CSV.

import { state } from "./state.js";
import { $, el, num, fmt, when, signClass, formValues, toCsv, download, inDateRange } from "./util.js";

const COLUMNS = ["seq", "at", "kind", "amount", "balanceAfter", "positionId", "note", "id"];

function filtered() {
  const { kind, from, to } = formValues($("#ledger-filter"), ["kind", "from", "to"]);
  return state.ledger.filter((e) => (!kind || e.kind === kind) && inDateRange(e.at, from, to));
}

export function renderLedger() {
  const rows = filtered();
  // Newest first on screen; the CSV keeps booking order, as the API gives it.
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
}

export function wireLedger() {
  $("#ledger-filter").addEventListener("input", renderLedger);
  $("#ledger-csv").addEventListener("click", () =>
    download(`cogmora-ledger-${new Date().toISOString().slice(0, 10)}.csv`, toCsv(COLUMNS, filtered())));
}
