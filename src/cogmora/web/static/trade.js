// The trade page: account and equity curve, prices and watchlist, the chart, open
// positions (edited in place), triggers and history. Renders from `state`; `refresh`
// (app.js) fills it from the API after every event.

import { api } from "./api.js";
import { lineChart } from "./chart.js";
import {
  actionField, bracketed, expiresOf, ladderInputs, ladderOf, moveAfterOf, orderFieldsOf, orderInputs,
  trailingInputs, trailingOf,
} from "./orders.js";
import { state } from "./state.js";
import {
  $, el, num, fmt, trim, when, signClass, showFieldError, formValues, toCsv, download, inDateRange,
} from "./util.js";

let onChange = () => {};
export function setRefresher(fn) { onChange = fn; }

// ------------------------------------------------------------------ account and equity

export function renderAccount() {
  const a = state.account;
  if (!a) return;
  $("#balance").textContent = fmt(num(a.balance));
  $("#equity").textContent = fmt(num(a.equity));
  $("#upnl").textContent = fmt(num(a.unrealizedPnl));
  $("#upnl").className = signClass(num(a.unrealizedPnl));
  $("#margin").textContent = fmt(num(a.marginUsed));
}

/** The equity after each booking: the balance plus what was then locked in open positions
 * (margin, or the cost of spot), marked at entry; the last point is the account's equity
 * now, with the unrealized P&L at live prices. */
export function equityPoints(ledger, account, now = Date.now()) {
  const locked = new Map();
  const stillOpen = new Set(state.positions.map((p) => p.id));
  const points = [];
  for (const e of ledger) {
    const amount = num(e.amount);
    if (e.kind === "open" && e.positionId) locked.set(e.positionId, (locked.get(e.positionId) || 0) - amount);
    if ((e.kind === "close" || e.kind === "liquidation") && e.positionId && !stillOpen.has(e.positionId)) locked.delete(e.positionId);
    let sum = num(e.balanceAfter);
    for (const v of locked.values()) sum += v;
    points.push({ t: Date.parse(e.at), v: sum });
  }
  if (account) points.push({ t: Math.max(now, points.at(-1)?.t ?? now), v: num(account.equity) });
  return points;
}

export function renderEquity() {
  lineChart($("#equity-chart"), { points: equityPoints(state.ledger, state.account), height: 140, empty: "no bookings yet" });
}

// ------------------------------------------------------------------ prices and watchlist

export function watchedSymbols() {
  const symbols = new Set(state.watchlist.symbols);
  for (const p of state.positions) symbols.add(p.symbol);
  if (state.chartSymbol) symbols.add(state.chartSymbol);
  return [...symbols];
}

function changeOf(symbol) {
  const q = state.prices[symbol];
  const entry = state.watchlist.entries.find((e) => e.symbol === symbol);
  const rate = num(entry?.changeRate24h);
  if (rate !== null) return { pct: rate * 100, basis: "24 h (KuCoin)" };
  const open = state.dayOpen[symbol];
  if (q && open?.open) return { pct: ((q.price - open.open) / open.open) * 100, basis: "since 00:00 UTC" };
  return { pct: null, basis: "" };
}

export async function loadDayOpens(symbols) {
  const today = new Date().toISOString().slice(0, 10);
  await Promise.all(symbols.map(async (s) => {
    const known = state.dayOpen[s];
    if (known && known.day === today && Date.now() - known.fetched < 300000) return;
    try {
      const r = await api("GET", `/v1/candles/${encodeURIComponent(s)}?interval=1day&limit=1`);
      const c = r.candles.at(-1);
      state.dayOpen[s] = { open: c && c.start.startsWith(today) ? num(c.open) : null, day: today, fetched: Date.now() };
    } catch { state.dayOpen[s] = { open: null, day: today, fetched: Date.now() }; }
  }));
}

export function renderPrices() {
  const rows = watchedSymbols().filter((s) => state.prices[s]).sort().map((symbol) => {
    const q = state.prices[symbol];
    const { pct, basis } = changeOf(symbol);
    const dir = q.prev === undefined || q.prev === q.price ? "" : q.price > q.prev ? "▲" : "▼";
    return el("tr", {
      "data-symbol": symbol, class: symbol === state.chartSymbol ? "selected" : "",
      onclick: () => { state.chartSymbol = symbol; $("#chart-symbol").value = symbol; renderChart(); renderPrices(); },
    },
      el("td", {}, symbol),
      el("td", { class: `price ${q.price > (q.prev ?? q.price) ? "up" : q.price < (q.prev ?? q.price) ? "down" : ""}` }, `${trim(String(q.price))} ${dir}`),
      el("td", { class: `change ${signClass(pct)}`, title: basis }, pct === null ? "-" : `${pct >= 0 ? "+" : ""}${fmt(pct)}%`));
  });
  $("#price-rows").replaceChildren(...rows);
  $("#no-prices").hidden = rows.length > 0;
}

export function renderWatchlist() {
  const input = $("#watchlist-form [name=symbols]");
  if (document.activeElement !== input) input.value = state.watchlist.symbols.join(", ");
  const select = $("#chart-symbol");
  const symbols = watchedSymbols();
  if (!state.chartSymbol && symbols.length) state.chartSymbol = symbols[0];
  const current = [...select.options].map((o) => o.value).join();
  if (current !== symbols.join()) select.replaceChildren(...symbols.map((s) => el("option", { value: s }, s)));
  if (state.chartSymbol) select.value = state.chartSymbol;
}

async function saveWatchlist(e) {
  e.preventDefault();
  const form = e.target;
  const symbols = form.symbols.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  try {
    state.watchlist = await api("PUT", "/v1/watchlist", { symbols });
    showFieldError(form, null);
    renderWatchlist();
    renderPrices();
  } catch (err) { showFieldError(form, err); }
}

// ------------------------------------------------------------------ the price chart

function levelsOf(symbol) {
  const out = [];
  for (const p of state.positions.filter((x) => x.symbol === symbol)) {
    const d = p.details || {};
    const tag = state.positions.filter((x) => x.symbol === symbol).length > 1 ? ` ${p.side[0]}${trim(p.qty)}` : "";
    out.push({ value: num(p.entryPrice), label: `entry${tag}`, kind: "entry" });
    if (d.stopLoss) out.push({ value: num(d.stopLoss), label: `stop${tag}`, kind: "stop" });
    const ladder = ladderOfDoc(p);
    if (Array.isArray(ladder) && ladder.length) {
      ladder.forEach((leg, i) => out.push({ value: num(leg.price), label: `TP${i + 1}${tag}`, kind: "target" }));
    } else if (d.takeProfit) out.push({ value: num(d.takeProfit), label: `TP${tag}`, kind: "target" });
    if (d.trailingStop) out.push({ value: num(d.trailingStop), label: `trail${tag}`, kind: "trail" });
    if (d.liquidationPrice && p.market === "futures") out.push({ value: num(d.liquidationPrice), label: `liq${tag}`, kind: "liq" });
  }
  return out.filter((l) => l.value !== null);
}

let candles = { key: "", points: [], at: 0 };

export async function renderChart(force = false) {
  const symbol = state.chartSymbol;
  const svg = $("#price-chart");
  if (!symbol) { lineChart(svg, { points: [], empty: "add a symbol to the watchlist or open a position" }); return; }
  const interval = $("#chart-interval").value;
  const key = `${symbol}/${interval}`;
  if (force || candles.key !== key || Date.now() - candles.at > 5000) {
    try {
      const r = await api("GET", `/v1/candles/${encodeURIComponent(symbol)}?interval=${interval}&limit=120`);
      candles = { key, points: r.candles.map((c) => ({ t: Date.parse(c.start), v: num(c.close) })), at: Date.now() };
      $("#chart-error").textContent = "";
    } catch (err) {
      candles = { key, points: [], at: Date.now() };
      $("#chart-error").textContent = err.message;
    }
  }
  const points = [...candles.points];
  const live = state.prices[symbol];
  if (live) points.push({ t: Math.max(Date.now(), points.at(-1)?.t ?? 0), v: live.price });
  const levels = levelsOf(symbol);
  lineChart(svg, { points, levels, empty: `no candles for ${symbol} yet` });
  svg.dataset.symbol = symbol;
  $("#chart-legend").replaceChildren(...levels.map((l) => el("span", { class: `legend ${l.kind}` }, `${l.label} ${trim(String(l.value))}`)));
}

// ------------------------------------------------------------------ positions

function pnlOf(p, price) {
  if (price === null || price === undefined) return null;
  return (p.side === "long" ? 1 : -1) * (price - num(p.entryPrice)) * num(p.qty);
}

const distance = (price, level) =>
  price === null || price === undefined || level === null ? "-" : `${fmt(((level - price) / price) * 100)}%`;

// What the user has typed into a level and not saved (`id/field` -> {text, error}): a row
// can be rebuilt by a live update at any moment (a price, another position), and the
// rebuilt input starts from its draft, with the API's refusal of it if there was one.
const drafts = new Map();

function levelField(p, name) {
  const current = p.details[name];
  const stored = current === null || current === undefined ? "" : trim(current);
  const key = `${p.id}/${name}`;
  const draft = drafts.get(key);
  const error = el("span", { class: "error field-error" }, draft?.error ?? "");
  const input = el("input", {
    name, value: draft?.text ?? stored, inputmode: "decimal",
    "aria-label": `${name} of ${p.symbol}`, "aria-invalid": draft?.error ? "true" : undefined,
  });
  input.addEventListener("input", () => {
    if (input.value === stored) drafts.delete(key); else drafts.set(key, { text: input.value });
  });
  const save = async () => {
    const value = input.value.trim();
    if (value === stored) return;
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    try {
      await api("PATCH", `/v1/positions/${p.id}`, { [name]: value === "" ? null : value });
      drafts.delete(key);
      onChange();
    } catch (err) {
      drafts.set(key, { text: input.value, error: err.message });
      error.textContent = err.message;
      input.setAttribute("aria-invalid", "true");
    }
  };
  input.addEventListener("change", save);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); save(); } });
  return el("td", { "data-field": name }, input, error);
}

// The stored document keeps the ladder, its filled legs and the trailing order in
// `details` (domain/models.py); a top-level copy is read too, as older pages sent it.
const ladderOfDoc = (p) => p.details.takeProfits || p.takeProfits || [];
const legFilled = (p, leg, i) => Boolean(leg.filled) || (p.details.legsFilled || []).includes(i);
const trailingSpecOf = (p) => p.details.trailing || p.trailingStop || p.details.trailingStopSpec || null;

// Which amend editors are open (`id/kind`), so a live re-render keeps them open.
const openEditors = new Set();

/** An edit-in-place form behind a <details>: its inputs are named by the API's field
 * paths, its PATCH's 422 is shown at the field by showFieldError, like every form. */
function editor(p, kind, label, inputs, bodyOf) {
  const key = `${p.id}/${kind}`;
  const form = el("form", { class: `amend amend-${kind}`, "data-kind": kind },
    ...inputs, el("button", { type: "submit", class: "small" }, "Save"), el("p", { class: "error form-error" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("PATCH", `/v1/positions/${p.id}`, bodyOf(form));
      showFieldError(form, null);
      openEditors.delete(key);
      onChange();
    } catch (err) { showFieldError(form, bracketed(err)); }
  });
  const box = el("details", { class: "edit", open: openEditors.has(key) }, el("summary", {}, label), form);
  box.addEventListener("toggle", () => { if (box.open) openEditors.add(key); else openEditors.delete(key); });
  return box;
}

function ladderEditor(p) {
  const legs = ladderOfDoc(p);
  const seed = legs.length ? legs : [{}, {}];
  return editor(p, "ladder", legs.length ? "edit ladder" : "ladder…",
    [ladderInputs(seed, p.details.moveStopToEntryAfter)],
    (form) => {
      const next = ladderOf(form);
      const body = { takeProfits: next.length ? next : null, moveStopToEntryAfter: next.length ? moveAfterOf(form) : null };
      // A ladder replaces the single target: the API refuses both at once.
      if (next.length && p.details.takeProfit) body.takeProfit = null;
      return body;
    });
}

function takeProfitCell(p) {
  const ladder = ladderOfDoc(p);
  if (!Array.isArray(ladder) || !ladder.length) {
    const cell = levelField(p, "takeProfit");
    cell.append(ladderEditor(p));
    return cell;
  }
  const after = p.details.moveStopToEntryAfter;
  return el("td", { "data-field": "takeProfits", class: "ladder" },
    ...ladder.map((leg, i) => el("div", { class: `tp-leg${legFilled(p, leg, i) ? " filled" : ""}` },
      `TP${i + 1} ${trim(leg.price)} × ${fmt(num(leg.fraction) * 100, 0)}%${legFilled(p, leg, i) ? " ✓" : ""}`)),
    after ? el("small", { class: "move-after" }, `stop → entry after TP${after}`) : "",
    ladderEditor(p));
}

function trailingCell(p) {
  const spec = trailingSpecOf(p);
  const d = p.details;
  const edit = editor(p, "trailing", spec ? "edit" : "add…", [trailingInputs(spec)],
    (form) => ({ trailingStop: trailingOf(form) }));
  if (!spec && !d.trailingStop) return el("td", { class: "trailing", "data-field": "trailingStop" }, el("span", { class: "none" }, "-"), edit);
  const rate = num(spec?.callbackRate);
  return el("td", { class: "trailing", "data-field": "trailingStop" },
    el("span", { class: "rate" }, rate !== null ? `${fmt(rate * 100)}%` : ""),
    d.trailingStop ? el("div", { class: "trail-stop" }, `stop ${trim(d.trailingStop)}`) : el("div", { class: "muted" }, spec?.activationPrice ? `from ${trim(spec.activationPrice)}` : "waiting"),
    d.trailingPeak ? el("small", { class: "trail-peak" }, `peak ${trim(d.trailingPeak)}`) : "",
    edit);
}

function closeCell(p) {
  const qty = el("input", { name: "closeQty", inputmode: "decimal", placeholder: "all", "aria-label": `qty of ${p.symbol} to close` });
  const error = el("span", { class: "error field-error" });
  const button = el("button", {
    type: "button", class: "close",
    onclick: async () => {
      const part = qty.value.trim();
      const what = part ? `${part} of ${p.side} ${trim(p.qty)} ${p.symbol}` : `${p.side} ${trim(p.qty)} ${p.symbol}`;
      if (!confirm(`Close ${what}?`)) return;
      error.textContent = "";
      try {
        await api("POST", `/v1/positions/${p.id}/close`, part ? { qty: part } : undefined);
        qty.value = "";
        onChange();
      } catch (err) { error.textContent = err.message; }
    },
  }, "Close");
  return el("td", { class: "close-cell" }, el("div", { class: "inline" }, qty, button), error);
}

function updateLive(tr, p) {
  const price = state.prices[p.symbol]?.price;
  const pnl = pnlOf(p, price);
  tr.querySelector(".price").textContent = price === undefined ? "-" : trim(String(price));
  const cell = tr.querySelector(".pnl");
  cell.textContent = fmt(pnl);
  cell.className = `pnl ${signClass(pnl)}`;
  const stop = num(p.details.stopLoss) ?? num(p.details.trailingStop);
  tr.querySelector(".to-stop").textContent = distance(price, stop);
  tr.querySelector(".to-liq").textContent = p.market === "futures" ? distance(price, num(p.details.liquidationPrice)) : "-";
}

export function renderPositions() {
  const rows = $("#position-rows");
  // Keep a row being edited: a live update must not eat the user's typing.
  const editing = document.activeElement?.closest?.("#position-rows tr")?.dataset.id;
  const kept = new Map([...rows.children].map((tr) => [tr.dataset.id, tr]));
  rows.replaceChildren(...state.positions.map((p) => {
    if (p.id === editing && kept.has(p.id)) { updateLive(kept.get(p.id), p); return kept.get(p.id); }
    const tr = el("tr", { "data-id": p.id, "data-symbol": p.symbol, class: p.details.status === "closing" ? "closing" : "" },
      el("td", {}, p.symbol, el("small", {}, ` ${p.market}${num(p.leverage) > 1 ? ` ${trim(p.leverage)}×` : ""}`)),
      el("td", { class: p.side }, p.side),
      el("td", {}, trim(p.qty)),
      el("td", {}, trim(p.entryPrice)),
      el("td", { class: "price" }),
      el("td", { class: "pnl" }),
      el("td", { class: "to-stop" }),
      el("td", { class: "to-liq" }),
      levelField(p, "stopLoss"),
      takeProfitCell(p),
      trailingCell(p),
      el("td", { class: "expires", title: "closes at market then (reason time_limit)" }, p.expiresAt ? when(p.expiresAt) : "-"),
      closeCell(p),
    );
    updateLive(tr, p);
    return tr;
  }));
  $("#no-positions").hidden = state.positions.length > 0;
}

export function updateLivePositions() {
  for (const tr of $("#position-rows").children) {
    const p = state.positions.find((x) => x.id === tr.dataset.id);
    if (p) updateLive(tr, p);
  }
}

// ------------------------------------------------------------------ triggers and history

/** What a trigger's action opens: side and size, then its orders, one line each. */
function actionCell(a) {
  const size = `${a.side} ${trim(a.qty ?? a.notional)}${a.notional && !a.qty ? " USDT" : ""}${a.leverage ? ` ${trim(a.leverage)}×` : ""}`;
  const t = a.trailingStop;
  const legs = Array.isArray(a.takeProfits) ? a.takeProfits : [];
  return el("td", { class: "action" }, size,
    a.stopLoss ? el("div", { class: "sl" }, `stop ${trim(a.stopLoss)}`) : "",
    a.takeProfit ? el("div", { class: "tp" }, `TP ${trim(a.takeProfit)}`) : "",
    t ? el("div", { class: "trail" }, `trail ${fmt(num(t.callbackRate) * 100)}%${t.activationPrice ? ` from ${trim(t.activationPrice)}` : ""}`) : "",
    ...legs.map((leg, i) => el("div", { class: "tp-leg" }, `TP${i + 1} ${trim(leg.price)} × ${fmt(num(leg.fraction) * 100, 0)}%`)),
    a.moveStopToEntryAfter ? el("small", { class: "move-after" }, `stop → entry after TP${a.moveStopToEntryAfter}`) : "");
}

export function renderTriggers() {
  $("#trigger-rows").replaceChildren(...state.triggers.map((t) => {
    const status = t.details?.status ?? t.status;
    return el("tr", { "data-id": t.id, "data-status": status },
      el("td", {}, t.symbol),
      el("td", {}, `${t.condition.op === "below" ? "≤" : "≥"} ${trim(t.condition.price)}`),
      actionCell(t.action),
      el("td", { class: "oco" }, t.ocoGroup ?? "-"),
      el("td", { class: "expires" }, t.expiresAt ? when(t.expiresAt) : "-"),
      el("td", { class: "status" }, status, t.details?.error ? el("small", { class: "error" }, t.details.error) : ""),
      el("td", {}, status === "active" ? el("button", {
        type: "button", class: "cancel",
        onclick: async () => { await api("DELETE", `/v1/triggers/${t.id}`).catch(() => {}); onChange(); },
      }, "Cancel") : ""));
  }));
  $("#no-triggers").hidden = state.triggers.length > 0;
}

const HISTORY_COLUMNS = ["id", "closedAt", "symbol", "market", "side", "qty", "entryPrice", "closePrice",
  "closeReason", "feeOpen", "feeClose", "realizedPnl", "partOf", "openedAt"];

function filteredHistory() {
  const { from, to } = formValues($("#history-filter"), ["from", "to"]);
  return state.history.filter((h) => inDateRange(h.closedAt, from, to));
}

export function renderHistory() {
  const rows = filteredHistory();
  $("#history-rows").replaceChildren(...rows.map((h) => {
    const pnl = num(h.realizedPnl);
    return el("tr", { "data-id": h.id },
      el("td", {}, when(h.closedAt)),
      el("td", {}, h.symbol), el("td", {}, h.side), el("td", {}, trim(h.qty), h.partOf ? el("small", {}, " part") : ""),
      el("td", {}, trim(h.entryPrice)), el("td", {}, trim(h.closePrice)),
      el("td", { class: "reason" }, h.closeReason, h.details?.recovered ? el("small", { title: "closed from a feed gap's candles" }, " recovered") : ""),
      el("td", { class: `realized ${signClass(pnl)}` }, fmt(pnl)));
  }));
  $("#no-history").hidden = rows.length > 0;
}

// ------------------------------------------------------------------ forms

async function submitOpen(e) {
  e.preventDefault();
  const form = e.target;
  const body = formValues(form, ["symbol", "market", "side", "qty", "leverage", "stopLoss", "takeProfit"]);
  // SPEC 5.2: sent only when typed, under the API's own names.
  Object.assign(body, orderFieldsOf(form));
  const expires = expiresOf(form);
  if (expires) body.expiresAt = expires;
  try {
    await api("POST", "/v1/positions", body);
    showFieldError(form, null);
    onChange();
  } catch (err) { showFieldError(form, bracketed(err)); }
}

async function submitTrigger(e) {
  e.preventDefault();
  const form = e.target;
  const f = formValues(form, ["symbol", "market", "op", "price", "side", "qty", "leverage", "stopLoss", "takeProfit", "ocoGroup"]);
  const action = { side: f.side };
  for (const k of ["qty", "leverage", "stopLoss", "takeProfit"]) if (f[k] !== undefined) action[k] = f[k];
  // The position the trigger opens carries the same SPEC 5.2 orders as one opened now.
  Object.assign(action, orderFieldsOf(form));
  const body = { symbol: f.symbol, market: f.market, condition: { op: f.op, price: f.price }, action };
  if (f.ocoGroup) body.ocoGroup = f.ocoGroup; // SPEC 5.2: triggers of one group cancel each other
  const expires = expiresOf(form); // the trigger's own: `expired` if it has not fired by then
  if (expires) body.expiresAt = expires;
  try {
    await api("POST", "/v1/triggers", body);
    showFieldError(form, null);
    onChange();
  } catch (err) { showFieldError(form, actionField(err)); }
}

export function wireTrade() {
  const open = $("#open-form");
  open.querySelector("#open-extras").replaceWith(
    ...orderInputs("Expires at", "the position closes at market then (reason time_limit)"));
  open.addEventListener("submit", submitOpen);
  const trigger = $("#trigger-form");
  trigger.querySelector("#trigger-extras").replaceWith(
    ...orderInputs("Trigger expires at", "the trigger is expired, not fired, if its price has not crossed by then"));
  trigger.addEventListener("submit", submitTrigger);
  $("#watchlist-form").addEventListener("submit", saveWatchlist);
  $("#history-filter").addEventListener("input", renderHistory);
  $("#history-csv").addEventListener("click", () =>
    download(`cogmora-history-${new Date().toISOString().slice(0, 10)}.csv`, toCsv(HISTORY_COLUMNS, filteredHistory())));
  $("#chart-symbol").addEventListener("change", (e) => { state.chartSymbol = e.target.value; renderChart(true); renderPrices(); });
  $("#chart-interval").addEventListener("change", () => renderChart(true));
}
