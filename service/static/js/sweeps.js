// Sweep view: a sweep's runs (or the selected runs) grouped by a param across seeds. It
// leads with the verdict's sentence (GET …/verdict), then the summary vs the param with
// confidence intervals, maps of the objective over the params swept, the groups' curves
// and the groups table. A failure is said as one, never in the verdict's style.
// A random or TPE sweep, or one that stops runs early, also gets the search panel.
import { IDS_PER_REQUEST, get, getRuns } from "./api.js";
import { el, replaceRows, showError, throttle } from "./dom.js";
import { commonText } from "./params.js";
import { plotly } from "./plotly.js";
import * as search from "./search.js";
import { drawBands, drawValueChart, renderTable } from "./sweepcharts.js";
import { drawMaps, preloadBundles } from "./sweepmaps.js";
import * as url from "./url.js";

const PAGE = 256; // MOMENTUM_MAX_GRID_SIZE's default: a whole sweep in one request
const CONTROLS = { key: "sweep-key", by: "sweep-by", threshold: "sweep-threshold", summary: "sweep-summary" };

let ctx;
let memberRuns = new Set();
let searchRuns = new Set();
let sweeps = [];
const refresh = throttle(() => draw(), 2000);

export function init(context) {
  ctx = context;
  document.getElementById("sweep-choice").addEventListener("change", (e) => {
    url.update({ sweep: e.target.value, runs: null });
    draw();
  });
  for (const id of Object.values(CONTROLS)) {
    document.getElementById(id).addEventListener("change", () => {
      url.update(Object.fromEntries(Object.entries(CONTROLS)
        .map(([name, control]) => [name, document.getElementById(control).value])));
      draw();
    });
  }
}

export async function show() {
  // A sweep named in the URL: ask for it and its analyses at once, beside the list.
  const named = url.params().get("sweep");
  const early = named ? get(`/api/v1/sweeps/${named}`).then((sweep) => draw(sweep)) : null;
  const listed = await get("/api/v1/sweeps", { limit: PAGE });
  sweeps = listed.items;
  const choice = document.getElementById("sweep-choice");
  choice.replaceChildren(el("option", { value: "" }, "—"),
    ...sweeps.map((s) => el("option", { value: s.id }, `#${s.id} ${s.name} (${s.status})`)));
  if (!named && !url.ids().length && sweeps.length) {
    url.update({ sweep: sweeps[0].id });
  }
  choice.value = url.params().get("sweep") ?? "";
  await (early ? early.catch(() => draw()) : draw());
}

export function onEvent(kind, data) {
  const sweep = Number(url.params().get("sweep"));
  const member = memberRuns.has(data.run_id) || searchRuns.has(data.run_id);
  if (member || (kind === "job" && data.sweep_id === sweep) || kind === "reset") refresh();
}

// The sweep's own objective (random and TPE sweeps name one) unless the URL says otherwise.
function readControls(sweep) {
  const query = url.params();
  const objective = sweep?.objective ?? {};
  const key = query.get("key") ?? objective.key ?? "loss";
  const values = { key, by: query.get("by") ?? "", threshold: query.get("threshold") ?? "",
    summary: query.get("summary") ?? (objective.key === key ? objective.summary : null) ?? "" };
  for (const [name, control] of Object.entries(CONTROLS)) document.getElementById(control).value = values[name];
  const leaf = key.split("/").pop();
  const mode = objective.key === key && objective.mode ? objective.mode
    : /acc(uracy)?$/.test(leaf) ? "max" : "min";
  return { key, mode, by: values.by || null, threshold: values.threshold, summary: values.summary || null };
}

function source(known) {
  const sweep = url.params().get("sweep");
  if (known && String(known.id) === sweep) return { sweep: known };
  if (sweep) return { sweep: sweeps.find((s) => String(s.id) === sweep) ?? { id: Number(sweep) } };
  const runs = url.ids();
  return runs.length ? { runIds: runs } : null;
}

async function fetchRuns(from) {
  if (from.runIds) return getRuns(from.runIds);
  // The first page says how many there are; the rest are asked for at once.
  const page = (offset) => get("/api/v1/runs", { sweep_id: from.sweep.id, limit: PAGE, offset });
  const first = await page(0);
  const offsets = [];
  for (let offset = PAGE; offset < first.total; offset += PAGE) offsets.push(offset);
  const rest = await Promise.all(offsets.map(page));
  return [first, ...rest].flatMap((p) => p.items);
}

async function fetchSummaries(runs, ask) {
  const chunks = [];
  for (let i = 0; i < runs.length; i += IDS_PER_REQUEST) chunks.push(runs.slice(i, i + IDS_PER_REQUEST));
  const answers = await Promise.all(chunks.map((chunk) => get("/api/v1/compare/summary", {
    run_ids: chunk.map((r) => r.id).join(","), key: ask.key, mode: ask.mode, threshold: ask.threshold,
  })));
  return answers.flatMap((a) => a.runs);
}

function analysis(from, name, ask) {
  const base = { key: ask.key, mode: ask.mode, threshold: ask.threshold, by: ask.by };
  if (name === "verdict") Object.assign(base, { summary: ask.summary });
  if (from.sweep) return get(`/api/v1/sweeps/${from.sweep.id}/${name === "verdict" ? "verdict" : "summary"}`, base);
  const path = name === "verdict" ? "/api/v1/compare/verdict" : "/api/v1/compare/groups";
  return get(path, { ...base, run_ids: from.runIds.join(","), by: ask.by ?? "momentum" });
}

// A failed part leaves no stale chart or table behind it.
async function forget(ids) {
  const Plotly = await plotly();
  for (const id of ids) Plotly.purge(document.getElementById(id));
  if (ids.includes("sweep-final")) replaceRows(document.querySelector("#sweep-table tbody"), []);
  return "";
}

function sayVerdict(sentence) {
  document.getElementById("sweep-verdict").textContent = sentence;
  document.getElementById("sweep-verdict").hidden = !sentence;
}

function say({ errors = [], note = "" }) {
  const failed = document.getElementById("sweep-error");
  failed.textContent = errors.join(" · ");
  failed.hidden = errors.length === 0;
  document.getElementById("sweep-source").textContent = note;
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

async function draw(known = null) {
  drawSearch().then((ids) => { searchRuns = new Set(ids); });
  const from = source(known);
  if (!from) {
    sayVerdict("");
    say({ note: "Pick a sweep, or select runs and group them." });
    return;
  }
  const ask = readControls(from.sweep);
  const note = from.sweep ? `sweep ${from.sweep.id}` : `${from.runIds.length} selected runs`;
  const errors = [];
  const runs = fetchRuns(from);
  const verdict = analysis(from, "verdict", ask);
  const parts = await Promise.allSettled([
    verdict.then((v) => {
      sayVerdict(v.verdict); // first: the view leads with it
      return Promise.all([drawValueChart(v), renderTable(v)]);
    }),
    analysis(from, "groups", ask).then((groups) => {
      memberRuns = new Set(groups.groups.flatMap((g) => g.run_ids));
      return drawBands(groups);
    }),
    drawRunMaps(runs, verdict, ask, from),
  ]);
  for (const part of parts) {
    if (part.status === "rejected") errors.push(part.reason instanceof Error ? part.reason.message : String(part.reason));
  }
  if (parts[0].status === "rejected") {
    sayVerdict("");
    await forget(["sweep-final"]);
  }
  if (parts[1].status === "rejected") await forget(["sweep-bands"]);
  say({ errors: [...new Set(errors)], note });
}

async function drawRunMaps(runsAsked, verdictAsked, ask, from) {
  const runs = await runsAsked;
  document.getElementById("sweep-common").textContent = "";
  const asked = fetchSummaries(runs, ask);
  preloadBundles(runs, from.sweep?.strategy); // compiles while the summaries are on their way
  const summaries = await asked;
  const summary = ask.summary ?? (await verdictAsked.then((v) => v.summary, () => "final"));
  const planned = await drawMaps(runs, summaries, { ...ask, summary }, from.sweep?.strategy);
  document.getElementById("sweep-common").textContent = commonText(planned.common, runs.length);
}
