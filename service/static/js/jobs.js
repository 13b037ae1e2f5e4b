// Jobs view: start a job or a sweep, follow jobs with progress, cancel and retry, workers.
import { ApiError, get, post } from "./api.js";
import { el, formatTime, replaceRows, throttle } from "./dom.js";
import * as entryForm from "./entryform.js";
import * as jobLog from "./joblog.js";

const refresh = throttle(() => load(), 500);
const LISTS = new Set(["momentum", "seed"]);
const NUMBERS = new Set(["momentum", "lr", "steps", "seed"]);

export function init() {
  jobLog.init();
  document.getElementById("job-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit(event.target);
  });
  document.getElementById("job-entry-point").addEventListener("change", chooseWhatToRun);
}

export function show() {
  load();
  const select = document.getElementById("job-entry-point");
  entryForm.loadChoices(select).then(chooseWhatToRun, (error) => {
    document.getElementById("job-form-result").textContent = error.message;
  });
}

// The built-in trainer's fields or the chosen entry point's: a disabled fieldset's
// fields are neither submitted nor shown.
function chooseWhatToRun() {
  const name = document.getElementById("job-entry-point").value;
  const builtin = document.getElementById("builtin-fields");
  const params = document.getElementById("entry-point-fields");
  builtin.hidden = builtin.disabled = name !== "";
  params.hidden = params.disabled = name === "";
  entryForm.draw(params, name);
}

export function onEvent(kind) {
  if (kind === "job" || kind === "reset") refresh();
}

// "0.5, 0.9" -> [0.5, 0.9]; anything that is not a number goes to the API as typed,
// so its validation message is the one shown.
function parseValue(name, text) {
  const trimmed = text.trim();
  return NUMBERS.has(name) && trimmed !== "" && !Number.isNaN(Number(trimmed)) ? Number(trimmed) : trimmed;
}

function readForm(form) {
  const config = {};
  const grid = {};
  const builtin = document.getElementById("builtin-fields");
  for (const [name, raw] of new FormData(form)) {
    if (name === "name") continue;
    // A choice left empty ("model: for the dataset") is the API's default for it.
    if (raw === "" && builtin.elements[name].tagName === "SELECT") continue;
    if (LISTS.has(name)) {
      const values = raw.split(",").filter((v) => v.trim() !== "").map((v) => parseValue(name, v));
      if (values.length === 1) config[name] = values[0];
      else grid[name] = values;
    } else {
      config[name] = parseValue(name, raw);
    }
  }
  return { config, grid, name: form.elements.name.value };
}

async function submit(form) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  const result = document.getElementById("job-form-result");
  const entryPoint = document.getElementById("job-entry-point").value;
  try {
    if (entryPoint) {
      await submitEntryPoint(entryPoint, form.elements.name.value, result);
      load();
      return;
    }
    const { config, grid, name } = readForm(form);
    if (Object.keys(grid).length) {
      const sweep = await post("/api/v1/sweeps", { name, base: config, grid });
      result.textContent = `sweep ${sweep.id} queued ${sweep.job_ids.length} jobs`;
    } else {
      const job = await post("/api/v1/jobs", { config });
      result.textContent = `job ${job.id} queued`;
    }
    load();
  } catch (error) {
    result.textContent = "";
    showFieldErrors(form, error);
  }
}

async function submitEntryPoint(entryPoint, name, result) {
  const { params, grid } = entryForm.read();
  if (Object.keys(grid).length) {
    const body = { name, entry_point: entryPoint, base: params, grid };
    const sweep = await post("/api/v1/sweeps", body);
    result.textContent = `sweep ${sweep.id} queued ${sweep.job_ids.length} jobs`;
  } else {
    const job = await post("/api/v1/jobs", { entry_point: entryPoint, params });
    result.textContent = `job ${job.id} queued`;
  }
}

// The API's detail items point at a field by `loc` (["config", "lr"], ["grid",
// "momentum", 1]); a refused combination points at the whole config but names its
// fields in the message ("model 'cnn' needs dataset 'digits'"): it goes beside each.
function showFieldErrors(form, error) {
  const items = error instanceof ApiError && error.detail.length
    ? error.detail : [{ loc: [], msg: error.message }];
  // Only the shown fields' slots: an entry point's param may share a built-in field's name.
  const slots = new Map();
  for (const node of form.querySelectorAll(".field-error[data-for]")) {
    if (!node.closest("fieldset:disabled") && !slots.has(node.dataset.for)) slots.set(node.dataset.for, node);
  }
  const fieldNames = [...slots.keys()];
  for (const item of items) {
    const located = (item.loc ?? []).find((part) => fieldNames.includes(String(part)));
    const named = fieldNames.filter((name) => new RegExp(`\\b${name} '`).test(item.msg));
    const targets = located !== undefined ? [String(located)] : named.length ? named : ["_form"];
    for (const name of targets) {
      const target = slots.get(name);
      target.textContent = [target.textContent, item.msg].filter(Boolean).join("; ");
    }
  }
}

async function load() {
  const [jobs, workers] = await Promise.all([
    get("/api/v1/jobs", { limit: 200 }), get("/api/v1/workers", { limit: 200 }),
  ]);
  replaceRows(document.querySelector("#jobs-table tbody"), jobs.items.map(jobRow));
  replaceRows(document.querySelector("#workers-table tbody"), workers.items.map((w) => el("tr", {},
    el("td", {}, w.id), el("td", {}, w.device), el("td", {}, (w.frameworks ?? []).join(", ")),
    el("td", {}, formatTime(w.last_seen_at)), el("td", {}, w.current_job_id ?? ""))));
}

// An entry-point job without a total_param has no step count: an indeterminate bar.
function progressCell(step, total) {
  if (total === undefined || total === null) return [el("progress", {}), ` ${step}`];
  return [el("progress", { max: total, value: Math.min(step, total) }), ` ${step}/${total}`];
}

function jobRow(job) {
  const total = job.progress_total ?? job.config?.steps; // an entry-point job has no config
  const step = job.progress_step ?? 0;
  const action = (label, path) => el("button", {
    type: "button",
    onclick: async () => {
      const result = document.getElementById("job-form-result");
      try {
        await post(`/api/v1/jobs/${job.id}/${path}`);
      } catch (error) {
        result.textContent = error.message;
      }
      load();
    },
  }, label);
  const actions = [el("button", { type: "button", onclick: () => jobLog.open(job.id) }, "Log")];
  if (job.status === "queued" || (job.status === "running" && !job.cancel_requested)) actions.push(action("Cancel", "cancel"));
  if (job.status === "failed" || job.status === "cancelled") actions.push(action("Retry", "retry"));
  return el("tr", { "data-job-id": job.id },
    el("td", { class: "num" }, job.id), el("td", {}, job.name ?? ""),
    el("td", { class: `status-${job.status}` }, job.status, job.cancel_requested && job.status === "running" ? " (cancelling)" : ""),
    el("td", {}, progressCell(step, total)),
    el("td", { class: "num" }, `${job.attempts}/${job.max_attempts}`),
    el("td", {}, job.lease_owner ?? ""),
    el("td", {}, job.run_id ? el("a", { href: `?view=compare&runs=${job.run_id}` }, `run ${job.run_id}`) : ""),
    el("td", { class: "status-failed" }, job.error ?? ""),
    el("td", {}, actions),
  );
}
