// A job's live log: the panel under the job list, filled from GET /jobs/{id}/logs by
// next_offset, polled while the job has not ended. The log is the job's own process's
// output: it only ever goes in as text nodes, never as HTML.
import { get } from "./api.js";
import { showError } from "./dom.js";

const POLL_MS = 1000;
const ENDED = new Set(["succeeded", "failed", "cancelled"]);
let following = 0; // which open() is current: an older one's loop stops

export function open(jobId) {
  const generation = ++following;
  const panel = document.getElementById("job-log");
  const text = document.getElementById("job-log-text");
  document.getElementById("job-log-title").textContent = `Log of job ${jobId}`;
  document.getElementById("job-log-error").textContent = "";
  text.replaceChildren();
  panel.hidden = false;
  follow(jobId, generation, text, 0);
}

export function close() {
  following++;
  document.getElementById("job-log").hidden = true;
}

async function follow(jobId, generation, text, from) {
  let offset = from;
  try {
    // The job's status first: output shipped before it ended is read after.
    const job = await get(`/api/v1/jobs/${jobId}`);
    for (;;) {
      const page = await get(`/api/v1/jobs/${jobId}/logs`, { offset });
      if (generation !== following) return;
      if (page.offset > offset) {
        text.append(`\n[... ${page.offset - offset} bytes dropped: over the service's log cap ...]\n`);
      }
      if (!page.text) break;
      const atBottom = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
      text.append(page.text);
      if (atBottom) text.scrollTop = text.scrollHeight;
      offset = page.next_offset;
    }
    document.getElementById("job-log-status").textContent = ENDED.has(job.status) ? `(${job.status})` : "(live)";
    if (ENDED.has(job.status)) return;
  } catch (error) {
    if (generation !== following) return;
    showError(document.getElementById("job-log-error"), error);
  }
  setTimeout(() => {
    if (generation === following) follow(jobId, generation, text, offset);
  }, POLL_MS);
}

export function init() {
  document.getElementById("job-log-close").addEventListener("click", close);
}
