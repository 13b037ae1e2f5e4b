#!/usr/bin/env bash
# Re-run the MLflow anchor: a fresh SQLite DB and a fresh `mlflow server` (default
# workers, loopback only) for every repetition and connection mode; stops the server
# it started, by PID, when each run ends.
#
#   python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow
#   bash bench/peers/run_mlflow_bench.sh            # REPS=2 MODES="keepalive fresh" by default
set -euo pipefail
VENV=${VENV:-/tmp/mlflow-venv}
WORK=${WORK:-/tmp/mlflowbench}
PORT=${PORT:-5055}
REPS=${REPS:-2}
MODES=${MODES:-"keepalive fresh"}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/mlflow-results}
mkdir -p "$WORK" "$OUT"
PID=""

start_server() {
  rm -f "$WORK"/mlflow.db "$WORK"/mlflow.db-*
  cd "$WORK"
  setsid "$VENV/bin/mlflow" server --backend-store-uri "sqlite:///$WORK/mlflow.db" \
    --host 127.0.0.1 --port "$PORT" > "$WORK/server.log" 2>&1 &
  PID=$!
  cd - > /dev/null
  echo "mlflow server PID $PID"
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && return 0
    kill -0 "$PID" 2> /dev/null || { echo "server died"; tail -20 "$WORK/server.log"; return 1; }
    sleep 1
  done
  echo "server did not come up"; return 1
}

stop_server() {
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2> /dev/null || true   # the mlflow CLI stops its uvicorn + job-runner children
  for _ in $(seq 1 30); do kill -0 "$PID" 2> /dev/null || break; sleep 1; done
  PID=""
}
trap stop_server EXIT

for rep in $(seq 1 "$REPS"); do
  for mode in $MODES; do
    start_server
    flag=""; [ "$mode" = fresh ] && flag="--fresh-conn"
    echo "=== rep $rep, connection $mode, $(date -u +%H:%M:%S) ==="
    "$VENV/bin/python" "$HERE/mlflow_ingest.py" --url "http://127.0.0.1:$PORT" --db "$WORK/mlflow.db" \
      $flag --json "$OUT/mlflow_${mode}_rep${rep}.json" "$@" | tee "$OUT/mlflow_${mode}_rep${rep}.txt"
    stop_server
  done
done
