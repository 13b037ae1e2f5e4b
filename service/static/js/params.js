// Which params tell the runs shown apart: legends, hovers and tables name only those,
// and the params every run shares are said once, above the charts.
import { formatNumber } from "./dom.js";

const SHORT = { momentum: "μ" };
const BARE = new Set(["optimizer"]); // "adam" says what it is without "optimizer="
// Perceptually even and readable on white: Viridis' stops.
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
  "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// A run's params, with the indexed columns filled in for runs logged without them.
export function paramsOf(run) {
  const params = { ...(run.params ?? {}) };
  for (const name of ["optimizer", "momentum", "lr"]) {
    if (params[name] === undefined && run[name] !== null && run[name] !== undefined) params[name] = run[name];
  }
  return params;
}

// { differ: [names that differ between the runs, ordered], common: {name: shared value} }
export function splitParams(runs) {
  const all = runs.map(paramsOf);
  const names = [...new Set(all.flatMap((p) => Object.keys(p)))];
  const differ = [];
  const common = {};
  for (const name of names) {
    const first = all[0][name];
    if (all.every((p) => name in p && same(p[name], first))) common[name] = first;
    else differ.push(name);
  }
  return { differ: orderNames(differ), common };
}

// momentum, lr, optimizer first (what this dashboard is about), seed last, others by name.
export function orderNames(names) {
  const rank = (n) => ({ optimizer: 0, momentum: 1, lr: 2, seed: 9 })[n] ?? 5;
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export function valueText(value) {
  if (value === undefined) return "—";
  if (typeof value === "number") return String(value).length <= 10 ? String(value) : formatNumber(value);
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function paramLabel(name) {
  return SHORT[name] ?? name;
}

export function paramText(name, value) {
  return BARE.has(name) ? valueText(value) : `${paramLabel(name)}=${valueText(value)}`;
}

// "adam, μ=0.9, seed=1": the run's values of the differing params.
export function describe(run, differ) {
  const params = paramsOf(run);
  return differ.map((name) => paramText(name, params[name])).join(", ");
}

export function commonText(common, count) {
  const names = orderNames(Object.keys(common));
  if (!names.length || count < 2) return "";
  return `Same in all ${count} runs: ${names.map((n) => `${paramLabel(n)}=${valueText(common[n])}`).join(", ")}`;
}

// The param to colour many runs by: the swept one (momentum first), never the seed.
export function colourParam(runs, differ) {
  const swept = differ.filter((n) => n !== "seed");
  return swept.find((n) => n === "momentum") ?? swept[0] ?? null;
}

export function isNumeric(values) {
  return values.length > 0 && values.every((v) => typeof v === "number" && Number.isFinite(v));
}

// A colour for each distinct value, in the values' order: the palette for anything but
// numbers; for numbers a Viridis scale, spaced by rank when a legend lists the values
// (μ = 0.9 and 0.99 differ as much as 0 and 0.5 do), else by value, as a colour bar reads.
export function colourScale(values) {
  const distinct = [...new Map(values.map((v) => [JSON.stringify(v), v])).values()];
  if (!isNumeric(distinct)) {
    distinct.sort((a, b) => valueText(a).localeCompare(valueText(b)));
    return new Map(distinct.map((v, i) => [JSON.stringify(v), PALETTE[i % PALETTE.length]]));
  }
  distinct.sort((a, b) => a - b);
  const last = Math.max(1, distinct.length - 1);
  const [low, high] = [distinct[0], distinct[last]];
  const position = distinct.length > PALETTE.length
    ? (v) => (high > low ? (v - low) / (high - low) : 0.5) : (v, i) => i / last;
  return new Map(distinct.map((v, i) => [JSON.stringify(v), viridis(position(v, i))]));
}

// The scale of colourScale's by-value colours, as Plotly's colorscale.
export const VIRIDIS_SCALE = [0, 0.25, 0.5, 0.75, 1].map((t) => [t, viridis(t)]);

// Viridis up to 85 %: its last, pale yellow stretch is hard to see on white.
export function viridis(t) {
  const x = Math.min(1, Math.max(0, t)) * 0.85 * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const mix = VIRIDIS[i].map((c, k) => Math.round(c + (VIRIDIS[i + 1][k] - c) * (x - i)));
  return `rgb(${mix.join(",")})`;
}
