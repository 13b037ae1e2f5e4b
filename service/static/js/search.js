// The search panel of the sweep view, for a random or TPE sweep or one that stops runs
// early: each trial's objective as it comes (with the best-so-far line), every trial's
// live curve with the rung cutoffs drawn on it, stopped runs greyed with their reason on
// hover, and the budget spent. Plotly reads labels as markup: they go in via plotlyText.
import { get } from "./api.js";
import { el, formatNumber, plotlyText, replaceRows } from "./dom.js";
import { plotly } from "./plotly.js";

const CHUNK = 100; // run ids per compare request: the service's default cap
const CURVE_POINTS = 500;
const GREY = "rgb(156,163,175)";
const LIVE = "rgb(37,99,235)";
const BEST = "rgb(21,128,61)";
const CUTOFF = "rgb(220,38,38)";
const LAYOUT = { margin: { t: 40, r: 20, b: 50, l: 60 }, hovermode: "closest" };
const CONFIG = { responsive: true, displaylogo: false };

export function wanted(sweep) {
  return sweep.strategy !== "grid" || sweep.early_stop !== null;
}

export function hide() {
  document.getElementById("sweep-search").hidden = true;
}

// Draws the panel for `sweep` (a GET /sweeps/{id} answer); resolves to its runs' ids,
// whose new points should redraw it.
export async function draw(sweep) {
  const section = document.getElementById("sweep-search");
  section.hidden = false;
  const jobs = await jobsOf(sweep.id);
  const trials = jobs.map((job, i) => ({ job, number: i + 1, run_id: job.run_id }));
  const runIds = trials.map((t) => t.run_id).filter((id) => id !== null);
  const curveKey = sweep.early_stop?.key ?? sweep.objective.key;
  const [objectives, curves] = await Promise.all([
    objectivesOf(runIds, sweep.objective), curvesOf(runIds, curveKey),
  ]);
  for (const trial of trials) trial.objective = objectives.get(trial.run_id) ?? null;
  drawBudget(sweep, trials);
  await drawTrials(sweep, trials);
  await drawCurves(sweep, trials, curves, curveKey);
  drawStopped(trials);
  return runIds;
}

async function jobsOf(sweepId) {
  const page = await get("/api/v1/jobs", { sweep_id: sweepId, limit: 1000 });
  return page.items.sort((a, b) => a.id - b.id);
}

function chunks(ids) {
  const out = [];
  for (let i = 0; i < ids.length; i += CHUNK) out.push(ids.slice(i, i + CHUNK));
  return out;
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

// Each run's objective as the sweep summarises it (final, best or tail_mean of its key),
// from the compare API that defines those summaries.
async function objectivesOf(runIds, objective) {
  const out = new Map();
  for (const ids of chunks(runIds)) {
    const summary = await get("/api/v1/compare/summary", {
      run_ids: ids.join(","), key: objective.key, mode: objective.mode,
    });
    for (const run of summary.runs) out.set(run.run_id, finite(run[objective.summary]));
  }
  return out;
}

async function curvesOf(runIds, key) {
  const out = new Map();
  for (const ids of chunks(runIds)) {
    const result = await get("/api/v1/compare", {
      run_ids: ids.join(","), keys: key, max_points: CURVE_POINTS,
    });
    for (const series of result.series) out.set(series.run_id, series);
  }
  return out;
}

function describeTrial(sweep, trial) {
  const job = trial.job;
  const values = job.config ?? job.params ?? {};
  const names = [...Object.keys(sweep.space ?? {}), ...Object.keys(sweep.grid ?? {})];
  const shown = names.map((name) => `${name}=${formatNumber(values[name])}`).join(" ");
  return `trial ${trial.number} (job ${job.id}) ${shown}`.trim();
}

// Hover text: each line escaped, joined by Plotly's line break.
function lines(...texts) {
  return texts.filter(Boolean).map(plotlyText).join("<br>");
}

function stopReason(trial) {
  return trial.job.early_stopped ? trial.job.early_stopped.reason : null;
}

function drawBudget(sweep, trials) {
  const stopped = trials.filter(stopReason).length;
  const running = trials.filter((t) => t.job.status === "running").length;
  const budget = sweep.strategy === "grid" ? `${sweep.trials} trials`
    : `${sweep.trials}/${sweep.max_jobs} trials`;
  document.getElementById("sweep-budget").textContent =
    `${sweep.strategy}: ${budget} · ${sweep.steps_spent.toLocaleString("en")} steps spent · ` +
    `${stopped} stopped early · ${running} running`;
  const best = sweep.best;
  const trial = best && trials.find((t) => t.job.id === best.job_id);
  const where = trial ? describeTrial(sweep, trial) : best ? `job ${best.job_id}` : "";
  document.getElementById("sweep-search-best").textContent = best
    ? `Best ${sweep.objective.key} (${sweep.objective.summary}): ${formatNumber(best.objective)} — ${where}`
    : "No finished trial yet.";
}

// Objective vs trial number, and the best so far among trials that ran to the end.
async function drawTrials(sweep, trials) {
  const Plotly = await plotly();
  const better = (a, b) => (sweep.objective.mode === "min" ? a < b : a > b);
  const bestLine = [];
  let best = null;
  for (const t of trials) {
    const counts = t.objective !== null && t.job.status === "succeeded" && !stopReason(t);
    if (counts && (best === null || better(t.objective, best))) best = t.objective;
    bestLine.push(best);
  }
  const shown = trials.filter((t) => t.objective !== null);
  const isBest = (t) => sweep.best?.job_id === t.job.id;
  const points = {
    x: shown.map((t) => t.number), y: shown.map((t) => t.objective), type: "scatter",
    mode: "markers", name: "trials",
    hovertext: shown.map((t) => lines(describeTrial(sweep, t), t.job.status, stopReason(t))),
    hovertemplate: "%{hovertext}<br>objective %{y:.4g}<extra></extra>",
    marker: {
      size: shown.map((t) => (isBest(t) ? 16 : 9)),
      color: shown.map((t) => (isBest(t) ? BEST : stopReason(t) ? GREY : LIVE)),
      symbol: shown.map((t) => (isBest(t) ? "star" : stopReason(t) ? "x" : "circle")),
    },
    meta: { role: "trials", job_ids: shown.map((t) => t.job.id), stopped: shown.map((t) => Boolean(stopReason(t))) },
  };
  const line = {
    x: trials.map((t) => t.number), y: bestLine, type: "scatter", mode: "lines",
    name: "best so far", line: { shape: "hv", color: BEST, width: 2 }, meta: { role: "best-so-far" },
  };
  const key = plotlyText(`${sweep.objective.key} (${sweep.objective.mode}, ${sweep.objective.summary})`);
  return Plotly.react("sweep-trials", [points, line], {
    ...LAYOUT, title: { text: `objective by trial: ${key}` },
    xaxis: { title: { text: "trial" }, rangemode: "tozero", dtick: trials.length <= 20 ? 1 : null },
    yaxis: { title: { text: key } },
  }, CONFIG);
}

// Each trial's curve of the key the rule judges; stopped ones grey, their reason on hover;
// each rung's cutoff a red bar at its step, a dotted line across the chart.
async function drawCurves(sweep, trials, curves, key) {
  const Plotly = await plotly();
  const traces = trials.filter((t) => curves.has(t.run_id)).map((t) => {
    const series = curves.get(t.run_id);
    const reason = stopReason(t);
    const label = lines(describeTrial(sweep, t), reason ?? t.job.status);
    return {
      x: series.steps, y: series.values.map(finite), type: "scatter", mode: "lines",
      name: plotlyText(`trial ${t.number}`), opacity: reason ? 0.55 : 1,
      line: { color: reason ? GREY : sweep.best?.job_id === t.job.id ? BEST : LIVE, width: reason ? 1 : 1.5 },
      // One per point: a hovertemplate reads %{hovertext} point by point.
      hovertext: series.steps.map(() => label),
      hovertemplate: "%{hovertext}<br>step %{x}: %{y:.4g}<extra></extra>",
      meta: { role: "trial-curve", job_id: t.job.id, run_id: t.run_id, stopped: Boolean(reason), reason },
    };
  });
  const rungs = (sweep.rungs ?? []).filter((r) => finite(r.cutoff) !== null);
  if (rungs.length) traces.push(rungTrace(rungs, key));
  const shapes = rungs.map((r) => ({
    type: "line", x0: r.step, x1: r.step, yref: "paper", y0: 0, y1: 1,
    line: { color: CUTOFF, width: 1, dash: "dot" },
  }));
  return Plotly.react("sweep-curves", traces, {
    ...LAYOUT, shapes, showlegend: false,
    title: { text: `${plotlyText(key)} of every trial, with the rung cutoffs` },
    xaxis: { title: { text: "step" } }, yaxis: { title: { text: plotlyText(key) } },
  }, CONFIG);
}

function rungTrace(rungs, key) {
  return {
    x: rungs.map((r) => r.step), y: rungs.map((r) => r.cutoff), type: "scatter", mode: "markers",
    name: "rung cutoffs",
    marker: { symbol: "line-ew-open", size: 36, color: CUTOFF, line: { width: 3, color: CUTOFF } },
    hovertext: rungs.map((r) => plotlyText(
      `rung ${r.step}: cutoff ${key} ${formatNumber(r.cutoff)}, ${r.reached} reached, ${r.stopped} stopped`)),
    hovertemplate: "%{hovertext}<extra></extra>",
    meta: { role: "rung", steps: rungs.map((r) => r.step), cutoffs: rungs.map((r) => r.cutoff) },
  };
}

function drawStopped(trials) {
  const stopped = trials.filter(stopReason);
  document.getElementById("sweep-stopped").hidden = stopped.length === 0;
  replaceRows(document.querySelector("#sweep-stopped tbody"), stopped.map((t) => el("tr",
    { "data-job-id": t.job.id, title: stopReason(t) },
    el("td", { class: "num" }, t.number), el("td", { class: "num" }, t.job.id),
    el("td", { class: "num" }, t.job.early_stopped.step), el("td", {}, t.job.early_stopped.rule),
    el("td", { class: "reason" }, stopReason(t)))));
}
