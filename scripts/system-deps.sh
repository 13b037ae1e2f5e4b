#!/usr/bin/env bash
# Debian packages the test suite needs. As root they are installed; otherwise this
# stops and prints the exact line to run.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# The dashboard tests drive Debian's chromium through Playwright (never `playwright install`).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# npm installs the dashboard's pinned Plotly.js bundle (service/vendor/package-lock.json).
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
line="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "The tests need Debian packages that are not installed: ${missing[*]}" >&2
  echo "Run as root:  $line" >&2
  exit 1
fi
