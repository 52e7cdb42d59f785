// The Cogmora dashboard: a client of the public API and its /v1/events stream, nothing
// more. The token lives in sessionStorage; every request carries it as a bearer header.
// The event stream is read with fetch() because EventSource cannot send an Authorization
// header. Every change arrives as an event and triggers one coalesced refetch of the
// views it touches, so the page never needs a reload and never trusts a stale copy.

import { loadAgent, wireAgent } from "./agent.js";
import { api, session } from "./api.js";
import { signInWithPassword } from "./firebase.js";
import { loadLedger, renderLedger, wireLedger } from "./ledger.js";
import { pollOperator } from "./operator.js";
import { state } from "./state.js";
import {
  loadDayOpens, renderAccount, renderChart, renderEquity, renderHistory, renderPositions,
  renderPrices, renderTriggers, renderWatchlist, setRefresher, updateLivePositions, watchedSymbols,
  wireTrade,
} from "./trade.js";
import { $, $$ } from "./util.js";

const PAGES = ["trade", "ledger", "agent", "operator"];
let stream = null;

// ---------------------------------------------------------------- sign in / out

// Where Firebase Auth lives, if this server takes Firebase ID tokens (GET /v1/auth/config).
let firebaseConfig = null;

async function enter() {
  const account = await api("GET", "/v1/account");
  $("#who").textContent = session.firebase?.user.email || account.uid;
  $("#signin-error").textContent = "";
  $("#firebase-error").textContent = "";
  state.account = account;
  show(PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "trade");
  renderAccount();
  await Promise.all([refresh(), refreshWatchlist(), refreshAgent(), loadLedger()]);
  follow();
}

function forget() {
  session.token = null;
  session.firebase = null;
  sessionStorage.removeItem("cogmora.token");
  sessionStorage.removeItem("cogmora.firebase");
}

async function signIn(token) {
  forget();
  session.token = token;
  try {
    await enter();
    sessionStorage.setItem("cogmora.token", token);
    return true;
  } catch (err) {
    forget();
    $("#signin-error").textContent = err.status === 401 ? "invalid token" : err.message;
    show("signin");
    return false;
  }
}

const remember = (fb) => sessionStorage.setItem("cogmora.firebase", JSON.stringify(fb.user));
session.onRefreshed = remember;

// A Firebase user (just signed in, or kept from earlier in this tab): its ID token is the
// bearer, refreshed by api.js before it expires.
async function signInAs(user) {
  forget();
  session.firebase = { config: firebaseConfig, user };
  session.token = user.idToken;
  try {
    await session.bearer(); // a kept token may be stale: refresh it first
    await enter();
    remember(session.firebase);
    return true;
  } catch (err) {
    forget();
    $("#firebase-error").textContent = err.status === 401 ? `the server refused the ID token: ${err.message}` : err.message;
    show("signin");
    return false;
  }
}

async function signInFirebase(email, password) {
  $("#firebase-error").textContent = "";
  try {
    await signInAs(await signInWithPassword(firebaseConfig, email, password));
  } catch (err) {
    $("#firebase-error").textContent = err.message;
  }
}

function signOut(message = "") {
  forget();
  if (stream) stream.abort();
  stream = null;
  $("#signin-error").textContent = message;
  $("#firebase-error").textContent = "";
  $("#banner").hidden = true;
  $("#live").dataset.state = "off";
  show("signin");
}
session.onUnauthorized = signOut;

function show(page) {
  const signedIn = page !== "signin";
  $("#signin").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  for (const p of PAGES) $(`#${p}`).hidden = p !== page;
  for (const a of $$("nav a")) a.classList.toggle("active", a.dataset.page === page);
  if (page === "operator") pollOperator();
  if (page === "trade") renderChart();
}

// ---------------------------------------------------------------- refreshing from the API

// Coalesce a burst of events into one refetch; one more if something arrived meanwhile.
function coalesced(load) {
  let running = null;
  let again = false;
  return () => {
    if (running) { again = true; return running; }
    running = (async () => {
      try {
        do { again = false; await load(); } while (again);
      } catch (err) {
        if (err.status !== 401) console.warn("refresh failed", err);
      } finally { running = null; }
    })();
    return running;
  };
}

const refresh = coalesced(async () => {
  const [account, positions, triggers, history, ledger] = await Promise.all([
    api("GET", "/v1/account"),
    api("GET", "/v1/positions?status=open"),
    api("GET", "/v1/triggers"),
    api("GET", "/v1/history?limit=500"),
    api("GET", "/v1/ledger"),
  ]);
  Object.assign(state, { account, positions, triggers, history, ledger });
  renderAccount();
  renderPositions();
  renderTriggers();
  renderHistory();
  renderLedger();
  loadLedger();
  renderEquity();
  renderWatchlist();
  renderPrices();
  renderChart();
});
setRefresher(refresh);

const refreshWatchlist = coalesced(async () => {
  state.watchlist = await api("GET", "/v1/watchlist");
  renderWatchlist();
  renderPrices();
});

const refreshAgent = coalesced(loadAgent);

const ROUTES = {
  watchlist: refreshWatchlist, agent: refreshAgent, agentDecisions: refreshAgent,
};

function onEvent(name) {
  if (name === "resync") { refresh(); refreshWatchlist(); refreshAgent(); return; }
  (ROUTES[name] || refresh)();
}

// ---------------------------------------------------------------- live prices

async function pollPrices() {
  if (session.token) {
    const symbols = new Set(watchedSymbols());
    const typed = $("#open-form [name=symbol]").value.trim().toUpperCase();
    if (typed) symbols.add(typed);
    await Promise.all([...symbols].map(async (s) => {
      try {
        const q = await api("GET", `/v1/prices/${encodeURIComponent(s)}`);
        const old = state.prices[s];
        const price = Number(q.price);
        state.prices[s] = { price, at: q.at, prev: old ? (old.price !== price ? old.price : old.prev) : undefined };
      } catch { /* no price yet, or not a symbol: nothing to show */ }
    }));
    updateLivePositions();
    renderPrices();
    loadDayOpens([...symbols].filter((s) => state.prices[s])).then(renderPrices);
  }
  setTimeout(pollPrices, 1000);
}

function pollViews() {
  if (session.token && !$("#trade").hidden) { renderChart(); renderEquity(); }
  setTimeout(pollViews, 5000);
}

function pollHealth() {
  if (session.token && !$("#operator").hidden) pollOperator();
  setTimeout(pollHealth, 2000);
}

// ---------------------------------------------------------------- the event stream

function liveState(value) {
  const dot = $("#live");
  dot.dataset.state = value;
  dot.title = value === "connected" ? "live updates: connected" : "live updates: reconnecting";
}

async function follow() {
  let delay = 500;
  const banner = $("#banner");
  while (session.token) {
    const control = new AbortController();
    stream = control;
    try {
      const res = await fetch("/v1/events", {
        headers: { Authorization: `Bearer ${await session.bearer()}` }, signal: control.signal,
      });
      if (res.status === 401) { signOut("session ended: invalid token"); return; }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      liveState("connected");
      banner.hidden = true;
      // The server set this stream's cursor before it answered; catch up on whatever
      // committed before that: while the stream was down, or, the first time, between the
      // page's first load (enter) and now, which no event will ever announce.
      refresh(); refreshWatchlist(); refreshAgent();
      delay = 500;
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, cut).split("\n");
          buffer = buffer.slice(cut + 2);
          if (!message.some((line) => line.startsWith("data:"))) continue;
          const name = message.find((line) => line.startsWith("event:"));
          onEvent(name ? name.slice(6).trim() : "message");
        }
      }
    } catch {
      if (control.signal.aborted) return;
    }
    if (!session.token) return;
    liveState("lost");
    banner.textContent = "Live updates lost: reconnecting…";
    banner.hidden = false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

// ---------------------------------------------------------------- start

async function authConfig() {
  try {
    const res = await fetch("/v1/auth/config");
    firebaseConfig = res.ok ? (await res.json()).firebase : null;
  } catch { firebaseConfig = null; }
  $("#firebase-form").hidden = !firebaseConfig;
  return firebaseConfig;
}

async function start() {
  $("#signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token").value.trim()); });
  $("#firebase-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signInFirebase($("#email").value.trim(), $("#password").value);
  });
  $("#signout").addEventListener("click", () => signOut());
  wireTrade();
  wireLedger();
  wireAgent();
  window.addEventListener("hashchange", () => {
    const page = location.hash.slice(1);
    if (session.token && PAGES.includes(page)) show(page);
  });
  window.addEventListener("resize", () => { if (session.token) { renderChart(); renderEquity(); } });
  // A sign-in link (`/#token=...`, printed by `cogmora demo`): read it, then drop it from the URL.
  const linked = new URLSearchParams(location.hash.slice(1)).get("token");
  if (linked) history.replaceState(null, "", location.pathname);
  await authConfig();
  const token = linked || sessionStorage.getItem("cogmora.token");
  const kept = sessionStorage.getItem("cogmora.firebase");
  if (token) signIn(token);
  else if (kept && firebaseConfig) signInAs(JSON.parse(kept));
  else show("signin");
  pollPrices();
  pollViews();
  pollHealth();
}

start();
