// Diagnosis on the compare charts (#21): each run's findings for a key, as marked regions
// (a band from from_step to to_step; a dotted line at a spike) labelled with their kind,
// their message on hover and listed under the chart.
import { get } from "./api.js";
import { el, plotlyText } from "./dom.js";

// Each diagnosis reads the whole stored curve: a live chart redrawn every second asks
// again at most this often.
const FRESH_MS = 5000;
const cache = new Map(); // "run:key" -> { at, promise }

export function findingsFor(runId, key) {
  const id = `${runId}:${key}`;
  const hit = cache.get(id);
  if (hit && Date.now() - hit.at < FRESH_MS) return hit.promise;
  // A key the run has not logged (404) has no findings.
  const promise = get(`/api/v1/runs/${runId}/diagnosis`, { key }).then((d) => d.findings, () => []);
  cache.set(id, { at: Date.now(), promise });
  return promise;
}

// Plotly shapes and annotations for [{ run, color, findings }], on a step axis.
export function marks(entries) {
  const shapes = [];
  const annotations = [];
  for (const { run, color, findings } of entries) {
    for (const f of findings) {
      const band = f.from_step === f.to_step
        ? { type: "line", line: { color, width: 1.5, dash: "dot" } }
        : { type: "rect", fillcolor: color, opacity: 0.1, line: { width: 0 }, layer: "below" };
      shapes.push({ ...band, xref: "x", yref: "paper", x0: f.from_step, x1: f.to_step, y0: 0, y1: 1 });
      annotations.push({
        x: f.from_step, xref: "x", y: 1, yref: "paper", xanchor: "left", yanchor: "bottom",
        text: plotlyText(f.kind), hovertext: plotlyText(`${run.name}: ${f.message}`),
        showarrow: false, font: { color, size: 11 },
      });
    }
  }
  return { shapes, annotations };
}

// The same findings as text under the chart: message, and the advice on hover.
export function findingList(key, entries) {
  const items = entries.flatMap(({ run, color, findings }) => findings.map((f) => {
    const who = el("span", {}, `${run.name}: `);
    who.style.color = color; // CSSOM, not a style attribute: the page's CSP allows only this
    return el("li", { class: `finding finding-${f.kind}`, title: f.advice, "data-run-id": run.id },
      who, `${f.message} — ${f.advice}`);
  }));
  return el("ul", { class: "findings", "data-key": key }, ...items);
}
