// Plotly.js (~4.8 MB) loads in parallel with the first API requests instead of before
// them: compiling it holds the main thread for a second or more on a slow machine.
let loading = null;

export function plotly() {
  loading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/vendor/plotly.min.js";
    script.async = true;
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => reject(new Error("Plotly.js could not be loaded from /vendor/plotly.min.js"));
    document.head.append(script);
  });
  return loading;
}
