// The sweep view's maps of the objective over the params swept: a heatmap when two
// params form a grid, a scatter coloured by the objective for random and TPE samples (or
// any points off a grid), the objective against the effective step size lr / (1 − μ) for
// optimizers with momentum, and parallel coordinates when three or more params vary.
// Hovers and axes name only the params that differ between the runs shown.
import { formatNumber, plotlyText } from "./dom.js";
import { describe, isNumeric, orderNames, paramLabel, paramsOf, splitParams, valueText } from "./params.js";
import { clear, drawWith, plotlyFor } from "./plotly.js";

const CONFIG = { responsive: true, displaylogo: false };
const MOMENTUM_OPTIMIZERS = new Set(["momentum", "sgd_momentum", "nesterov"]);
const NON_FINITE = new Set(["NaN", "Infinity", "-Infinity"]);

// One point per run with a finite objective: {run, params, value}.
export function points(runs, summaries, summary) {
  const byId = new Map(summaries.map((s) => [s.run_id, s]));
  return runs.flatMap((run) => {
    const s = byId.get(run.id);
    const value = s?.[summary];
    if (!s || s.diverged || value === null || value === undefined || NON_FINITE.has(value)) return [];
    return [{ run, params: paramsOf(run), value }];
  });
}

// What to draw for these runs: the params that vary (the seed only repeats a setting).
export function plan(runs, strategy) {
  const { differ, common } = splitParams(runs);
  const swept = differ.filter((name) => name !== "seed");
  const values = (name) => runs.map((run) => paramsOf(run)[name]);
  const numeric = swept.filter((name) => isNumeric(values(name)));
  const pair = orderNames(numeric).slice(0, 2);
  const sampled = strategy === "random" || strategy === "tpe";
  let map = null;
  if (pair.length === 2 && (sampled || !isGrid(runs, pair))) map = "scatter";
  else if (swept.length === 2 && isGrid(runs, swept)) map = "heatmap";
  return { differ, common, swept, pair: map === "heatmap" ? orderNames(swept) : pair, map,
    parcoords: swept.length >= 3, step: hasMomentum(runs) };
}

function isGrid(runs, [a, b]) {
  const key = (run, name) => JSON.stringify(paramsOf(run)[name]);
  const pairs = new Set(runs.map((run) => `${key(run, a)}|${key(run, b)}`));
  const as = new Set(runs.map((run) => key(run, a)));
  const bs = new Set(runs.map((run) => key(run, b)));
  return pairs.size === as.size * bs.size;
}

function usesMomentum(params) {
  const { lr, momentum, optimizer } = params;
  const typed = optimizer === undefined || MOMENTUM_OPTIMIZERS.has(optimizer);
  return typed && typeof lr === "number" && typeof momentum === "number" && momentum >= 0 && momentum < 1;
}

function hasMomentum(runs) {
  const steps = new Set(runs.map(paramsOf).filter(usesMomentum).map((p) => p.lr / (1 - p.momentum)));
  return steps.size >= 2;
}

function spansDecades(values) {
  const positive = values.filter((v) => v > 0);
  return positive.length === values.length && Math.max(...values) / Math.min(...values) >= 100;
}

function objectiveTitle(ask) {
  return `${plotlyText(ask.summary)} ${plotlyText(ask.key)}`;
}

// Viridis with the better end bright: reversed when lower is better.
function colour(ask, values, title) {
  return { color: values, colorscale: "Viridis", reversescale: ask.mode === "min", showscale: true,
    colorbar: { title: { text: title } } };
}

function runHover(point, differ) {
  const text = differ.length ? `${point.run.name} (${describe(point.run, differ)})` : point.run.name;
  return plotlyText(text);
}

async function drawHeatmap(node, pts, planned, ask) {
  const [y, x] = planned.pair; // momentum on y, lr on x, as one reads lr × μ
  const sortValues = (name) => [...new Map(pts.map((p) => [JSON.stringify(p.params[name]), p.params[name]])).values()]
    .sort((a, b) => (typeof a === "number" && typeof b === "number" ? a - b : valueText(a).localeCompare(valueText(b))));
  const xs = sortValues(x);
  const ys = sortValues(y);
  const cells = ys.map(() => xs.map(() => []));
  for (const p of pts) {
    cells[ys.findIndex((v) => JSON.stringify(v) === JSON.stringify(p.params[y]))][xs.findIndex((v) => JSON.stringify(v) === JSON.stringify(p.params[x]))].push(p.value);
  }
  const mean = (list) => (list.length ? list.reduce((a, b) => a + b, 0) / list.length : null);
  const z = cells.map((row) => row.map(mean));
  const text = cells.map((row, i) => row.map((list, j) => `${plotlyText(paramLabel(y))}=${plotlyText(valueText(ys[i]))}, ${plotlyText(paramLabel(x))}=${plotlyText(valueText(xs[j]))}<br>${objectiveTitle(ask)}: ${list.length ? formatNumber(mean(list)) : "no run"} (${list.length} runs)`));
  const trace = { type: "heatmap", z, x: xs.map((v) => plotlyText(valueText(v))), y: ys.map((v) => plotlyText(valueText(v))),
    text, hovertemplate: "%{text}<extra></extra>", colorscale: "Viridis", reversescale: ask.mode === "min",
    colorbar: { title: { text: objectiveTitle(ask) } }, meta: { role: "heatmap" } };
  const Plotly = await plotlyFor("heatmap");
  return drawWith(Plotly, node, [trace], {
    title: { text: `${objectiveTitle(ask)} over ${plotlyText(paramLabel(x))} × ${plotlyText(paramLabel(y))} (mean across seeds)` },
    xaxis: { title: { text: plotlyText(paramLabel(x)) }, type: "category" },
    yaxis: { title: { text: plotlyText(paramLabel(y)) }, type: "category" },
    margin: { t: 40, r: 20, b: 50, l: 70 },
  }, CONFIG);
}

async function drawScatter(node, pts, planned, ask) {
  const [y, x] = planned.pair;
  const axis = (name) => ({ title: { text: plotlyText(paramLabel(name)) }, type: spansDecades(pts.map((p) => p.params[name])) ? "log" : "linear" });
  const trace = { type: "scatter", mode: "markers", x: pts.map((p) => p.params[x]), y: pts.map((p) => p.params[y]),
    marker: { size: 10, ...colour(ask, pts.map((p) => p.value), objectiveTitle(ask)) },
    text: pts.map((p) => `${runHover(p, planned.differ)}<br>${objectiveTitle(ask)}: ${formatNumber(p.value)}`),
    hovertemplate: "%{text}<extra></extra>", meta: { role: "samples" } };
  const Plotly = await plotlyFor("scatter");
  return drawWith(Plotly, node, [trace], {
    title: { text: `${objectiveTitle(ask)} of each sample over ${plotlyText(paramLabel(x))} × ${plotlyText(paramLabel(y))}` },
    xaxis: axis(x), yaxis: axis(y), margin: { t: 40, r: 20, b: 50, l: 70 }, hovermode: "closest",
  }, CONFIG);
}

async function drawEffectiveStep(node, pts, planned, ask) {
  const used = pts.filter((p) => usesMomentum(p.params));
  const step = (p) => p.params.lr / (1 - p.params.momentum);
  const trace = { type: "scatter", mode: "markers", x: used.map(step), y: used.map((p) => p.value),
    marker: { size: 9, color: used.map((p) => p.params.momentum), colorscale: "Viridis", showscale: true, colorbar: { title: { text: "μ" } } },
    text: used.map((p) => `${runHover(p, planned.differ)}<br>lr / (1 − μ) = ${formatNumber(step(p))}<br>${objectiveTitle(ask)}: ${formatNumber(p.value)}`),
    hovertemplate: "%{text}<extra></extra>", meta: { role: "effective-step" } };
  const Plotly = await plotlyFor("scatter");
  return drawWith(Plotly, node, [trace], {
    title: { text: `${objectiveTitle(ask)} vs effective step size lr / (1 − μ), one point per run` },
    xaxis: { title: { text: "lr / (1 − μ)" }, type: "log" }, yaxis: { title: { text: objectiveTitle(ask) } },
    margin: { t: 40, r: 20, b: 50, l: 70 }, hovermode: "closest",
  }, CONFIG);
}

function dimension(name, pts) {
  const values = pts.map((p) => p.params[name]);
  const label = plotlyText(paramLabel(name));
  if (isNumeric(values)) return { label, values };
  const names = [...new Set(values.map(valueText))].sort();
  return { label, values: values.map((v) => names.indexOf(valueText(v))), tickvals: names.map((_, i) => i), ticktext: names.map(plotlyText) };
}

async function drawParcoords(node, pts, planned, ask) {
  const dimensions = [...orderNames(planned.swept).map((name) => dimension(name, pts)),
    { label: objectiveTitle(ask), values: pts.map((p) => p.value) }];
  const trace = { type: "parcoords", dimensions, line: colour(ask, pts.map((p) => p.value), objectiveTitle(ask)),
    meta: { role: "parcoords" } };
  const Plotly = await plotlyFor("parcoords");
  return drawWith(Plotly, node, [trace], {
    title: { text: `${objectiveTitle(ask)} across the ${planned.swept.length} params swept, one line per run` },
    margin: { t: 80, r: 60, b: 30, l: 60 },
  }, CONFIG);
}

// Starts loading the bundles these runs' maps will need, before their values arrive.
export function preloadBundles(runs, strategy) {
  const planned = plan(runs, strategy);
  if (planned.map === "heatmap") plotlyFor("heatmap").catch(() => null);
  if (planned.parcoords) plotlyFor("parcoords").catch(() => null);
}

async function show(node, wanted, draw) {
  node.hidden = !wanted;
  if (!wanted) return clear(node);
  try {
    return await draw();
  } catch (error) {
    node.hidden = true;
    throw error;
  }
}

// Draws every map these runs call for; hides the others. Rejects with the first failure.
export async function drawMaps(runs, summaries, ask, strategy) {
  const planned = plan(runs, strategy);
  const pts = points(runs, summaries, ask.summary);
  const node = (id) => document.getElementById(id);
  const drawn = await Promise.allSettled([
    show(node("sweep-map"), planned.map === "heatmap" && pts.length > 0, () => drawHeatmap(node("sweep-map"), pts, planned, ask)),
    show(node("sweep-map-samples"), planned.map === "scatter" && pts.length > 0, () => drawScatter(node("sweep-map-samples"), pts, planned, ask)),
    show(node("sweep-step"), planned.step && pts.length > 0, () => drawEffectiveStep(node("sweep-step"), pts, planned, ask)),
    show(node("sweep-parcoords"), planned.parcoords && pts.length > 0, () => drawParcoords(node("sweep-parcoords"), pts, planned, ask)),
  ]);
  const failed = drawn.find((d) => d.status === "rejected");
  if (failed) throw failed.reason;
  return planned;
}
