// One EventSource for the page: GET /api/v1/events. The browser reconnects by itself
// (sending Last-Event-ID), so a stream the server ends on schedule loses nothing.
import { token } from "./api.js";

const handlers = { points: [], run: [], job: [], diagnosis: [], reset: [] };

export function on(kind, handler) {
  handlers[kind].push(handler);
}

export function connect() {
  const status = document.getElementById("live-status");
  const query = token() ? `?token=${encodeURIComponent(token())}` : "";
  const source = new EventSource(`/api/v1/events${query}`);
  source.onopen = () => {
    status.textContent = "live";
    status.classList.add("on");
  };
  source.onerror = () => {
    status.classList.remove("on");
    status.textContent = "reconnecting…";
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000); // e.g. 503: busy
  };
  for (const kind of Object.keys(handlers)) {
    source.addEventListener(kind, (message) => {
      const data = JSON.parse(message.data);
      for (const handler of handlers[kind]) handler(data);
    });
  }
  return source;
}
