// The sweep view's verdict charts: the summary vs the grouping param with each group's
// confidence interval (the best starred, groups not distinguishable from it marked), the
// groups' curves over steps with their intervals, and the groups table.
import { el, formatNumber, plotlyText, replaceRows } from "./dom.js";
import { valueText } from "./params.js";
import { plotly } from "./plotly.js";

const PALETTE = ["37,99,235", "220,38,38", "147,51,234", "234,88,12", "8,145,178", "202,138,4"];
const BEST_RGB = "21,128,61";
const TIED = "#d97706";
const CONFIG = { responsive: true, displaylogo: false };
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// How each group stands against the best: "best", "tied" (not distinguishable), "worse".
export function standings(verdict) {
  const byValue = new Map(verdict.comparisons.map((c) => [JSON.stringify(c.value), c]));
  return verdict.groups.map((g) => {
    if (verdict.best && same(g.value, verdict.best.value)) return { kind: "best", comparison: null };
    const comparison = byValue.get(JSON.stringify(g.value)) ?? null;
    return { kind: comparison && !comparison.significant ? "tied" : "worse", comparison };
  });
}

// A group's value as Plotly's x: numbers on a linear axis (which has no place for
// anything else), or else a category label, which Plotly reads as markup like any text.
function groupX(value, numeric) {
  if (numeric) return typeof value === "number" ? value : null;
  return plotlyText(typeof value === "string" ? value : JSON.stringify(value));
}

function pValueText(p) {
  return p < 0.001 ? "p<0.001" : `p=${formatNumber(p, 2)}`;
}

function hoverLine(verdict, g, standing) {
  const head = `${plotlyText(verdict.by)}=${plotlyText(valueText(g.value))}: ${formatNumber(g.mean)}`;
  const interval = g.ci_low === null ? `n=${g.n}: no interval` : `${Math.round(verdict.confidence * 100)} % CI ${formatNumber(g.ci_low)} – ${formatNumber(g.ci_high)}, n=${g.n}`;
  const c = standing.comparison;
  const against = standing.kind === "best" ? "best"
    : standing.kind === "tied" ? `not distinguishable from the best${c.p_value === null ? "" : ` (${pValueText(c.p_value)})`}`
      : c ? `worse than the best (${pValueText(c.p_value)})` : "";
  return `${head}<br>${interval}<br>${against}${g.diverged ? `<br>${g.diverged} diverged` : ""}`;
}

export async function drawValueChart(verdict) {
  const Plotly = await plotly();
  const numeric = verdict.groups.length > 0 && verdict.groups.every((g) => typeof g.value === "number");
  const stand = standings(verdict);
  const colour = { best: `rgb(${BEST_RGB})`, tied: TIED, worse: "#2563eb" };
  const symbol = { best: "star", tied: "diamond-open", worse: "circle" };
  const trace = {
    x: verdict.groups.map((g) => groupX(g.value, numeric)), y: verdict.groups.map((g) => g.mean),
    type: "scatter", mode: "markers+lines", line: { color: "#9ca3af", width: 1 },
    name: `${plotlyText(verdict.summary)} ${plotlyText(verdict.key)}`,
    error_y: {
      type: "data", symmetric: false, visible: true,
      array: verdict.groups.map((g) => (g.ci_high === null ? 0 : g.ci_high - g.mean)),
      arrayminus: verdict.groups.map((g) => (g.ci_low === null ? 0 : g.mean - g.ci_low)),
    },
    marker: {
      size: stand.map((s) => (s.kind === "best" ? 16 : 11)), line: { width: 2, color: stand.map((s) => colour[s.kind]) },
      color: stand.map((s) => colour[s.kind]), symbol: stand.map((s) => symbol[s.kind]),
    },
    text: verdict.groups.map((g, i) => hoverLine(verdict, g, stand[i])),
    hovertemplate: "%{text}<extra></extra>",
    meta: { role: "groups", standing: stand.map((s) => s.kind) },
  };
  const level = Math.round(verdict.confidence * 100);
  return Plotly.react("sweep-final", [trace], {
    title: { text: `${plotlyText(verdict.summary)} ${plotlyText(verdict.key)} vs ${plotlyText(verdict.by)}: mean and ${level} % confidence interval (★ best, ◇ not distinguishable from it)` },
    xaxis: { title: { text: plotlyText(verdict.by) }, type: numeric ? "linear" : "category" },
    margin: { t: 40, r: 20, b: 50, l: 60 },
  }, CONFIG);
}

export async function drawBands(result) {
  const Plotly = await plotly();
  const best = (g) => result.best !== null && same(g.value, result.best.value);
  const traces = result.groups.flatMap((g, i) => {
    const rgb = best(g) ? BEST_RGB : PALETTE[i % PALETTE.length];
    const color = `rgb(${rgb})`;
    const name = `${plotlyText(result.by)}=${plotlyText(JSON.stringify(g.value))}`;
    const band = { x: g.curve.steps, type: "scatter", mode: "lines", line: { width: 0, color }, showlegend: false, hoverinfo: "skip", legendgroup: name };
    return [
      { ...band, y: g.curve.ci_high.map((v, j) => v ?? g.curve.mean[j]), meta: { role: "band" } },
      { ...band, y: g.curve.ci_low.map((v, j) => v ?? g.curve.mean[j]), fill: "tonexty", fillcolor: `rgba(${rgb},0.15)`, meta: { role: "band" } },
      { x: g.curve.steps, y: g.curve.mean, type: "scatter", mode: "lines", name, legendgroup: name,
        line: { color, width: best(g) ? 3 : 1.5 }, meta: { role: "mean", value: g.value } },
    ];
  });
  return Plotly.react("sweep-bands", traces, {
    title: { text: `${plotlyText(result.key)} over steps: mean and 95 % confidence interval per ${plotlyText(result.by)}` },
    xaxis: { title: { text: "step" } }, margin: { t: 40, r: 20, b: 50, l: 60 },
  }, CONFIG);
}

function interval(g) {
  if (g.mean === null) return "";
  return g.ci_low === null ? formatNumber(g.mean) : `${formatNumber(g.mean)} [${formatNumber(g.ci_low)}, ${formatNumber(g.ci_high)}]`;
}

function standingText(standing) {
  const c = standing.comparison;
  if (standing.kind === "best") return "best";
  if (!c) return "";
  const p = c.p_value === null ? "no test (too few runs or no spread)" : pValueText(c.p_value);
  if (c.significant) return `worse, ${p}`;
  const more = c.seeds_needed === null ? "" : `; about ${c.seeds_needed} runs per value would tell`;
  return `not distinguishable yet, ${p}${more}`;
}

export function renderTable(verdict) {
  const stand = standings(verdict);
  const level = Math.round(verdict.confidence * 100);
  const head = document.querySelector("#sweep-table thead tr");
  head.replaceChildren(...["Value", "Runs", "Diverged", `Mean [${level} % CI]`,
    ...(verdict.summary === "steps_to_threshold" ? ["Reached"] : []), "Against the best"]
    .map((text) => el("th", {}, text)));
  replaceRows(document.querySelector("#sweep-table tbody"), verdict.groups.map((g, i) => el("tr",
    { class: { best: "best", tied: "tied", worse: "" }[stand[i].kind] },
    el("td", {}, JSON.stringify(g.value)), el("td", { class: "num" }, g.n),
    el("td", { class: "num" }, g.diverged), el("td", { class: "num" }, interval(g)),
    verdict.summary === "steps_to_threshold" ? el("td", { class: "num" }, `${g.reached}/${g.n}`) : null,
    el("td", {}, standingText(stand[i])))));
}
