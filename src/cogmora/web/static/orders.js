// SPEC 5.2 order inputs shared by the open form and the amend editors of an open position:
// the trailing stop, the take-profit ladder (with moveStopToEntryAfter) and expiresAt.
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

/** A `datetime-local` value is read as UTC (every time on the page is UTC). */
export function expiresOf(form) {
  const v = value(form, "expiresAt");
  if (v === "") return null;
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(v) ? `${v}:00Z` : /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(v) ? `${v}Z` : v;
}

/** Pydantic names list items `takeProfits.1.price`; the domain, `takeProfits[1].price`
 * (the inputs' names): one spelling, so the message lands at the input. */
export function bracketed(err) {
  if (err && err.field) err.field = err.field.replace(/\.(\d+)(?=\.|$)/g, "[$1]");
  return err;
}
