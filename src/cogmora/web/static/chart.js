// A small SVG chart of our own (no CDN, no build step): a line over time with labelled
// horizontal levels (entry, stop, take profits, liquidation), and a bar chart for
// histograms. The SVG is redrawn at the width it is shown at, so text stays legible on a
// phone instead of being scaled down with a fixed viewBox.

const NS = "http://www.w3.org/2000/svg";

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

const short = (v) => {
  const a = Math.abs(v);
  const places = a >= 1000 ? 0 : a >= 10 ? 2 : a >= 1 ? 3 : 6;
  return v.toFixed(places);
};
const clock = (t) => new Date(t).toISOString().slice(11, 16);
const day = (t) => new Date(t).toISOString().slice(5, 10);

function frame(svg, height) {
  const width = Math.max(280, Math.round(svg.getBoundingClientRect().width || svg.parentElement?.clientWidth || 600));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", String(height));
  svg.replaceChildren();
  return width;
}

/**
 * Draw `series` (points {t: ms, v: number}) with `levels` ({value, label, kind}) across.
 * kind is a CSS class: entry, stop, target, liq, trail. Returns the drawn y range.
 */
export function lineChart(svg, { points, levels = [], height = 220, empty = "no data yet" }) {
  const width = frame(svg, height);
  const pad = { l: 8, r: 64, t: 10, b: 20 };
  const values = points.map((p) => p.v).concat(levels.map((l) => l.value));
  if (points.length === 0) {
    svg.append(node("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "muted" }, empty));
    return null;
  }
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi === lo) { hi += Math.abs(hi) * 0.001 || 1; lo -= Math.abs(lo) * 0.001 || 1; }
  const span = hi - lo;
  lo -= span * 0.05; hi += span * 0.05;
  const t0 = points[0].t;
  const t1 = points.length > 1 ? points[points.length - 1].t : t0 + 1;
  const x = (t) => pad.l + ((t - t0) / (t1 - t0 || 1)) * (width - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (height - pad.t - pad.b);

  for (const v of [hi - (hi - lo) * 0.05, (hi + lo) / 2, lo + (hi - lo) * 0.05]) {
    svg.append(node("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(node("text", { x: width - pad.r + 4, y: y(v) + 4, class: "axis" }, short(v)));
  }
  const fmtT = t1 - t0 > 86400000 ? day : clock;
  svg.append(node("text", { x: pad.l, y: height - 4, class: "axis" }, fmtT(t0)));
  svg.append(node("text", { x: width - pad.r, y: height - 4, class: "axis", "text-anchor": "end" }, fmtT(t1)));

  const d = points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  svg.append(node("path", { d, class: "series" }));
  const last = points[points.length - 1];
  svg.append(node("circle", { cx: x(last.t), cy: y(last.v), r: 3, class: "series-dot" }));

  levels.forEach((level) => {
    const g = node("g", { class: `level ${level.kind}`, "data-kind": level.kind, "data-value": String(level.value) });
    g.append(node("line", { x1: pad.l, x2: width - pad.r, y1: y(level.value), y2: y(level.value) }));
    // Labelled at the left, above the line: the right edge carries the axis.
    g.append(node("text", { x: pad.l + 2, y: y(level.value) - 3 }, `${level.label} ${short(level.value)}`));
    g.append(node("title", {}, `${level.label} ${level.value}`));
    svg.append(g);
  });
  return { lo, hi };
}

/** Bars with labels under them (a histogram's buckets); values are counts. */
export function barChart(svg, bars, { height = 160 } = {}) {
  const width = frame(svg, height);
  const pad = { l: 8, r: 8, t: 14, b: 30 };
  const max = Math.max(1, ...bars.map((b) => b.value));
  const slot = (width - pad.l - pad.r) / Math.max(1, bars.length);
  bars.forEach((b, i) => {
    const h = (b.value / max) * (height - pad.t - pad.b);
    const x0 = pad.l + i * slot;
    svg.append(node("rect", { x: x0 + 2, y: height - pad.b - h, width: Math.max(1, slot - 4), height: h, class: "bar" }));
    if (b.value) svg.append(node("text", { x: x0 + slot / 2, y: height - pad.b - h - 3, "text-anchor": "middle", class: "axis" }, String(b.value)));
    svg.append(node("text", { x: x0 + slot / 2, y: height - pad.b + 12, "text-anchor": "middle", class: "axis" }, b.label));
  });
  svg.append(node("text", { x: width / 2, y: height - 3, "text-anchor": "middle", class: "axis" }, "seconds, at most"));
}
