// Compare view: each key's curves of the selected runs overlaid, smoothing, log scale,
// zoom that re-fetches its range at full resolution, and the summary table.
import { get } from "./api.js";
import { drawArtifacts } from "./artifacts.js";
import { el, formatNumber, plotlyText, replaceRows, showError, throttle } from "./dom.js";
import { plotly } from "./plotly.js";
import * as url from "./url.js";

// Points per series and view: about one per device pixel across the chart, so a zoomed
// range that short comes back whole and a long one costs no more than the screen shows.
function maxPoints() {
  const width = document.getElementById("charts").clientWidth || 1200;
  return Math.min(4000, Math.max(500, Math.round(width * (window.devicePixelRatio || 1))));
}
const NON_FINITE = new Set(["NaN", "Infinity", "-Infinity"]);
const CONFIG = { responsive: true, displaylogo: false };
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04",
  "#db2777", "#4b5563", "#65a30d"];

let ctx;
let runs = [];
let keys = [];
let range = null; // [start_step, end_step] while zoomed
let drawing = false;
const refresh = throttle(() => drawCharts(), 1000);

export function init(context) {
  ctx = context;
  const smoothing = document.getElementById("smoothing");
  smoothing.addEventListener("input", () => {
    document.getElementById("smoothing-value").textContent = smoothing.value;
  });
  smoothing.addEventListener("change", () => setOption({ smooth: Number(smoothing.value) || null }));
  document.getElementById("x-axis").addEventListener("change", (e) => {
    range = null;
    setOption({ x: e.target.value === "step" ? null : e.target.value });
  });
  document.getElementById("log-scale").addEventListener("change", (e) => setOption({ log: e.target.checked }));
  document.getElementById("reset-zoom").addEventListener("click", () => {
    range = null;
    drawCharts();
  });
  for (const id of ["summary-key", "threshold", "baseline"]) {
    document.getElementById(id).addEventListener("change", () => {
      url.update({
        key: document.getElementById("summary-key").value,
        threshold: document.getElementById("threshold").value,
        baseline: document.getElementById("baseline").value,
      });
      drawSummary();
    });
  }
}

function setOption(changes) {
  url.update(changes);
  drawCharts();
}

export async function show() {
  const ids = url.ids();
  document.getElementById("compare-empty").hidden = ids.length > 0;
  range = null;
  readOptions();
  const asked = url.params().get("keys")?.split(",").filter(Boolean);
  // Keys named in the URL: fetch the curves at once, beside the runs, and draw them
  // before asking which other keys the runs have (that list only fills the choices).
  const early = asked && ids.length ? fetchCurves(ids, asked) : null;
  runs = await Promise.all(ids.map((id) => get(`/api/v1/runs/${id}`)));
  if (asked) keys = asked;
  const charted = early ? drawCharts(early) : null;
  const available = await availableKeys(ids, charted);
  keys = asked ?? defaultKeys(available);
  renderKeyChoices(available);
  renderSummaryChoices(available);
  await Promise.all([charted ?? drawCharts(), drawSummary(), drawArtifacts(runs)]);
}

async function availableKeys(ids, after) {
  await after?.catch(() => null); // its own caller reports a failed draw
  const listed = await Promise.all(ids.map((id) => get(`/api/v1/runs/${id}/metrics`)));
  return [...new Set(listed.flatMap((l) => l.items.map((s) => s.key)))].sort();
}

function defaultKeys(available) {
  const preferred = ["loss", "accuracy"].filter((k) => available.includes(k));
  return preferred.length ? preferred : available.slice(0, 2);
}

function readOptions() {
  const query = url.params();
  const smoothing = query.get("smooth") ?? "0";
  document.getElementById("smoothing").value = smoothing;
  document.getElementById("smoothing-value").textContent = smoothing;
  document.getElementById("x-axis").value = query.get("x") ?? "step";
  document.getElementById("log-scale").checked = query.get("log") === "1";
  document.getElementById("threshold").value = query.get("threshold") ?? "";
}

function renderKeyChoices(available) {
  const boxes = available.map((key) => el("label", {},
    el("input", {
      type: "checkbox", checked: keys.includes(key), value: key,
      onchange: (event) => {
        keys = event.target.checked ? [...keys, key] : keys.filter((k) => k !== key);
        url.update({ keys: keys.join(",") });
        drawCharts();
      },
    }), ` ${key} `));
  document.getElementById("key-choices").replaceChildren(...boxes);
}

function renderSummaryChoices(available) {
  const query = url.params();
  const keySelect = document.getElementById("summary-key");
  keySelect.replaceChildren(...available.map((k) => el("option", { value: k }, k)));
  keySelect.value = query.get("key") ?? keys[0] ?? available[0] ?? "";
  const baseline = document.getElementById("baseline");
  baseline.replaceChildren(el("option", { value: "" }, "none"),
    ...runs.map((r) => el("option", { value: r.id }, r.name)));
  baseline.value = query.get("baseline") ?? "";
}

export function onEvent(kind, data) {
  if (runs.some((r) => r.id === data.run_id)) {
    refresh();
    if (kind !== "job") throttledSummary();
  }
}
const throttledSummary = throttle(() => drawSummary(), 2000);

function legendName(run) {
  const params = [
    run.optimizer, run.momentum !== null ? `μ=${run.momentum}` : null,
    run.lr !== null ? `lr=${run.lr}` : null, run.params?.seed !== undefined ? `seed=${run.params.seed}` : null,
  ].filter((p) => p !== null && p !== undefined);
  return plotlyText(`${run.name} (${params.join(", ")})`);
}

function finite(values) {
  return values.map((v) => (typeof v === "string" && NON_FINITE.has(v) ? null : v));
}

function tracesFor(series, run, color, x) {
  const xs = x === "step" ? series.steps : series.wall_times;
  const name = legendName(run);
  const meta = { run_id: run.id, key: series.key };
  const traces = [];
  const smoothed = series.smoothed !== null && series.smoothed !== undefined;
  traces.push({
    x: xs, y: finite(series.values), name, legendgroup: String(run.id), type: "scatter",
    mode: "lines", line: { color, width: smoothed ? 1 : 1.5 }, opacity: smoothed ? 0.25 : 1,
    showlegend: !smoothed, hoverinfo: smoothed ? "skip" : undefined,
    meta: { ...meta, role: smoothed ? "raw" : "main" },
  });
  if (smoothed) {
    traces.push({
      x: xs, y: finite(series.smoothed), name, legendgroup: String(run.id), type: "scatter",
      mode: "lines", line: { color, width: 1.8 }, meta: { ...meta, role: "main" },
    });
  }
  const bad = series.values.flatMap((v, i) => (NON_FINITE.has(v) ? [i] : []));
  if (bad.length) traces.push(nonFiniteMarkers(series, xs, bad, run, meta));
  return traces;
}

// NaN/Inf cannot be plotted: mark each at the run's last finite value before it, in red.
function nonFiniteMarkers(series, xs, bad, run, meta) {
  let lastFinite = 0;
  const ys = [];
  let next = 0;
  series.values.forEach((v, i) => {
    if (!NON_FINITE.has(v)) lastFinite = v;
    if (i === bad[next]) { ys.push(lastFinite); next += 1; }
  });
  return {
    x: bad.map((i) => xs[i]), y: ys, type: "scatter", mode: "markers",
    name: `${plotlyText(run.name)}: ${series.values[bad[0]]}`, legendgroup: String(run.id),
    marker: { color: "#b91c1c", symbol: "x", size: 10 },
    text: bad.map((i) => series.values[i]), hovertemplate: "%{text} at %{x}<extra></extra>",
    meta: { ...meta, role: "nonfinite" },
  };
}

function fetchCurves(runIds = runs.map((r) => r.id), keyList = keys) {
  const query = url.params();
  const smoothing = Number(query.get("smooth") ?? 0);
  return get("/api/v1/compare", {
    run_ids: runIds.join(","),
    keys: keyList.join(","),
    x: query.get("x") ?? "step",
    smoothing: smoothing > 0 ? smoothing : null,
    max_points: maxPoints(),
    start_step: range ? Math.max(0, Math.floor(range[0])) : null,
    end_step: range ? Math.max(0, Math.ceil(range[1])) : null,
  });
}

async function drawCharts(fetched = null) {
  drawing = true;
  try {
    await drawChartsNow(fetched);
  } finally {
    drawing = false;
  }
}

async function drawChartsNow(fetched) {
  const container = document.getElementById("charts");
  if (!runs.length || !keys.length) {
    container.replaceChildren();
    return;
  }
  const curves = fetched ?? fetchCurves();
  const Plotly = await plotly();
  const x = url.params().get("x") ?? "step";
  // A chart's first drawing costs Plotly far more than the next ones: lay out the empty
  // charts while the curves are still on their way.
  await Promise.all(keys.map((key) => {
    const node = chartFor(container, key);
    return node.data ? null : Plotly.newPlot(node, [], layoutFor(key, x), CONFIG);
  }));
  const result = await curves;
  const byRun = new Map(runs.map((r, i) => [r.id, { run: r, color: COLORS[i % COLORS.length] }]));
  for (const key of keys) {
    const traces = result.series
      .filter((s) => s.key === key)
      .flatMap((s) => tracesFor(s, byRun.get(s.run_id).run, byRun.get(s.run_id).color, result.x));
    const node = chartFor(container, key);
    await Plotly.react(node, traces, layoutFor(key, result.x), CONFIG);
    if (!node.dataset.wired) {
      node.on("plotly_relayout", onZoom); // Plotly gives the node `on` at its first plot
      node.dataset.wired = "1";
    }
  }
  for (const node of [...container.children]) {
    if (!keys.includes(node.dataset.key)) node.remove();
  }
}

function layoutFor(key, x) {
  return {
    title: { text: plotlyText(key) }, margin: { t: 40, r: 20, b: 40, l: 60 },
    hovermode: "closest",
    xaxis: { title: { text: x === "step" ? "step" : "seconds" }, ...(range ? { range, autorange: false } : { autorange: true }) },
    yaxis: { type: url.params().get("log") === "1" ? "log" : "linear" },
    // Below the x axis title, growing downwards however many runs it lists.
    legend: { orientation: "h", y: -0.3, yanchor: "top" },
  };
}

function chartFor(container, key) {
  const id = `chart-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  let node = document.getElementById(id);
  if (!node) {
    node = el("div", { id, class: "chart", "data-key": key });
    container.append(node);
  }
  return node;
}

// Zooming in on steps re-fetches that range, so it shows at full resolution.
function onZoom(change) {
  if (drawing || url.params().get("x") === "wall_time") return;
  if (change["xaxis.autorange"]) range = null;
  else if (change["xaxis.range[0]"] !== undefined) range = [change["xaxis.range[0]"], change["xaxis.range[1]"]];
  else return;
  drawCharts();
}

async function drawSummary() {
  const tbody = document.querySelector("#summary-table tbody");
  const key = document.getElementById("summary-key").value;
  if (!runs.length || !key) return replaceRows(tbody, []);
  const name = key.split("/").pop();
  const mode = name.endsWith("accuracy") || name.endsWith("acc") ? "max" : "min";
  try {
    const summary = await get("/api/v1/compare/summary", {
      run_ids: runs.map((r) => r.id).join(","), key, mode,
      threshold: document.getElementById("threshold").value,
      baseline: document.getElementById("baseline").value,
    });
    const byId = new Map(summary.runs.map((r) => [r.run_id, r]));
    replaceRows(tbody, summary.ranking.map((id, i) => summaryRow(byId.get(id), i + 1)));
  } catch (error) {
    const cell = el("td", { colspan: 8, class: "field-error" });
    showError(cell, error);
    replaceRows(tbody, [el("tr", {}, cell)]);
  }
}

function summaryRow(s, rank) {
  const number = (v) => el("td", { class: "num" }, formatNumber(v));
  return el("tr", { "data-run-id": s.run_id },
    el("td", { class: "num" }, rank), el("td", {}, s.run_name),
    number(s.final), number(s.best), number(s.best_step), number(s.steps_to_threshold),
    el("td", { class: "num" }, s.speedup === null ? "" : `${s.speedup.toFixed(2)}×`),
    el("td", { class: s.diverged ? "diverged" : "" }, s.diverged ? "diverged" : ""),
  );
}
