// How the compare view draws each run's curve: its colour, its legend entry and hover.
// A few runs get a colour and a legend entry each; many runs are coloured by the swept
// param (a colour scale for numbers), one legend entry per value (a colour bar instead
// when there are more values than a legend can list), the run named on hover.
import { plotlyText } from "./dom.js";
import {
  PALETTE, VIRIDIS_SCALE, colourParam, colourScale, describe, isNumeric, paramLabel, paramText,
  paramsOf, splitParams,
} from "./params.js";

const NON_FINITE = new Set(["NaN", "Infinity", "-Infinity"]);
export const PER_RUN_LEGEND_UP_TO = PALETTE.length;

// { differ, common, legendTitle, styles: Map(run id -> {color, name, group, legend, rank, hover}) }
export function runStyles(runs) {
  const { differ, common } = splitParams(runs);
  const hover = (run) => plotlyText(differ.length ? `${run.name} (${describe(run, differ)})` : run.name);
  const byValue = runs.length > PER_RUN_LEGEND_UP_TO ? colourParam(runs, differ) : null;
  if (!byValue) {
    const styles = new Map(runs.map((run, i) => [run.id, {
      color: PALETTE[i % PALETTE.length], name: hover(run), group: String(run.id), legend: true,
      rank: i, hover: hover(run),
    }]));
    return { differ, common, legendTitle: null, colourBar: null, styles };
  }
  const values = runs.map((run) => paramsOf(run)[byValue]);
  const colours = colourScale(values);
  const bar = colours.size > PALETTE.length && isNumeric(values);
  const ranks = new Map([...colours.keys()].map((key, i) => [key, i]));
  const seen = new Set();
  const styles = new Map(runs.map((run) => {
    const value = paramsOf(run)[byValue];
    const key = JSON.stringify(value) ?? "undefined";
    const first = !seen.has(key);
    seen.add(key);
    return [run.id, {
      color: colours.get(key) ?? "#6b7280", name: plotlyText(paramText(byValue, value)),
      group: `${byValue}=${key}`, legend: first && !bar, rank: ranks.get(key) ?? 0, hover: hover(run),
    }];
  }));
  const title = plotlyText(paramLabel(byValue));
  const colourBar = bar ? { title, low: Math.min(...values), high: Math.max(...values) } : null;
  return { differ, common, legendTitle: title, colourBar, styles };
}

// Many values: no legend entry each, one colour bar for all (a trace with no point).
export function colourBarTrace(colourBar, type) {
  return {
    type, mode: "markers", x: [null], y: [null], showlegend: false, hoverinfo: "skip",
    marker: { color: [colourBar.low, colourBar.high], cmin: colourBar.low, cmax: colourBar.high,
      colorscale: VIRIDIS_SCALE, showscale: true, colorbar: { title: { text: colourBar.title } } },
    meta: { role: "colourbar" },
  };
}

function finite(values) {
  return values.map((v) => (typeof v === "string" && NON_FINITE.has(v) ? null : v));
}

// The traces of one run's series: its curve (and the raw curve, faint, when smoothed) and
// red crosses where it is not finite. `type` is "scatter" (SVG) or "scattergl" (WebGL).
export function tracesFor(series, run, style, x, type) {
  const xs = x === "step" ? series.steps : series.wall_times;
  const meta = { run_id: run.id, key: series.key };
  const smoothed = series.smoothed !== null && series.smoothed !== undefined;
  const common = {
    x: xs, name: style.name, legendgroup: style.group, legendrank: style.rank, type,
    mode: "lines", text: style.hover, hovertemplate: "%{text}<br>%{x}: %{y}<extra></extra>",
  };
  const traces = [{
    ...common, y: finite(series.values), line: { color: style.color, width: smoothed ? 1 : 1.5 },
    opacity: smoothed ? 0.25 : 1, showlegend: style.legend && !smoothed,
    hoverinfo: smoothed ? "skip" : undefined, meta: { ...meta, role: smoothed ? "raw" : "main" },
  }];
  if (smoothed) {
    traces.push({
      ...common, y: finite(series.smoothed), line: { color: style.color, width: 1.8 },
      showlegend: style.legend, meta: { ...meta, role: "main" },
    });
  }
  const bad = series.values.flatMap((v, i) => (NON_FINITE.has(v) ? [i] : []));
  if (bad.length) traces.push(nonFiniteMarkers(series, xs, bad, run, style, meta, type));
  return traces;
}

// Many runs: one trace per value and role, the runs joined by gaps (null), each point
// still naming its run on hover: a chart of 100 runs draws a few SVG paths, not 100.
export function mergeByValue(traces) {
  const merged = new Map();
  const out = [];
  for (const trace of traces) {
    if (trace.meta.role === "nonfinite") {
      out.push(trace);
      continue;
    }
    const id = `${trace.legendgroup}|${trace.meta.role}`;
    let into = merged.get(id);
    if (!into) {
      into = { ...trace, x: [], y: [], text: [], showlegend: false, meta: { role: trace.meta.role, key: trace.meta.key, run_ids: [] } };
      merged.set(id, into);
      out.push(into);
    }
    if (into.x.length) {
      into.x.push(null);
      into.y.push(null);
      into.text.push("");
    }
    for (let i = 0; i < trace.x.length; i += 1) {
      into.x.push(trace.x[i]);
      into.y.push(trace.y[i]);
      into.text.push(trace.text);
    }
    into.showlegend ||= trace.showlegend;
    into.meta.run_ids.push(trace.meta.run_id);
  }
  return out;
}

// NaN/Inf cannot be plotted: mark each at the run's last finite value before it, in red.
function nonFiniteMarkers(series, xs, bad, run, style, meta, type) {
  let lastFinite = 0;
  const ys = [];
  let next = 0;
  series.values.forEach((v, i) => {
    if (!NON_FINITE.has(v)) lastFinite = v;
    if (i === bad[next]) { ys.push(lastFinite); next += 1; }
  });
  return {
    x: bad.map((i) => xs[i]), y: ys, type, mode: "markers",
    name: `${plotlyText(run.name)}: ${series.values[bad[0]]}`, legendgroup: String(run.id),
    showlegend: style.group === String(run.id), // many runs: their legend lists values
    marker: { color: "#b91c1c", symbol: "x", size: 10 },
    text: bad.map((i) => `${plotlyText(run.name)}: ${series.values[i]}`),
    hovertemplate: "%{text} at %{x}<extra></extra>", meta: { ...meta, role: "nonfinite" },
  };
}
