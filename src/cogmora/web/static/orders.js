// SPEC 5.2 order inputs shared by the open form, the trigger form (for the position its
// action opens) and the amend editors of an open position: the trailing stop, the
// take-profit ladder (with moveStopToEntryAfter) and expiresAt.
// Every input is named by the API's own field path (`trailingStop.callbackRate`,
// `takeProfits[1].price`), so the `field` of a 422 finds its input through the one
// showFieldError pattern every form uses, and the body is built from the same names.

import { $$, el, trim } from "./util.js";

const MAX_LEGS = 10; // the API's limit (domain/takeprofits.py)

function legRow(i, leg = {}) {
  return el("span", { class: "leg", "data-leg": i },
    el("label", {}, `TP${i + 1} price`,
      el("input", { name: `takeProfits[${i}].price`, inputmode: "decimal", value: leg.price ? trim(leg.price) : "" })),
    el("label", {}, "fraction",
      el("input", { name: `takeProfits[${i}].fraction`, inputmode: "decimal", placeholder: "0.5", value: leg.fraction ? trim(leg.fraction) : "" })));
}

function renumber(list) {
  [...list.children].forEach((row, i) => {
    row.dataset.leg = i;
    const [price, fraction] = row.querySelectorAll("input");
    price.name = `takeProfits[${i}].price`;
    fraction.name = `takeProfits[${i}].fraction`;
    row.querySelector("label").firstChild.textContent = `TP${i + 1} price`;
  });
}

/** A fieldset for a ladder: rows of price and fraction, + leg / − leg, and the
 * moveStopToEntryAfter number. `legs` pre-fills it (the amend editor). */
// Spans styled as blocks, not divs: a row's ladder cell lists its legs as its divs.
export function ladderInputs(legs = [], moveAfter = null) {
  const list = el("span", { class: "legs" }, ...legs.map((leg, i) => legRow(i, leg)));
  // <input type=button>, native buttons that leave a form's one <button> its submit.
  const add = el("input", {
    type: "button", class: "small add-leg", value: "+ leg",
    onclick: () => { if (list.children.length < MAX_LEGS) { list.append(legRow(list.children.length)); renumber(list); } },
  });
  const remove = el("input", {
    type: "button", class: "small remove-leg", value: "− leg",
    onclick: () => { list.lastElementChild?.remove(); },
  });
  return el("fieldset", { class: "ladder-inputs" },
    el("legend", {}, "Take-profit ladder"),
    // `takeProfits` as a whole (fractions over 1, too many legs) is reported here.
    el("span", { class: "ladder-head" }, el("output", { name: "takeProfits" }), add, remove),
    list,
    el("label", { title: "after this many legs have filled, the stop loss moves to the entry price" },
      "Stop to entry after leg",
      el("input", { name: "moveStopToEntryAfter", inputmode: "numeric", value: moveAfter ?? "" })));
}

/** The trailing stop's two inputs; `spec` pre-fills them (the amend editor). */
export function trailingInputs(spec = null) {
  return el("fieldset", { class: "trailing-inputs" },
    el("legend", {}, "Trailing stop"),
    el("output", { name: "trailingStop" }),
    el("label", { title: "0.02 trails 2% behind the best price since activation" }, "Callback rate",
      el("input", { name: "trailingStop.callbackRate", inputmode: "decimal", placeholder: "0.02", value: spec?.callbackRate ? trim(spec.callbackRate) : "" })),
    el("label", {}, "Activation price",
      el("input", { name: "trailingStop.activationPrice", inputmode: "decimal", placeholder: "at once", value: spec?.activationPrice ? trim(spec.activationPrice) : "" })));
}

const value = (form, name) => String(form.querySelector(`[name="${name}"]`)?.value ?? "").trim();

/** The ladder as the API takes it: legs with any input filled (an empty one is dropped;
 * a half-filled one is sent so the API names what is missing). */
export function ladderOf(form) {
  const legs = [];
  for (const row of $$(".legs .leg", form)) {
    const [price, fraction] = [...row.querySelectorAll("input")].map((i) => i.value.trim());
    if (price === "" && fraction === "") continue;
    legs.push({ price, fraction });
  }
  return legs;
}

export function moveAfterOf(form) {
  const v = value(form, "moveStopToEntryAfter");
  return v === "" ? null : /^\d+$/.test(v) ? Number(v) : v;
}

/** {callbackRate, activationPrice?} or null when no rate is typed. */
export function trailingOf(form) {
  const rate = value(form, "trailingStop.callbackRate");
  const activation = value(form, "trailingStop.activationPrice");
  if (rate === "" && activation === "") return null;
  const out = { callbackRate: rate };
  if (activation !== "") out.activationPrice = activation;
  return out;
}

// ------------------------------------------------------------------ expiresAt

// A `datetime-local` control shows and takes the browser's wall time, formatted by its
// locale: the input is read as that, in the zone named next to it, and sent as the UTC
// instant it is, so what is stored never depends on where the page ran.
const WALL = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d))?$/;

/** The instant a `datetime-local` value names in the browser's zone, or null. */
export function wallToDate(v) {
  const m = WALL.exec(v);
  if (!m) return null;
  const at = new Date(2000, 0, 1); // setFullYear: `new Date(99, ...)` would be 1999
  at.setFullYear(+m[1], +m[2] - 1, +m[3]);
  at.setHours(+m[4], +m[5], +(m[6] || 0), 0);
  return Number.isNaN(at.getTime()) ? null : at;
}

export const zoneName = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

/** "UTC+05:30" at `at` (the offset of that date: summer and winter time differ). */
export function offsetAt(at) {
  const minutes = -at.getTimezoneOffset();
  const abs = Math.abs(minutes);
  return `UTC${minutes < 0 ? "-" : "+"}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

const utcText = (at) => at.toISOString().replace("T", " ").replace(/:\d\d\.\d+Z$/, " UTC");

const UTC_ZONES = new Set(["UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Etc/Zulu"]);

/** What stands next to the input: the zone it is read in, and the UTC instant typed. */
export function zoneHint(v) {
  if (UTC_ZONES.has(zoneName())) return "UTC";
  const at = v ? wallToDate(v) : null;
  const zone = `${zoneName()} (${offsetAt(at || new Date())})`;
  return at ? `${zone} = ${utcText(at)}` : zone;
}

/** The expiresAt input with its zone: one piece for every form that takes one. */
export function expiresInput(label, title) {
  const input = el("input", { name: "expiresAt", type: "datetime-local", step: 60 });
  const zone = el("small", { class: "tz" }, zoneHint(""));
  input.addEventListener("input", () => { zone.textContent = zoneHint(input.value); });
  return el("label", { class: "expires-input", title }, label, input, zone);
}

/** The UTC ISO-8601 instant (`2099-06-30T07:00:00Z`) of the expiresAt typed, or null;
 * text that is no date is sent as it is, for the API to name what is wrong with it. */
export function expiresOf(form) {
  const v = value(form, "expiresAt");
  if (v === "") return null;
  const at = wallToDate(v);
  return at ? at.toISOString().replace(/\.000Z$/, "Z") : v;
}

// ------------------------------------------------------------------ whole forms

/** The inputs a form that opens a position adds to its grid: expiresAt (labelled by the
 * form: a position's time limit, a trigger's own expiry), the trailing stop and a ladder. */
export function orderInputs(expiresLabel, expiresTitle) {
  return [expiresInput(expiresLabel, expiresTitle), trailingInputs(), ladderInputs([{}, {}])];
}

/** The trailing stop, ladder and moveStopToEntryAfter typed in `form`, as the API names
 * them; what was not typed is left out. */
export function orderFieldsOf(form) {
  const out = {};
  const trailing = trailingOf(form);
  if (trailing) out.trailingStop = trailing;
  const legs = ladderOf(form);
  if (legs.length) out.takeProfits = legs;
  const after = moveAfterOf(form);
  if (after !== null) out.moveStopToEntryAfter = after;
  return out;
}

/** Pydantic names list items `takeProfits.1.price`; the domain, `takeProfits[1].price`
 * (the inputs' names): one spelling, so the message lands at the input. */
export function bracketed(err) {
  if (err && err.field) err.field = err.field.replace(/\.(\d+)(?=\.|$)/g, "[$1]");
  return err;
}

/** A trigger's 422 names its action's fields `action.takeProfits.0.price` (the schema) or
 * `takeProfits[0].price` (the domain); the form's inputs are named without `action.`
 * (they are the pieces the open form uses), and `price` alone is the condition's. */
export function actionField(err) {
  bracketed(err);
  if (err && err.field) err.field = err.field.replace(/^action\./, "");
  return err;
}
