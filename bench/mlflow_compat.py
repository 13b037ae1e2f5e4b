"""The MLflow API of Momentum Monitor, measured as docs/design.md measured MLflow's own server.

Starts `momentum serve` (SQLite in a fresh data dir; PostgreSQL with --database-url or
--throwaway-postgres), then measures, beside the MLflow 3.17 tracking server's figures
from docs/design.md ("Facts measured on these machines"):
  1. REST `runs/log-batch`, 1,000 metrics a request, bodies encoded before the clock
     (the same requests bench/peers/mlflow_ingest.py sends to `mlflow server`),
     one client, then 4 concurrent clients (threads, one run and connection each);
  2. the same ingest through the real MLflow client (`MlflowClient.log_batch`), which
     adds the client's own cost of building and encoding each request;
  3. `MlflowClient.get_metric_history` of one --points/2-step series.

    python bench/mlflow_compat.py                  # SQLite, 100,000 points
    python bench/mlflow_compat.py --points 200000 --throwaway-postgres
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.backend import add_database_arguments, benchmark_database  # noqa: E402
from tests.support import live_server  # noqa: E402

API = "/api/2.0/mlflow"
BATCH = 1_000
# MLflow 3.17's tracking server on SQLite, same machine (docs/design.md): points/s, seconds.
MLFLOW_ONE_CLIENT, MLFLOW_FOUR_CLIENTS, MLFLOW_READ_100K_S = 4_200, 8_900, 5.2


def _metrics(points: int) -> list[dict[str, object]]:
    now_ms = int(time.time() * 1000)
    out = []
    for index in range(points):
        step = index // 2
        key = "loss" if index % 2 == 0 else "accuracy"
        value = 2.3 / (1 + step * 1e-3) if key == "loss" else 1 - 1 / (2 + step)
        out.append({"key": key, "value": value, "timestamp": now_ms + step, "step": step})
    return out


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> bytes:
    connection.request("POST", API + path, body=body, headers={"content-type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}: {data[:300]!r}")
    return data


def _new_run(connection: http.client.HTTPConnection, name: str) -> str:
    body = json.dumps({"experiment_id": "0", "run_name": name}).encode()
    return str(json.loads(_post(connection, "/runs/create", body))["run"]["info"]["run_id"])


def rest_ingest(base_url: str, clients: int, points: int) -> float:
    """Points/s of pre-encoded log-batch requests from `clients` threads."""
    host, port = base_url.removeprefix("http://").split(":")
    connections = [http.client.HTTPConnection(host, int(port), timeout=120) for _ in range(clients)]
    share = points // clients
    bodies = []
    for index, connection in enumerate(connections):
        run_id = _new_run(connection, f"rest-{clients}-{index}")
        metrics = _metrics(share)
        bodies.append(
            [
                json.dumps({"run_id": run_id, "metrics": metrics[i : i + BATCH]}).encode()
                for i in range(0, share, BATCH)
            ]
        )
    go = threading.Barrier(clients + 1)

    def send(connection: http.client.HTTPConnection, batches: list[bytes]) -> None:
        go.wait()
        for body in batches:
            _post(connection, "/runs/log-batch", body)

    threads = [
        threading.Thread(target=send, args=pair) for pair in zip(connections, bodies, strict=True)
    ]
    for thread in threads:
        thread.start()
    go.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return share * clients / elapsed


def client_ingest_and_read(base_url: str, points: int) -> tuple[float, float, int]:
    """Points/s through MlflowClient.log_batch, then seconds to read one series back."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=base_url)
    run_id = client.create_run("0", run_name="mlflow-client").info.run_id
    metrics = [Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in _metrics(points)]  # type: ignore[arg-type]
    started = time.perf_counter()
    for index in range(0, points, BATCH):
        client.log_batch(run_id, metrics=metrics[index : index + BATCH], synchronous=True)
    rate = points / (time.perf_counter() - started)
    started = time.perf_counter()
    history = client.get_metric_history(run_id, "loss")
    return rate, time.perf_counter() - started, len(history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    add_database_arguments(parser)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with benchmark_database(args, "momentum-mlflow-bench-") as (database_url, data_dir):
        env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_DATA_DIR": str(data_dir)}
        os.environ.update(env)
        from service.migrate import upgrade
        from service.settings import Settings

        upgrade(Settings())
        with live_server(env) as url:
            one = rest_ingest(url, 1, args.points)
            four = rest_ingest(url, 4, args.points)
            through_client, read_s, steps = client_ingest_and_read(url, args.points)
    backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    table = Table(title=f"MLflow API: Momentum Monitor ({backend}) beside MLflow 3.17's server")
    for column in ("", "Momentum Monitor", "MLflow server (docs/design.md)", "ratio"):
        table.add_column(column, justify="right")
    table.add_row(
        "log-batch (1,000), 1 client",
        f"{one:,.0f} points/s",
        f"~{MLFLOW_ONE_CLIENT:,} points/s",
        f"{one / MLFLOW_ONE_CLIENT:.1f}x",
    )
    table.add_row(
        "log-batch (1,000), 4 clients",
        f"{four:,.0f} points/s",
        f"~{MLFLOW_FOUR_CLIENTS:,} points/s",
        f"{four / MLFLOW_FOUR_CLIENTS:.1f}x",
    )
    table.add_row("MlflowClient.log_batch, 1 client", f"{through_client:,.0f} points/s", "", "")
    table.add_row(
        f"get_metric_history ({steps:,} steps)",
        f"{read_s * 1000:,.0f} ms",
        f"~{MLFLOW_READ_100K_S} s (100,000 steps)",
        "",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
