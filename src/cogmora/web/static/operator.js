// The operator page: /healthz for the verdict and its reasons, /metrics (parsed here) for
// the numbers, so the page and a Prometheus scraper read the same registry.

import { barChart } from "./chart.js";
import { buckets, parseMetrics, pick, total } from "./metrics.js";
import { $, el, fmt } from "./util.js";

const LATENCY = "cogmora_engine_tick_to_commit_seconds";
const count = (x) => (Number.isFinite(x) ? String(Math.round(x)) : "-");

export async function pollOperator() {
  let health = null;
  let samples = [];
  try {
    const res = await fetch("/healthz");
    health = await res.json();
    $("#health-status").textContent = health.status ?? String(res.status);
    $("#health-status").className = health.status === "ok" ? "up" : health.status === "recovering" ? "" : "down";
    $("#health-reasons").replaceChildren(...(health.reasons || []).map((r) => el("li", {}, r)));
    $("#health-store").textContent = health.store ?? "-";
    $("#health-raw").textContent = JSON.stringify(health, null, 2);
  } catch (err) {
    $("#health-status").textContent = `unreachable (${err.message})`;
  }
  try {
    samples = parseMetrics(await (await fetch("/metrics")).text());
  } catch { samples = []; }
  const feeds = health?.worker?.feeds ?? {};
  const markets = new Set([...Object.keys(feeds), ...pick(samples, "cogmora_feed_connected").map((s) => s.labels.market)]);
  $("#feed-rows").replaceChildren(...[...markets].sort().map((m) => {
    const f = feeds[m] || {};
    const connected = pick(samples, "cogmora_feed_connected", { market: m })[0]?.value ?? (f.connected ? 1 : 0);
    const lag = pick(samples, "cogmora_feed_lag_seconds", { market: m })[0]?.value ?? f.lagSeconds;
    return el("tr", { "data-feed": m },
      el("td", {}, m),
      el("td", { class: connected ? "up" : "down" }, connected ? "connected" : "down"),
      el("td", { class: "lag" }, lag === null || lag === undefined ? "-" : `${fmt(lag * 1000, 1)} ms`),
      el("td", { class: "reconnects" }, count(total(samples, "cogmora_feed_reconnects_total", { market: m }))),
      el("td", {}, count(pick(samples, "cogmora_feed_subscribed_topics", { market: m })[0]?.value)),
      el("td", {}, count(total(samples, "cogmora_feed_ticks_total", { market: m }))),
      el("td", {}, count(total(samples, "cogmora_feed_errors_total", { market: m }))),
      el("td", {}, f.silentSeconds === undefined ? "-" : `${fmt(f.silentSeconds, 1)} s`));
  }));
  $("#no-feeds").hidden = markets.size > 0;
  const stat = (id, v) => { $(id).textContent = v; };
  stat("#m-book-entries", count(total(samples, "cogmora_engine_book_entries")));
  stat("#m-book-levels", count(total(samples, "cogmora_engine_book_levels")));
  stat("#m-book-lag", `${fmt(total(samples, "cogmora_engine_book_lag_seconds"), 2)} s`);
  stat("#m-gap-replays", count(total(samples, "cogmora_engine_gap_replays_total")));
  stat("#m-recovered", count(total(samples, "cogmora_engine_recovered_total")));
  stat("#m-commits", count(total(samples, "cogmora_engine_commits_total")));
  stat("#m-commit-errors", count(total(samples, "cogmora_engine_commit_errors_total")));
  stat("#m-dropped", count(total(samples, "cogmora_prices_dropped_total")));
  const hist = buckets(samples, LATENCY);
  const n = total(samples, `${LATENCY}_count`);
  const sum = total(samples, `${LATENCY}_sum`);
  $("#latency-summary").textContent = n ? `${count(n)} crossings, mean ${fmt((sum / n) * 1000, 2)} ms` : "no crossings yet";
  barChart($("#latency-chart"), hist.map((b) => ({ label: b.le === "+Inf" ? ">5" : String(Number(b.le)), value: b.count })));
  const runs = pick(samples, "cogmora_jobs_runs_total");
  $("#run-rows").replaceChildren(...runs.map((s) => el("tr", {},
    el("td", {}, s.labels.job ?? s.labels.kind ?? "-"), el("td", {}, s.labels.result ?? s.labels.outcome ?? "-"), el("td", {}, count(s.value)))));
  $("#no-runs").hidden = runs.length > 0;
}
