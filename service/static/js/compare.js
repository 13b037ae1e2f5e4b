// Compare view: each key's curves of the selected runs overlaid, smoothing, log scale,
// zoom that re-fetches its range at full resolution, and the summary table.
import { get, getRuns } from "./api.js";
import { colourBarTrace, mergeByValue, runStyles, tracesFor } from "./curves.js";
import { drawArtifacts } from "./artifacts.js";
import { el, formatNumber, plotlyText, replaceRows, showError, throttle } from "./dom.js";
import { findingList, findingsFor, marks } from "./findings.js";
import { commonText, paramLabel, paramsOf, valueText } from "./params.js";
import { drawWith, plotly, plotlyFor } from "./plotly.js";
import * as url from "./url.js";

// Points per series and view: about one per device pixel across the chart, so a zoomed
// range that short comes back whole and a long one costs no more than the screen shows;
// many runs share POINTS_PER_CHART, which keeps a chart of 100 runs quick to draw.
const POINTS_PER_CHART = 40_000;
function maxPoints(runCount) {
  const width = document.getElementById("charts").clientWidth || 1200;
  const perPixel = Math.min(4000, Math.max(500, Math.round(width * (window.devicePixelRatio || 1))));
  return Math.max(200, Math.min(perPixel, Math.floor(POINTS_PER_CHART / Math.max(1, runCount))));
}
// From this many runs a chart draws its curves with WebGL (the strict bundle, loaded
// then), where SVG's one path per run takes too long to draw and to hover.
const WEBGL_FROM_RUNS = 101;
const CONFIG = { responsive: true, displaylogo: false };
// Findings are marked on a chart for at most this many runs; past it a chart of
// hundreds of shaded regions is slow to draw and unreadable, and the list under the
// chart still names every one.
const MARKED_RUNS = 12;

let ctx;
let runs = [];
let look = runStyles([]);
let keys = [];
let range = null; // [start_step, end_step] while zoomed
let drawing = false;
let drawings = 0; // which drawing is the latest: late findings mark only that one
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
  runs = ids.length ? await getRuns(ids) : [];
  look = runStyles(runs);
  document.getElementById("compare-common").textContent = commonText(look.common, runs.length);
  if (asked) keys = asked;
  const charted = early ? drawCharts(early) : null;
  const available = await availableKeys(charted);
  keys = asked ?? defaultKeys(available);
  renderKeyChoices(available);
  renderSummaryChoices(available);
  const drawn = charted ?? drawCharts();
  // The artifacts are a request per run: listed once the charts are drawn.
  const listed = drawn.catch(() => null).then(() => drawArtifacts(runs));
  await Promise.all([drawn, drawSummary(), listed]);
}

// Every key the runs logged: each run's `latest` has one value per key.
async function availableKeys(after) {
  await after?.catch(() => null); // its own caller reports a failed draw
  return [...new Set(runs.flatMap((run) => Object.keys(run.latest ?? {})))].sort();
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

function fetchCurves(runIds = runs.map((r) => r.id), keyList = keys) {
  const query = url.params();
  const smoothing = Number(query.get("smooth") ?? 0);
  return get("/api/v1/compare", {
    run_ids: runIds.join(","),
    keys: keyList.join(","),
    x: query.get("x") ?? "step",
    smoothing: smoothing > 0 ? smoothing : null,
    max_points: maxPoints(runIds.length),
    start_step: range ? Math.max(0, Math.floor(range[0])) : null,
    end_step: range ? Math.max(0, Math.ceil(range[1])) : null,
  });
}

// Resolves once the curves are drawn; the findings are marked after, in the background
// (with many runs flagged they are many requests, which nothing else waits for).
async function drawCharts(fetched = null) {
  drawing = true;
  try {
    await drawChartsNow(fetched);
  } finally {
    drawing = false; // a zoom while the findings are on their way is the user's
  }
}

async function drawChartsNow(fetched) {
  const container = document.getElementById("charts");
  if (!runs.length || !keys.length) {
    container.replaceChildren();
    return;
  }
  const curves = fetched ?? fetchCurves();
  const webgl = runs.length >= WEBGL_FROM_RUNS;
  const Plotly = await (webgl ? plotlyFor("scattergl").catch(() => plotly()) : plotly());
  const type = webgl && Plotly !== (await plotly()) ? "scattergl" : "scatter";
  const x = url.params().get("x") ?? "step";
  // A chart's first drawing costs Plotly far more than the next ones: lay out the empty
  // charts while the curves are still on their way.
  await Promise.all(keys.map((key) => {
    const node = chartFor(container, key);
    return node.data ? null : drawWith(Plotly, node, [], layoutFor(key, x), CONFIG);
  }));
  const drawn = ++drawings;
  const result = await curves;
  const byRun = new Map(runs.map((r) => [r.id, r]));
  const charted = [...keys];
  for (const key of charted) {
    const perRun = result.series
      .filter((s) => s.key === key)
      .flatMap((s) => tracesFor(s, byRun.get(s.run_id), look.styles.get(s.run_id), result.x, type));
    const traces = look.legendTitle ? mergeByValue(perRun) : perRun;
    if (look.colourBar) traces.push(colourBarTrace(look.colourBar, type));
    const node = chartFor(container, key);
    await drawWith(Plotly, node, traces, layoutFor(key, result.x), CONFIG);
    if (node.wiredTo !== Plotly) { // a chart started afresh by another bundle lost its handler
      node.on("plotly_relayout", onZoom); // Plotly gives the node `on` at its first plot
      node.wiredTo = Plotly;
    }
  }
  for (const node of [...container.children]) {
    if (!keys.includes(node.dataset.key)) node.remove(); // a chart and its findings list
  }
  // Asked for once the curves are drawn: they never wait for (or queue behind) the findings.
  diagnoses(runs).then((found) => {
    if (drawn === drawings) return markFindings(container, charted, result.x, found);
  });
}

async function markFindings(container, chartKeys, x, found) {
  for (const key of chartKeys) {
    const entries = found.get(key);
    const node = chartFor(container, key);
    // Findings are in steps: marked on a step axis only. Only shapes and annotations
    // change, so the user's zoom stays (and onZoom sees no axis change).
    if (x === "step" && entries.length && entries.length <= MARKED_RUNS) {
      await node.plotlyInstance.relayout(node, marks(entries));
    }
    showFindings(node, key, entries);
  }
}

// Each key's findings per run: [{ run, color, findings }].
// Only runs whose listing names a finding are asked for theirs: a hundred runs shown cost
// no hundred requests per key.
async function diagnoses(runs) {
  const flagged = runs.filter((run) => run.findings?.length)
    .map((run) => ({ run, color: look.styles.get(run.id)?.color ?? "#6b7280" }));
  const out = new Map();
  await Promise.all(keys.map(async (key) => {
    const entries = await Promise.all(flagged.map(async ({ run, color }) =>
      ({ run, color, findings: await findingsFor(run.id, key) })));
    out.set(key, entries.filter((e) => e.findings.length));
  }));
  return out;
}

function showFindings(chart, key, entries) {
  const next = chart.nextElementSibling;
  if (next?.classList.contains("findings")) next.remove();
  if (entries.length) chart.after(findingList(key, entries));
}

function layoutFor(key, x) {
  return {
    title: { text: plotlyText(key) }, margin: { t: 40, r: 20, b: 40, l: 60 },
    hovermode: "closest",
    xaxis: { title: { text: x === "step" ? "step" : "seconds" }, ...(range ? { range, autorange: false } : { autorange: true }) },
    yaxis: { type: url.params().get("log") === "1" ? "log" : "linear" },
    // Below the x axis title, growing downwards however many runs it lists.
    legend: { orientation: "h", y: -0.3, yanchor: "top", title: { text: look.legendTitle ?? "" } },
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
    renderSummaryHead();
    replaceRows(tbody, summary.ranking.map((id, i) => summaryRow(byId.get(id), i + 1)));
  } catch (error) {
    const cell = el("td", { colspan: 8 + look.differ.length, class: "field-error" });
    showError(cell, error);
    replaceRows(tbody, [el("tr", {}, cell)]);
  }
}

// The table names only the params that differ between the runs: a column each.
function renderSummaryHead() {
  const head = document.querySelector("#summary-table thead tr");
  const th = (text) => el("th", {}, text);
  head.replaceChildren(th("Rank"), th("Run"),
    ...look.differ.map((name) => el("th", { "data-param": name }, paramLabel(name))),
    ...["Final", "Best", "Best step", "Steps to threshold", "Speed-up", "Diverged"].map(th));
}

function summaryRow(s, rank) {
  const number = (v) => el("td", { class: "num" }, formatNumber(v));
  const run = runs.find((r) => r.id === s.run_id);
  const params = run ? paramsOf(run) : {};
  return el("tr", { "data-run-id": s.run_id },
    el("td", { class: "num" }, rank), el("td", {}, s.run_name),
    ...look.differ.map((name) => el("td", { class: "param" }, valueText(params[name]))),
    number(s.final), number(s.best), number(s.best_step), number(s.steps_to_threshold),
    el("td", { class: "num" }, s.speedup === null ? "" : `${s.speedup.toFixed(2)}×`),
    el("td", { class: s.diverged ? "diverged" : "" }, s.diverged ? "diverged" : ""),
  );
}
