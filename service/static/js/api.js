// The JSON API, with the token kept for this browser session (sessionStorage) and asked
// for once, the first time the service answers 401.
const TOKEN_KEY = "momentum-token";
let asking = null;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.detail = body?.error?.detail ?? [];
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function askForToken(message) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  document.getElementById("token-error").textContent = message;
  asking = new Promise((resolve) => {
    form.addEventListener("submit", () => {
      sessionStorage.setItem(TOKEN_KEY, form.elements.token.value);
      form.reset();
      asking = null;
      resolve();
    }, { once: true });
  });
  dialog.showModal();
  return asking;
}

export async function request(method, path, body) {
  for (;;) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      await askForToken(token() ? "That token was not accepted." : "");
      continue;
    }
    const parsed = response.status === 204 ? null : await response.json();
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed;
  }
}

export const get = (path, params) => request("GET", withQuery(path, params));
export const post = (path, body) => request("POST", path, body);

export function withQuery(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// The fewest run ids the API takes in one request by default (MOMENTUM_MAX_COMPARE_RUNS):
// a selection is asked for in chunks of this many, so any selection works.
export const IDS_PER_REQUEST = 100;

// Runs by id in the order asked (GET /runs?ids=), not one request per run: 100 runs cost
// one round trip, not 100 queued six at a time.
export async function getRuns(ids) {
  const chunks = [];
  for (let i = 0; i < ids.length; i += IDS_PER_REQUEST) chunks.push(ids.slice(i, i + IDS_PER_REQUEST));
  const pages = await Promise.all(chunks.map((chunk) => get("/api/v1/runs", {
    ids: chunk.join(","), lifecycle: "all", limit: chunk.length,
  })));
  const byId = new Map(pages.flatMap((page) => page.items).map((run) => [run.id, run]));
  const missing = ids.filter((id) => !byId.has(id));
  if (missing.length) throw new Error(`No run with id ${missing.join(", ")}`);
  return ids.map((id) => byId.get(id));
}
