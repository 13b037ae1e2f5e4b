// Sweep view: a sweep's runs (or the selected runs) grouped by momentum across seeds:
// final value vs momentum with ± std error bars, mean ± std bands over steps, the best.
// A random or TPE sweep, or one that stops runs early, also gets the search panel.
import { get } from "./api.js";
import { el, formatNumber, plotlyText, replaceRows, showError, throttle } from "./dom.js";
import { plotly } from "./plotly.js";
import * as search from "./search.js";
import * as url from "./url.js";

const PALETTE = ["37,99,235", "220,38,38", "147,51,234", "234,88,12", "8,145,178", "202,138,4"];
const BEST_RGB = "21,128,61";

let ctx;
let memberRuns = new Set();
let searchRuns = new Set();
const refresh = throttle(() => draw(), 2000);

export function init(context) {
  ctx = context;
  document.getElementById("sweep-choice").addEventListener("change", (e) => {
    url.update({ sweep: e.target.value, runs: null });
    draw();
  });
  for (const id of ["sweep-key", "sweep-by", "sweep-threshold"]) {
    document.getElementById(id).addEventListener("change", () => {
      url.update({
        key: document.getElementById("sweep-key").value,
        by: document.getElementById("sweep-by").value,
        threshold: document.getElementById("sweep-threshold").value,
      });
      draw();
    });
  }
}

export async function show() {
  const query = url.params();
  document.getElementById("sweep-key").value = query.get("key") ?? "loss";
  document.getElementById("sweep-by").value = query.get("by") ?? "momentum";
  document.getElementById("sweep-threshold").value = query.get("threshold") ?? "";
  const sweeps = await get("/api/v1/sweeps", { limit: 200 });
  const choice = document.getElementById("sweep-choice");
  choice.replaceChildren(el("option", { value: "" }, "—"),
    ...sweeps.items.map((s) => el("option", { value: s.id }, `#${s.id} ${s.name} (${s.status})`)));
  const runs = url.ids();
  if (!query.get("sweep") && !runs.length && sweeps.items.length) {
    url.update({ sweep: sweeps.items[0].id });
  }
  choice.value = url.params().get("sweep") ?? "";
  await draw();
}

export function onEvent(kind, data) {
  const sweep = Number(url.params().get("sweep"));
  const member = memberRuns.has(data.run_id) || searchRuns.has(data.run_id);
  if (member || (kind === "job" && data.sweep_id === sweep) || kind === "reset") refresh();
}

async function fetchGroups() {
  const query = url.params();
  const ask = {
    key: document.getElementById("sweep-key").value || "loss",
    by: document.getElementById("sweep-by").value || null,
    threshold: document.getElementById("sweep-threshold").value,
    mode: /acc(uracy)?$/.test(document.getElementById("sweep-key").value) ? "max" : "min",
  };
  const sweep = query.get("sweep");
  const runs = url.ids();
  document.getElementById("sweep-source").textContent =
    sweep ? `sweep ${sweep}` : runs.length ? `${runs.length} selected runs` : "";
  if (sweep) return get(`/api/v1/sweeps/${sweep}/summary`, ask);
  if (runs.length) return get("/api/v1/compare/groups", { ...ask, run_ids: runs.join(","), by: ask.by ?? "momentum" });
  return null;
}

async function drawSearch() {
  const id = url.params().get("sweep");
  try {
    const sweep = id ? await get(`/api/v1/sweeps/${id}`) : null;
    const option = sweep && document.querySelector(`#sweep-choice option[value="${sweep.id}"]`);
    if (option) option.textContent = `#${sweep.id} ${sweep.name} (${sweep.status})`; // live status
    if (!sweep || !search.wanted(sweep)) {
      search.hide();
      return [];
    }
    return await search.draw(sweep);
  } catch (error) {
    showError(document.getElementById("sweep-budget"), error);
    return [];
  }
}

async function draw() {
  drawSearch().then((ids) => { searchRuns = new Set(ids); });
  const best = document.getElementById("sweep-best");
  let result;
  try {
    result = await fetchGroups();
  } catch (error) {
    showError(best, error);
    return;
  }
  if (!result) {
    best.textContent = "Pick a sweep, or select runs and group them.";
    return;
  }
  memberRuns = new Set(result.groups.flatMap((g) => g.run_ids));
  const isBest = (g) => result.best !== null && JSON.stringify(g.value) === JSON.stringify(result.best.value);
  best.textContent = result.best
    ? `Best ${result.by}: ${JSON.stringify(result.best.value)} — ${result.best.criterion}` : "";
  await drawFinal(result, isBest);
  await drawBands(result, isBest);
  replaceRows(document.querySelector("#sweep-table tbody"), result.groups.map((g) => el("tr",
    { class: isBest(g) ? "best" : "" },
    el("td", {}, JSON.stringify(g.value)), el("td", { class: "num" }, g.runs),
    el("td", { class: "num" }, g.diverged),
    el("td", { class: "num" }, meanStd(g.final)),
    el("td", { class: "num" }, meanStd(g.steps_to_threshold)))));
}

function meanStd(stat) {
  if (stat.mean === null) return "";
  return stat.std === null ? formatNumber(stat.mean) : `${formatNumber(stat.mean)} ± ${formatNumber(stat.std)}`;
}

// A group's value as Plotly's x: numbers on a linear axis (which has no place for
// anything else), or else a category label, which Plotly reads as markup like any text.
function groupX(value, numeric) {
  if (numeric) return typeof value === "number" ? value : null;
  return plotlyText(typeof value === "string" ? value : JSON.stringify(value));
}

async function drawFinal(result, isBest) {
  const Plotly = await plotly();
  const numeric = typeof result.groups[0]?.value === "number";
  const xs = result.groups.map((g) => groupX(g.value, numeric));
  const trace = {
    x: xs, y: result.groups.map((g) => g.final.mean), type: "scatter", mode: "markers+lines",
    name: `final ${plotlyText(result.key)}`,
    error_y: { type: "data", array: result.groups.map((g) => g.final.std ?? 0), visible: true },
    marker: {
      size: result.groups.map((g) => (isBest(g) ? 16 : 9)),
      color: result.groups.map((g) => (isBest(g) ? "#15803d" : "#2563eb")),
      symbol: result.groups.map((g) => (isBest(g) ? "star" : "circle")),
    },
    meta: { role: "final" },
  };
  return Plotly.react("sweep-final", [trace], {
    title: { text: `final ${plotlyText(result.key)} vs ${plotlyText(result.by)} (mean ± std across seeds)` },
    xaxis: { title: { text: plotlyText(result.by) }, type: numeric ? "linear" : "category" },
    margin: { t: 40, r: 20, b: 50, l: 60 },
  }, { responsive: true, displaylogo: false });
}

async function drawBands(result, isBest) {
  const Plotly = await plotly();
  const traces = result.groups.flatMap((g, i) => {
    const rgb = isBest(g) ? BEST_RGB : PALETTE[i % PALETTE.length];
    const color = `rgb(${rgb})`;
    const name = `${plotlyText(result.by)}=${plotlyText(JSON.stringify(g.value))}`;
    const upper = g.curve.mean.map((m, j) => (m === null ? null : m + (g.curve.std[j] ?? 0)));
    const lower = g.curve.mean.map((m, j) => (m === null ? null : m - (g.curve.std[j] ?? 0)));
    const band = { x: g.curve.steps, type: "scatter", mode: "lines", line: { width: 0, color }, showlegend: false, hoverinfo: "skip", legendgroup: name };
    return [
      { ...band, y: upper, meta: { role: "band" } },
      { ...band, y: lower, fill: "tonexty", fillcolor: `rgba(${rgb},0.15)`, meta: { role: "band" } },
      { x: g.curve.steps, y: g.curve.mean, type: "scatter", mode: "lines", name, legendgroup: name,
        line: { color, width: isBest(g) ? 3 : 1.5 }, meta: { role: "mean", value: g.value } },
    ];
  });
  return Plotly.react("sweep-bands", traces, {
    title: { text: `${plotlyText(result.key)} over steps, mean ± std per ${plotlyText(result.by)}` },
    xaxis: { title: { text: "step" } }, margin: { t: 40, r: 20, b: 50, l: 60 },
  }, { responsive: true, displaylogo: false });
}
