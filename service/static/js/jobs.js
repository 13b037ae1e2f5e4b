// Jobs view: start a job or a sweep, follow jobs with progress, cancel and retry, workers.
import { ApiError, get, post } from "./api.js";
import { el, formatTime, replaceRows, throttle } from "./dom.js";
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
}

export function show() {
  load();
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
  for (const [name, raw] of new FormData(form)) {
    if (name === "name") continue;
    // A choice left empty ("model: for the dataset") is the API's default for it.
    if (raw === "" && form.elements[name].tagName === "SELECT") continue;
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
  const { config, grid, name } = readForm(form);
  try {
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

// The API's detail items point at a field by `loc` (["config", "lr"], ["grid",
// "momentum", 1]); a refused combination points at the whole config but names its
// fields in the message ("model 'cnn' needs dataset 'digits'"): it goes beside each.
function showFieldErrors(form, error) {
  const items = error instanceof ApiError && error.detail.length
    ? error.detail : [{ loc: [], msg: error.message }];
  const fieldNames = [...form.querySelectorAll(".field-error[data-for]")].map((n) => n.dataset.for);
  for (const item of items) {
    const located = (item.loc ?? []).find((part) => fieldNames.includes(String(part)));
    const named = fieldNames.filter((name) => new RegExp(`\\b${name} '`).test(item.msg));
    const targets = located !== undefined ? [String(located)] : named.length ? named : ["_form"];
    for (const name of targets) {
      const target = form.querySelector(`.field-error[data-for="${name}"]`);
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
    el("td", {}, el("progress", { max: total, value: Math.min(step, total) }), ` ${step}/${total}`),
    el("td", { class: "num" }, `${job.attempts}/${job.max_attempts}`),
    el("td", {}, job.lease_owner ?? ""),
    el("td", {}, job.run_id ? el("a", { href: `?view=compare&runs=${job.run_id}` }, `run ${job.run_id}`) : ""),
    el("td", { class: "status-failed" }, job.error ?? ""),
    el("td", {}, actions),
  );
}
