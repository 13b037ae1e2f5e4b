// Runs view: a filterable, sortable table of runs; select several to compare or group.
import { get } from "./api.js";
import { el, formatNumber, formatTime, replaceRows, throttle } from "./dom.js";
import * as url from "./url.js";

let ctx;
let rows = [];
let sort = { column: "started", descending: true };
const selected = new Set();

const COLUMNS = {
  name: (r) => r.name,
  project: (r) => r.project,
  status: (r) => r.status,
  optimizer: (r) => r.optimizer ?? "",
  momentum: (r) => r.momentum,
  lr: (r) => r.lr,
  seed: (r) => r.params?.seed,
  last_loss: (r) => r.latest?.loss,
  best_accuracy: (r) => r.best?.accuracy ?? r.best?.val_accuracy,
  steps: (r) => r.last_step,
  started: (r) => r.started_at ?? r.created_at,
};

const reload = throttle(() => load(), 1000);

export function init(context) {
  ctx = context;
  const form = document.getElementById("run-filters");
  let typing = null;
  form.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(load, 250);
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  for (const header of document.querySelectorAll("#runs-table th[data-sort]")) {
    header.addEventListener("click", () => {
      const column = header.dataset.sort;
      sort = { column, descending: sort.column === column ? !sort.descending : false };
      render();
    });
  }
  document.getElementById("compare-selected").addEventListener("click", () => {
    ctx.navigate({ view: "compare", runs: [...selected].join(",") });
  });
  document.getElementById("group-selected").addEventListener("click", () => {
    ctx.navigate({ view: "sweep", runs: [...selected].join(","), sweep: null });
  });
}

export function show() {
  for (const id of url.ids()) selected.add(id);
  load();
}

export function onEvent(kind) {
  if (kind !== "job") reload();
}

async function load() {
  const filters = Object.fromEntries(new FormData(document.getElementById("run-filters")));
  const page = await get("/api/v1/runs", { ...filters, limit: 1000 });
  rows = page.items;
  document.getElementById("runs-count").textContent =
    `${page.total} runs${page.total > rows.length ? ` (showing ${rows.length})` : ""}`;
  render();
}

function compareValues(a, b) {
  if (a === b) return 0;
  if (a === undefined || a === null) return 1;
  if (b === undefined || b === null) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

function render() {
  const value = COLUMNS[sort.column];
  const sorted = [...rows].sort((a, b) => {
    const order = compareValues(value(a), value(b));
    return sort.descending ? -order : order;
  });
  for (const header of document.querySelectorAll("#runs-table th[data-sort]")) {
    header.classList.toggle("sorted-asc", header.dataset.sort === sort.column && !sort.descending);
    header.classList.toggle("sorted-desc", header.dataset.sort === sort.column && sort.descending);
  }
  replaceRows(document.querySelector("#runs-table tbody"), sorted.map(row));
  updateButtons();
}

function row(run) {
  const box = el("input", {
    type: "checkbox", checked: selected.has(run.id), "aria-label": `select run ${run.id}`,
    onchange: (event) => {
      if (event.target.checked) selected.add(run.id);
      else selected.delete(run.id);
      updateButtons();
    },
  });
  const number = (v) => el("td", { class: "num" }, formatNumber(v));
  return el("tr", { "data-run-id": run.id },
    el("td", {}, box),
    el("td", { class: "run-name" }, run.name, run.diverged ? el("span", { class: "diverged" }, " (diverged)") : null,
      ...(run.findings ?? []).map(findingBadge)),
    el("td", {}, run.project),
    el("td", { class: `status-${run.status}` }, run.status),
    el("td", {}, run.optimizer ?? ""),
    number(run.momentum), number(run.lr), number(run.params?.seed),
    number(COLUMNS.last_loss(run)), number(COLUMNS.best_accuracy(run)),
    number(run.last_step),
    el("td", {}, formatTime(run.started_at)),
  );
}

// One badge per kind the run's live diagnosis holds (GET /runs/{id}/diagnosis says more).
function findingBadge(kind) {
  return el("span", { class: `badge finding-${kind}`, title: `diagnosis: ${kind}` }, kind);
}

function updateButtons() {
  const chosen = [...selected].filter((id) => rows.some((r) => r.id === id));
  document.getElementById("compare-selected").disabled = chosen.length === 0;
  document.getElementById("group-selected").disabled = chosen.length < 2;
}
