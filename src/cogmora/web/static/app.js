// The Cogmora dashboard: a client of the public API and its /v1/events stream, nothing more.
// The token lives in sessionStorage; every request carries it as a bearer header. The event
// stream is read with fetch() because EventSource cannot send an Authorization header.

const $ = (sel) => document.querySelector(sel);
const state = { token: null, positions: [], prices: {}, firstPrices: {}, stream: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

const num = (s) => (s === null || s === undefined || s === "" ? null : Number(s));
const fmt = (x, places = 2) => (x === null || Number.isNaN(x) ? "-" : x.toFixed(places));
// "58900.50000000" -> "58900.5", "67000" stays: only a fraction's trailing zeros go.
const trim = (s) => {
  if (s === null || s === undefined) return "-";
  const text = String(s);
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
};

class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.field = body.field || null;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST") headers["Idempotency-Key"] = crypto.randomUUID();
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 && path !== "/v1/account") signOut("session ended: invalid token");
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---------------------------------------------------------------- sign in / out

async function signIn(token) {
  state.token = token;
  try {
    const account = await api("GET", "/v1/account");
    sessionStorage.setItem("cogmora.token", token);
    $("#who").textContent = account.uid;
    $("#signin-error").textContent = "";
    show(location.hash === "#operator" ? "operator" : "trade");
    renderAccount(account);
    refresh();
    follow();
    return true;
  } catch (err) {
    state.token = null;
    sessionStorage.removeItem("cogmora.token");
    $("#signin-error").textContent = err.status === 401 ? "invalid token" : err.message;
    show("signin");
    return false;
  }
}

function signOut(message = "") {
  state.token = null;
  sessionStorage.removeItem("cogmora.token");
  if (state.stream) state.stream.abort();
  state.stream = null;
  $("#signin-error").textContent = message;
  $("#banner").hidden = true;
  show("signin");
}

function show(page) {
  const signedIn = page !== "signin";
  $("#signin").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  $("#trade").hidden = page !== "trade";
  $("#operator").hidden = page !== "operator";
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.page === page);
  }
}

// ---------------------------------------------------------------- state and rendering

let refreshing = null;
let again = false;

function refresh() {
  // Coalesce a burst of events into one refetch; one more if something arrived meanwhile.
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      do {
        again = false;
        const [account, positions, triggers, history] = await Promise.all([
          api("GET", "/v1/account"),
          api("GET", "/v1/positions?status=open"),
          api("GET", "/v1/triggers"),
          api("GET", "/v1/history?limit=50"),
        ]);
        state.positions = positions;
        renderAccount(account);
        renderPositions();
        renderTriggers(triggers);
        renderHistory(history);
      } while (again);
    } catch (err) {
      if (err.status !== 401) console.warn("refresh failed", err);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function renderAccount(a) {
  $("#balance").textContent = fmt(num(a.balance));
  $("#equity").textContent = fmt(num(a.equity));
  $("#upnl").textContent = fmt(num(a.unrealizedPnl));
  $("#margin").textContent = fmt(num(a.marginUsed));
}

function pnlOf(p, price) {
  if (price === null || price === undefined) return null;
  const sign = p.side === "long" ? 1 : -1;
  return sign * (price - Number(p.entryPrice)) * Number(p.qty);
}

function distance(price, level) {
  if (price === null || price === undefined || level === null) return "-";
  return `${fmt(((level - price) / price) * 100)}%`;
}

function levelField(p, name) {
  const current = p.details[name];
  const error = el("span", { class: "error field-error" });
  const input = el("input", {
    name, value: current === null ? "" : trim(current), inputmode: "decimal",
    "aria-label": `${name} of ${p.symbol}`,
  });
  const save = async () => {
    const value = input.value.trim();
    if (value === (current === null ? "" : trim(current))) return;
    error.textContent = "";
    try {
      await api("PATCH", `/v1/positions/${p.id}`, { [name]: value === "" ? null : value });
      refresh();
    } catch (err) {
      error.textContent = err.message;
      input.setAttribute("aria-invalid", "true");
    }
  };
  input.addEventListener("change", save);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); save(); } });
  return el("td", { "data-field": name }, input, error);
}

function renderPositions() {
  const rows = $("#position-rows");
  // Keep a row whose field is being edited: a live update must not eat the user's typing.
  const editing = document.activeElement?.closest?.("#position-rows tr")?.dataset.id;
  const kept = new Map([...rows.children].map((tr) => [tr.dataset.id, tr]));
  rows.replaceChildren(...state.positions.map((p) => {
    if (p.id === editing && kept.has(p.id)) { updateLive(kept.get(p.id), p); return kept.get(p.id); }
    const close = el("button", {
      type: "button", class: "close",
      onclick: async () => {
        if (!confirm(`Close ${p.side} ${trim(p.qty)} ${p.symbol}?`)) return;
        try { await api("POST", `/v1/positions/${p.id}/close`); refresh(); }
        catch (err) { close.after(el("span", { class: "error" }, err.message)); }
      },
    }, "Close");
    const tr = el("tr", { "data-id": p.id, "data-symbol": p.symbol },
      el("td", {}, p.symbol, el("small", {}, ` ${p.market}`)),
      el("td", { class: p.side }, p.side),
      el("td", {}, trim(p.qty)),
      el("td", {}, trim(p.entryPrice)),
      el("td", { class: "price" }),
      el("td", { class: "pnl" }),
      el("td", { class: "to-stop" }),
      el("td", { class: "to-liq" }),
      levelField(p, "stopLoss"),
      levelField(p, "takeProfit"),
      el("td", {}, close),
    );
    updateLive(tr, p);
    return tr;
  }));
  $("#no-positions").hidden = state.positions.length > 0;
  renderPrices();
}

function updateLive(tr, p) {
  const price = state.prices[p.symbol];
  const pnl = pnlOf(p, price);
  tr.querySelector(".price").textContent = price === undefined ? "-" : trim(String(price));
  const cell = tr.querySelector(".pnl");
  cell.textContent = fmt(pnl);
  cell.className = `pnl ${pnl === null ? "" : pnl >= 0 ? "up" : "down"}`;
  tr.querySelector(".to-stop").textContent = distance(price, num(p.details.stopLoss));
  tr.querySelector(".to-liq").textContent = distance(price, num(p.details.liquidationPrice));
}

function renderPrices() {
  const rows = Object.keys(state.prices).sort().map((symbol) => {
    const price = state.prices[symbol];
    const first = state.firstPrices[symbol];
    const change = first ? ((price - first) / first) * 100 : null;
    return el("tr", { "data-symbol": symbol },
      el("td", {}, symbol), el("td", {}, trim(String(price))),
      el("td", { class: change === null ? "" : change >= 0 ? "up" : "down" }, `${fmt(change)}%`));
  });
  $("#price-rows").replaceChildren(...rows);
}

function renderTriggers(triggers) {
  $("#trigger-rows").replaceChildren(...triggers.map((t) => el("tr", { "data-id": t.id },
    el("td", {}, t.symbol),
    el("td", {}, `${t.condition.op === "lte" ? "≤" : "≥"} ${trim(t.condition.price)}`),
    el("td", {}, `${t.action.side} ${trim(t.action.qty ?? t.action.notional)}`),
    el("td", {}, t.status),
    el("td", {}, t.status === "active" ? el("button", {
      type: "button",
      onclick: async () => { await api("DELETE", `/v1/triggers/${t.id}`).catch(() => {}); refresh(); },
    }, "Cancel") : ""),
  )));
}

function renderHistory(history) {
  $("#history-rows").replaceChildren(...history.map((h) => {
    const pnl = num(h.realizedPnl);
    return el("tr", { "data-id": h.id },
      el("td", {}, h.symbol), el("td", {}, h.side), el("td", {}, trim(h.qty)),
      el("td", {}, trim(h.entryPrice)), el("td", {}, trim(h.closePrice)),
      el("td", { class: "reason" }, h.closeReason),
      el("td", { class: `realized ${pnl >= 0 ? "up" : "down"}` }, fmt(pnl)));
  }));
}

// ---------------------------------------------------------------- live prices

async function pollPrices() {
  if (state.token) {
    const symbols = new Set(state.positions.map((p) => p.symbol));
    const typed = $("#open-form [name=symbol]").value.trim().toUpperCase();
    if (typed) symbols.add(typed);
    await Promise.all([...symbols].map(async (s) => {
      try {
        const q = await api("GET", `/v1/prices/${encodeURIComponent(s)}`);
        state.prices[s] = Number(q.price);
        state.firstPrices[s] ??= Number(q.price);
      } catch { /* no price yet, or not a symbol: nothing to show */ }
    }));
    for (const tr of $("#position-rows").children) {
      const p = state.positions.find((x) => x.id === tr.dataset.id);
      if (p) updateLive(tr, p);
    }
    renderPrices();
  }
  setTimeout(pollPrices, 1000);
}

// ---------------------------------------------------------------- the event stream

async function follow() {
  let delay = 500;
  const banner = $("#banner");
  while (state.token) {
    const control = new AbortController();
    state.stream = control;
    try {
      const res = await fetch("/v1/events", {
        headers: { Authorization: `Bearer ${state.token}` }, signal: control.signal,
      });
      if (res.status === 401) { signOut("session ended: invalid token"); return; }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      if (!banner.hidden) {
        banner.hidden = true;
        refresh(); // catch up on whatever committed while the stream was down
      }
      delay = 500;
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (message.split("\n").some((line) => line.startsWith("data:"))) refresh();
        }
      }
    } catch (err) {
      if (control.signal.aborted) return;
    }
    if (!state.token) return;
    banner.textContent = "Live updates lost: reconnecting…";
    banner.hidden = false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

// ---------------------------------------------------------------- forms

function formBody(form, names) {
  const data = new FormData(form);
  const body = {};
  for (const n of names) {
    const v = String(data.get(n) ?? "").trim();
    if (v !== "") body[n] = v;
  }
  return body;
}

function showFieldError(form, err) {
  for (const e of form.querySelectorAll(".field-error")) e.remove();
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  const leaf = err.field ? err.field.split(".").pop() : null;
  const input = leaf ? form.querySelector(`[name="${leaf}"]`) : null;
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.closest("label").append(el("span", { class: "error field-error" }, err.message));
    form.querySelector(".form-error").textContent = "";
  } else {
    form.querySelector(".form-error").textContent = err.message;
  }
}

async function submitOpen(e) {
  e.preventDefault();
  const form = e.target;
  const body = formBody(form, ["symbol", "market", "side", "qty", "leverage", "stopLoss", "takeProfit"]);
  try {
    await api("POST", "/v1/positions", body);
    showFieldError(form, { message: "" });
    refresh();
  } catch (err) { showFieldError(form, err); }
}

async function submitTrigger(e) {
  e.preventDefault();
  const form = e.target;
  const f = formBody(form, ["symbol", "market", "op", "price", "side", "qty"]);
  const body = {
    symbol: f.symbol, market: f.market,
    condition: { op: f.op, price: f.price }, action: { side: f.side, qty: f.qty },
  };
  try {
    await api("POST", "/v1/triggers", body);
    showFieldError(form, { message: "" });
    refresh();
  } catch (err) { showFieldError(form, err); }
}

// ---------------------------------------------------------------- operator page

async function pollHealth() {
  if (state.token && !$("#operator").hidden) {
    try {
      const res = await fetch("/healthz");
      const h = await res.json();
      $("#health-status").textContent = h.status ?? res.status;
      const feeds = h.worker?.feeds ?? {};
      const book = h.worker?.book;
      $("#health-store").textContent = h.store ?? "-";
      $("#health-book").textContent = book ? `${book.entries} entries, ${book.levels} levels` : "-";
      $("#feed-rows").replaceChildren(...Object.entries(feeds).map(([name, f]) => el("tr", {},
        el("td", {}, name), el("td", {}, f.connected ? "yes" : "no"),
        el("td", {}, f.lagSeconds ?? f.lag ?? "-"), el("td", {}, f.reconnects ?? "-"))));
      $("#health-raw").textContent = JSON.stringify(h, null, 2);
    } catch (err) {
      $("#health-status").textContent = `unreachable (${err.message})`;
    }
  }
  setTimeout(pollHealth, 2000);
}

// ---------------------------------------------------------------- start

function start() {
  $("#signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token").value.trim()); });
  $("#signout").addEventListener("click", () => signOut());
  $("#open-form").addEventListener("submit", submitOpen);
  $("#trigger-form").addEventListener("submit", submitTrigger);
  window.addEventListener("hashchange", () => {
    if (state.token && (location.hash === "#operator" || location.hash === "#trade")) show(location.hash.slice(1));
  });
  // A sign-in link (`/#token=...`, printed by `cogmora demo`): read it, then drop it from the URL.
  const linked = new URLSearchParams(location.hash.slice(1)).get("token");
  if (linked) history.replaceState(null, "", location.pathname);
  const token = linked || sessionStorage.getItem("cogmora.token");
  if (token) signIn(token); else show("signin");
  pollPrices();
  pollHealth();
}

start();
