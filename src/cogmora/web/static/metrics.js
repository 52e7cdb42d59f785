// Prometheus text exposition (what /metrics serves), parsed in the page so the operator
// view shows the very numbers a scraper sees, not a second, drifting JSON summary.

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** -> [{name, labels: {k: v}, value: number}] */
export function parseMetrics(text) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || "").matchAll(LABEL)) labels[k] = v.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export const pick = (samples, name, where = {}) =>
  samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v));

export const total = (samples, name, where = {}) =>
  pick(samples, name, where).reduce((sum, s) => sum + s.value, 0);

/** A histogram's cumulative `_bucket`s as per-bucket counts: [{le, count}]. */
export function buckets(samples, name) {
  const rows = pick(samples, `${name}_bucket`)
    .map((s) => ({ le: s.labels.le, bound: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), cum: s.value }))
    .sort((a, b) => a.bound - b.bound);
  let prev = 0;
  return rows.map((r) => { const count = r.cum - prev; prev = r.cum; return { le: r.le, count }; });
}
