// The agent page: its config (GET/PUT /v1/agent, 422s shown at their field) and its
// decisions with what it saw, did and why, and what was refused.

import { api } from "./api.js";
import { $, el, trim, when, showFieldError } from "./util.js";

const RISK = ["maxLeverage", "maxPositionNotional", "maxOpenPositions", "maxDailyLoss"];

function fill(form, c) {
  form.enabled.checked = Boolean(c.enabled);
  form.schedule.value = c.schedule ?? "";
  form.provider.value = c.provider ?? "builtin";
  form.symbols.value = (c.symbols || []).join(", ");
  for (const k of RISK) form[`risk.${k}`].value = c.risk?.[k] === undefined || c.risk?.[k] === null ? "" : trim(String(c.risk[k]));
  $("#agent-next").textContent = c.enabled ? (c.nextRunAt ? when(c.nextRunAt) : "soon") : "disabled";
  $("#agent-updated").textContent = c.updatedAt ? when(c.updatedAt) : "never saved";
}

export async function loadAgent() {
  const form = $("#agent-form");
  const [config, decisions] = await Promise.all([
    api("GET", "/v1/agent"), api("GET", "/v1/agent/decisions?limit=50"),
  ]);
  if (!form.contains(document.activeElement)) fill(form, config);
  renderDecisions(decisions);
}

async function save(e) {
  e.preventDefault();
  const form = e.target;
  const risk = {};
  for (const k of RISK) {
    const v = form[`risk.${k}`].value.trim();
    if (v !== "") risk[k] = k === "maxOpenPositions" && /^\d+$/.test(v) ? Number(v) : v;
  }
  const body = {
    enabled: form.enabled.checked,
    schedule: form.schedule.value.trim(),
    provider: form.provider.value,
    symbols: form.symbols.value.split(/[\s,]+/).filter(Boolean),
    risk,
  };
  try {
    fill(form, await api("PUT", "/v1/agent", body));
    showFieldError(form, null);
    $("#agent-saved").textContent = "Saved.";
  } catch (err) {
    $("#agent-saved").textContent = "";
    showFieldError(form, err);
  }
}

const actionText = (a) => {
  const { type, ...rest } = a || {};
  return `${type ?? "?"} ${Object.entries(rest).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : trim(v)}`).join(" ")}`;
};

function renderDecisions(decisions) {
  $("#decision-list").replaceChildren(...decisions.map((d) => el("article", { class: "decision", "data-id": d.id },
    el("header", {}, el("strong", {}, when(d.createdAt)), ` · ${d.provider}`,
      d.error ? el("span", { class: "error" }, ` error: ${d.error}`) : ""),
    el("p", { class: "rationale" }, d.rationale || "(no reason given)"),
    d.applied?.length ? el("ul", { class: "applied" }, ...d.applied.map((a) => el("li", {}, "✓ ", actionText(a.action)))) : "",
    d.refused?.length ? el("ul", { class: "refused" }, ...d.refused.map((r) => el("li", {}, "✗ ", actionText(r.action), el("span", { class: "error" }, ` — ${r.reason}`)))) : "",
    !d.applied?.length && !d.refused?.length && !d.error ? el("p", { class: "muted" }, "no action") : "",
  )));
  $("#no-decisions").hidden = decisions.length > 0;
}

export function wireAgent() {
  $("#agent-form").addEventListener("submit", save);
}
