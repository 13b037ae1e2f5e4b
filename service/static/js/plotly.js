// Plotly.js in three pinned bundles, each the smallest that draws what a chart needs:
// basic (scatter; every page), cartesian (adds heatmap) and strict (adds parcoords and
// WebGL traces, its WebGL code compiled ahead of time: the page's policy forbids eval).
// The basic one loads in parallel with the first API requests instead of before them;
// the others only when a view first draws a trace that needs them.
const BUNDLES = {
  basic: "/vendor/plotly.min.js",
  cartesian: "/vendor/plotly-cartesian.min.js",
  strict: "/vendor/plotly-strict.min.js",
};
const NEEDS = { heatmap: "cartesian", parcoords: "strict", scattergl: "strict" };
// Without npm the service has no stand-in for the strict bundle (see service/api/dashboard.py).
const MISSING = {
  strict: "Parallel coordinates and WebGL charts need Plotly.js's strict bundle, which this "
    + "service does not have: run npm ci --prefix service/vendor",
};
const loading = {};
let queue = Promise.resolve();

function load(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.async = true;
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => reject(new Error(`Plotly.js could not be loaded from ${src}`));
    document.head.append(script);
  });
}

export function plotly() {
  loading.basic ??= load(BUNDLES.basic);
  return loading.basic;
}

// Every bundle sets window.Plotly as it runs: each extra one loads after the basic one,
// one at a time, and hands window.Plotly back to it (the charts already drawn, and
// anyone reading window.Plotly, keep the instance that drew them).
function loadExtra(name) {
  loading[name] ??= (queue = queue.catch(() => null).then(async () => {
    const basic = await plotly();
    try {
      return await load(BUNDLES[name]);
    } catch (error) {
      throw MISSING[name] ? new Error(MISSING[name]) : error;
    } finally {
      window.Plotly = basic;
    }
  }));
  return loading[name];
}

// The Plotly instance that draws `traceType`: the basic one when it has that trace
// (e.g. the full bundle served without npm has heatmap), else the bundle that does.
export async function plotlyFor(traceType) {
  const basic = await plotly();
  const bundle = NEEDS[traceType];
  if (!bundle) return basic;
  if (bundle === "cartesian" && basic.PlotSchema.get().traces[traceType]) return basic;
  return loadExtra(bundle);
}

// Draws with `instance`, starting the chart afresh when another instance drew it last:
// each instance keeps its own state on the chart's node.
export async function drawWith(instance, node, traces, layout, config) {
  if (node.plotlyInstance && node.plotlyInstance !== instance) {
    node.plotlyInstance.purge(node);
  }
  node.plotlyInstance = instance;
  return instance.react(node, traces, layout, config);
}

export async function clear(node) {
  node.plotlyInstance?.purge(node);
  node.plotlyInstance = null;
}
