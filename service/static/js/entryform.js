// The job form's entry-point half: a field per param that a registered entry point
// declares (its current definition), read back as a job's params or a sweep's base + grid.
import { get } from "./api.js";
import { el } from "./dom.js";

let definitions = new Map(); // name -> EntryPointPublic, current definitions only
let fields = []; // [{ name, spec, input }] of the drawn entry point

// Fills the "what to run" select; keeps the choice while its entry point is still there.
export async function loadChoices(select) {
  const page = await get("/api/v1/entry-points", { limit: 200 });
  definitions = new Map(page.items.filter((entry) => entry.current).map((entry) => [entry.name, entry]));
  const chosen = select.value;
  const names = [...definitions.keys()].sort();
  select.replaceChildren(el("option", { value: "" }, "built-in trainer"),
    ...names.map((name) => el("option", { value: name }, name)));
  select.value = definitions.has(chosen) ? chosen : "";
}

// Draws the chosen entry point's fields (none for the built-in trainer).
export function draw(fieldset, name) {
  const entry = definitions.get(name);
  fields = Object.entries(entry?.params ?? {}).map(([param, spec]) => ({
    name: param, spec, input: input(param, spec),
  }));
  fieldset.replaceChildren(...fields.map(({ name: param, spec, input: control }) => el("label", {},
    el("span", {}, `${param} `, el("span", { class: "muted" }, `(${describe(spec)})`)), control,
    el("span", { class: "field-error", "data-for": param }))));
}

// "float, 0 – 1, log, list": its type, range and what the field takes.
function describe(spec) {
  const parts = [spec.type];
  const hasMin = spec.min !== null && spec.min !== undefined;
  const hasMax = spec.max !== null && spec.max !== undefined;
  if (hasMin && hasMax) parts.push(`${spec.min} – ${spec.max}`);
  else if (hasMin) parts.push(`≥ ${spec.min}`);
  else if (hasMax) parts.push(`≤ ${spec.max}`);
  if (spec.log) parts.push("log");
  if (isNumeric(spec) && !spec.choices) parts.push("list");
  if (spec.default === null || spec.default === undefined) parts.push("required");
  return parts.join(", ");
}

const isNumeric = (spec) => spec.type === "float" || spec.type === "int";

// A numeric field is text, not <input type=number>: it also takes a list ("0.5, 0.9")
// for a sweep, which a number input would empty.
function input(name, spec) {
  const given = spec.default ?? undefined;
  if (spec.choices) {
    const none = given === undefined ? [el("option", { value: "" }, "—")] : [];
    return el("select", { name, "data-type": spec.type }, ...none, ...spec.choices.map((choice, index) =>
      el("option", { value: String(index), selected: choice === given }, String(choice))));
  }
  if (spec.type === "bool") return el("input", { type: "checkbox", name, checked: given === true });
  const numeric = isNumeric(spec) ? { inputmode: spec.type === "int" ? "numeric" : "decimal" } : {};
  return el("input", { name, value: given === undefined ? "" : String(given), "data-type": spec.type, ...numeric });
}

// { params, grid }: a numeric field holding a list goes to the grid; an empty field is
// left out, so the entry point's default applies (or the API says it is required).
export function read() {
  const params = {};
  const grid = {};
  for (const { name, spec, input: control } of fields) {
    if (spec.choices) {
      if (control.value !== "") params[name] = spec.choices[Number(control.value)];
    } else if (spec.type === "bool") {
      params[name] = control.checked;
    } else if (isNumeric(spec)) {
      const values = control.value.split(",").map((v) => v.trim()).filter((v) => v !== "").map(parseNumber);
      if (values.length === 1) params[name] = values[0];
      else if (values.length > 1) grid[name] = values;
    } else if (control.value !== "") {
      params[name] = control.value;
    }
  }
  return { params, grid };
}

// Anything that is not a number goes to the API as typed, so its message is the one shown.
function parseNumber(text) {
  return Number.isNaN(Number(text)) ? text : Number(text);
}
