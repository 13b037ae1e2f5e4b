// The view and its selection live in the URL, so a view can be shared or reloaded.
export function params() {
  return new URLSearchParams(location.search);
}

export function update(changes, { push = false } = {}) {
  const query = params();
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined || value === null || value === "" || value === false) query.delete(name);
    else query.set(name, value === true ? "1" : value);
  }
  const url = `${location.pathname}?${query}`;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

export function ids(name = "runs") {
  return (params().get(name) ?? "").split(",").filter(Boolean).map(Number);
}
