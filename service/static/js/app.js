// The dashboard's entry: pick the view named in the URL, connect the live stream.
import { get } from "./api.js";
import * as live from "./live.js";
import { plotly } from "./plotly.js";
import * as url from "./url.js";
import * as runs from "./runs.js";
import * as compare from "./compare.js";
import * as sweeps from "./sweeps.js";
import * as jobs from "./jobs.js";

const views = { runs, compare, sweep: sweeps, jobs };
let current = null;

function show(name) {
  const view = views[name] ?? runs;
  const chosen = views[name] ? name : "runs";
  for (const key of Object.keys(views)) {
    document.getElementById(`view-${key}`).hidden = key !== chosen;
  }
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === chosen);
  }
  current = view;
  view.show();
}

export function navigate(changes) {
  url.update(changes, { push: true });
  show(url.params().get("view"));
}

function wireNavigation() {
  for (const link of document.querySelectorAll("nav a")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      navigate({ view: link.dataset.view });
    });
  }
  addEventListener("popstate", () => show(url.params().get("view")));
}

function start() {
  plotly(); // starts the download now; the views await it when they draw
  for (const view of Object.values(views)) view.init({ navigate, isShown: () => current === view });
  for (const kind of ["points", "run", "job", "diagnosis", "reset"]) {
    live.on(kind, (data) => current?.onEvent?.(kind, data));
  }
  wireNavigation();
  show(url.params().get("view"));
  // EventSource cannot answer a 401 with a prompt: connect once a request got through
  // (the first 401 asks for the token, kept for the session).
  get("/api/v1/version").then(() => live.connect());
}

start();
