// DOM helpers. User text (run names, tags, params, errors) only ever goes in as text:
// `el` sets textContent and attributes, never innerHTML.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// Plotly reads trace names and labels as its own small markup (<b>, <br>, entities):
// escaping makes a run named "<b>x</b>" show exactly those characters.
export function plotlyText(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value; // "NaN", "Infinity", "-Infinity"
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(digits - 1)
    : value.toPrecision(digits);
}

export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// Calls `fn` at most once per `ms`, and always once after the last request.
export function throttle(fn, ms) {
  let timer = null;
  let again = false;
  const fire = () => {
    timer = null;
    if (!again) return;
    again = false;
    fn();
    timer = setTimeout(fire, ms);
  };
  return () => {
    again = true;
    if (timer === null) fire();
  };
}

export function showError(target, error) {
  target.textContent = error instanceof Error ? error.message : String(error);
}
