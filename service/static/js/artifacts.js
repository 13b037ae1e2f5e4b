// The artifacts of the compared runs (MLflow's log_artifact, log_image...): images drawn
// inline, other files offered for download. Both are fetched with the token (an <img>
// cannot send one) and shown from blob: URLs, which the page's policy allows for images.
import { get, token } from "./api.js";
import { el, showError } from "./dom.js";

export async function drawArtifacts(runs) {
  const container = document.getElementById("artifacts");
  const sections = await Promise.all(runs.map(section));
  container.replaceChildren(...sections.filter(Boolean));
  document.getElementById("artifacts-title").hidden = container.children.length === 0;
}

async function section(run) {
  let listing;
  try {
    listing = await get(`/api/v1/runs/${run.id}/artifacts`);
  } catch (error) {
    const message = el("p", { class: "field-error" });
    showError(message, error);
    return message;
  }
  if (!listing.items.length) return null;
  return el("div", { class: "run-artifacts", "data-run-id": run.id },
    el("h3", {}, run.name),
    el("ul", { class: "artifact-list" }, listing.items.map((item) => entry(run.id, item))),
    listing.truncated ? el("p", { class: "muted" }, "Only the first 1,000 files are listed.") : null,
  );
}

function fileUrl(runId, path) {
  return `/api/v1/runs/${runId}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}`;
}

async function blobUrl(runId, path) {
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  const response = await fetch(fileUrl(runId, path), { headers });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

function entry(runId, item) {
  const row = el("li", { "data-path": item.path },
    el("span", { class: "artifact-path" }, item.path), " ",
    el("span", { class: "muted" }, formatBytes(item.size)), " ");
  if (item.image) {
    const image = el("img", { class: "artifact-image", alt: item.path });
    blobUrl(runId, item.path).then((src) => { image.src = src; })
      .catch((error) => showError(row.appendChild(el("span", { class: "field-error" })), error));
    row.append(el("div", {}, image));
    return row;
  }
  const link = el("a", { href: "#", download: item.path.split("/").pop() }, "download");
  link.addEventListener("click", async (event) => {
    if (link.dataset.ready) return; // the second, synthetic click follows the blob: URL
    event.preventDefault();
    link.href = await blobUrl(runId, item.path);
    link.dataset.ready = "1";
    link.click();
  });
  row.append(link);
  return row;
}
