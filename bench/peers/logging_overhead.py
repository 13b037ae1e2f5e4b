#!/usr/bin/env python3
"""Performance anchor: what does logging loss+accuracy EVERY step cost a small PyTorch loop?

Workload: sklearn digits (1797 8x8 images, bundled), MLP 64-128-10, SGD(lr=0.05, momentum=0.9),
batch 64, torch.set_num_threads(1), loss and batch accuracy computed and `.item()`-ed every step in
every arm; the only difference between arms is the logging call.

Arms (each measurement in a fresh interpreter; imports, data and 50 warm-up steps are untimed):
  baseline       no logging
  mlflow_sync    mlflow.log_metrics({...}, step=i) to a local `mlflow server` (sqlite backend)
  mlflow_async   the same with synchronous=False; flush_async_logging() + end_run() are in the total
  aim            aim.Run(repo=tmpdir).track(v, name=..., step=i) x2; close() in the total
  wandb          wandb.init(mode="offline", dir=tmpdir); wandb.log({...}, step=i); finish() in the total
  mlflow_async_buffered   extra: mlflow_async with MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1
Schedule: for each round, for each arm: baseline, arm (interleaved). Slowdown = arm's per-step time
(loop + final flush/close) / per-step time of the median baseline of the same round.
Afterwards each arm's 'loss' and 'accuracy' series are read back through the tool's own API and
compared point by point with what was logged.

Usage (re-runnable):
  /tmp/overhead-venv/bin/python bench/peers/logging_overhead.py --out /tmp/logging_overhead
      [--steps 3000] [--sync-steps 300] [--reps 3] [--arms mlflow_sync,mlflow_async,aim,wandb,...]
      [--port 5066] [--mlflow-venv /tmp/mlflow-venv] [--keep]
Setup:
  python3 -m venv /tmp/overhead-venv
  /tmp/overhead-venv/bin/pip install torch==2.13.0 scikit-learn mlflow==3.17.2 aim wandb
  (/tmp/mlflow-venv: a venv with `mlflow` that runs the tracking server)
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = "/tmp/logging-overhead-results"
ALL_ARMS = ["mlflow_sync", "mlflow_async", "aim", "wandb",
            # extra (not a default user setting): async with MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1,
            # which lets MLflow merge queued calls into log-batch requests of up to 1000 items
            "mlflow_async_buffered"]
EXTRA_ARMS: list = []
WARMUP = 50
BATCH = 64


# ----------------------------------------------------------------------------------------------
# worker: one measurement in a fresh interpreter
# ----------------------------------------------------------------------------------------------
def _helper_cpu_s() -> float:
    """CPU seconds of this process's child processes (live ones via psutil + reaped ones)."""
    total = 0.0
    try:
        import psutil

        for c in psutil.Process().children(recursive=True):
            try:
                t = c.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    except ImportError:
        pass
    t = os.times()
    return total + t.children_user + t.children_system


def _cpu_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]  # idle + iowait
    return sum(vals) - idle, sum(vals)


def _read_wandb_history(run_dir: str) -> dict[str, dict[int, float]]:
    """Read 'history' records from a W&B offline transaction log (run-<id>.wandb).

    wandb 0.31 ships no Python reader for it (wandb-core, in Go, writes it); the format is a
    LevelDB-style log: 7-byte file header ':W&B' 0xBEE1 v0, 32 KiB blocks, records with a
    <crc32 u32, len u16, type u8> header (FULL=1 FIRST=2 MIDDLE=3 LAST=4) holding wandb's own
    protobuf `Record` messages, which are decoded with wandb.proto.wandb_internal_pb2.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = glob.glob(os.path.join(run_dir, "run-*.wandb"))
    data = open(path, "rb").read()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1, (ident, magic, version)
    block = 32768
    i, buf, payloads, bad_crc = 7, b"", [], 0
    while i + 7 <= len(data):
        if block - (i % block) < 7:  # block trailer padding
            i += block - (i % block)
            continue
        crc, length, typ = struct.unpack("<IHB", data[i : i + 7])
        i += 7
        if typ == 0 and length == 0:  # zero padding up to the end of the block
            i += (block - (i % block)) % block
            continue
        chunk = data[i : i + length]
        i += length
        if zlib.crc32(chunk, zlib.crc32(bytes([typ]))) & 0xFFFFFFFF != crc:
            bad_crc += 1
        if typ == 1:
            payloads.append(chunk)
        elif typ == 2:
            buf = chunk
        elif typ == 3:
            buf += chunk
        elif typ == 4:
            payloads.append(buf + chunk)
            buf = b""
        else:
            raise ValueError(f"bad record type {typ} at {i}")
    series: dict[str, dict[int, float]] = {}
    for p in payloads:
        rec = pb.Record()
        rec.ParseFromString(p)
        if rec.WhichOneof("record_type") != "history":
            continue
        items = {(it.key or "/".join(it.nested_key)): json.loads(it.value_json) for it in rec.history.item}
        step = int(items.get("_step", rec.history.step.num))
        for k, v in items.items():
            if not k.startswith("_"):
                series.setdefault(k, {})[step] = v
    if bad_crc:
        series["__bad_crc__"] = {0: bad_crc}
    return series


def _compare(logged: list[float], stored: dict[int, float]) -> dict:
    ok = sum(1 for i, v in enumerate(logged) if i in stored and stored[i] == v)
    return {"expected": len(logged), "stored_points": len(stored), "matching": ok}


def worker(args) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    arm, steps, work = args.worker, args.steps, args.workdir
    torch.set_num_threads(1)
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    Y = torch.tensor(y, dtype=torch.long)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    per_epoch = len(X) // BATCH  # drop the last partial batch
    need = WARMUP + steps
    perms = [torch.randperm(len(X), generator=gen)[: per_epoch * BATCH].view(per_epoch, BATCH)
             for _ in range(need // per_epoch + 1)]
    order = torch.cat(perms)[:need].contiguous()

    def train_step(idx):
        xb, yb = X[idx], Y[idx]
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc = (logits.argmax(1) == yb).float().mean()
        return loss.item(), acc.item()

    for i in range(WARMUP):
        train_step(order[i])

    # ---- per-arm logger: setup (timed separately), log(i, l, a), teardown (in the total) ----
    info: dict = {}
    t_setup0 = time.perf_counter()
    if arm == "baseline":
        def log(i, l, a):
            pass

        def teardown():
            pass
    elif arm.startswith("mlflow"):
        import mlflow

        if arm == "mlflow_async_buffered":
            os.environ["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = "1"
        mlflow.set_tracking_uri(args.tracking_uri)
        mlflow.set_experiment("logging-overhead")
        t_setup0 = time.perf_counter()  # experiment lookup/creation is not part of a run's cost
        run = mlflow.start_run()
        info["run_id"] = run.info.run_id
        sync = arm == "mlflow_sync"

        def log(i, l, a):
            mlflow.log_metrics({"loss": l, "accuracy": a}, step=i, synchronous=sync)

        def teardown():
            if not sync:
                mlflow.flush_async_logging()
            mlflow.end_run()
    elif arm == "aim":
        import aim

        repo_dir = os.path.join(work, "aim")
        run = aim.Run(repo=repo_dir)
        info["run_hash"] = run.hash

        def log(i, l, a):
            run.track(l, name="loss", step=i)
            run.track(a, name="accuracy", step=i)

        def teardown():
            run.close()
    elif arm == "wandb":
        import wandb

        run = wandb.init(mode="offline", dir=work, project="logging-overhead")
        info["run_dir"] = os.path.dirname(run.dir)

        def log(i, l, a):
            wandb.log({"loss": l, "accuracy": a}, step=i)

        def teardown():
            wandb.finish()
    else:
        raise SystemExit(f"unknown arm {arm}")
    setup_s = time.perf_counter() - t_setup0

    losses: list[float] = []
    accs: list[float] = []
    load0 = os.getloadavg()[0]
    cpu0, hcpu0, sys0 = time.process_time(), _helper_cpu_s(), _cpu_busy_jiffies()
    t0 = time.perf_counter()
    for i in range(steps):
        l, a = train_step(order[WARMUP + i])
        log(i, l, a)
        losses.append(l)
        accs.append(a)
    t1 = time.perf_counter()
    teardown()
    t2 = time.perf_counter()
    cpu1, hcpu1, sys1 = time.process_time(), _helper_cpu_s(), _cpu_busy_jiffies()

    res = {
        "arm": arm, "steps": steps, "setup_s": setup_s, "loop_s": t1 - t0, "teardown_s": t2 - t1,
        "total_s": t2 - t0, "proc_cpu_s": cpu1 - cpu0, "helper_cpu_s": hcpu1 - hcpu0,
        "loadavg1_start": load0,
        # busy CPUs (all processes) during loop+teardown; ~1.0 = just this loop on an idle box
        "system_busy_cpus": (sys1[0] - sys0[0]) / max(1, sys1[1] - sys0[1]) * (os.cpu_count() or 1), "final_loss": losses[-1], "mean_acc_last100": float(np.mean(accs[-100:])),
    }

    # ---- read back through each tool's own API (untimed) ----
    t_rb = time.perf_counter()
    if arm.startswith("mlflow"):
        from mlflow import MlflowClient

        client = MlflowClient(args.tracking_uri)
        for key, logged in (("loss", losses), ("accuracy", accs)):
            hist = client.get_metric_history(info["run_id"], key)
            stored = {m.step: m.value for m in hist}
            res[f"readback_{key}"] = _compare(logged, stored) | {"rows": len(hist)}
    elif arm == "aim":
        import aim

        # Runs become visible to Repo queries once indexed (what `aim up` does in the background);
        # do it explicitly with Aim's CLI, then query the repo.
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "aim"), "storage", "--repo", repo_dir,
                        "reindex", "-y"], check=True, capture_output=True)
        repo = aim.Repo(repo_dir)
        for key, logged in (("loss", losses), ("accuracy", accs)):
            stored = {}
            for m in repo.query_metrics(f"metric.name == '{key}'"):
                if m.run.hash == info["run_hash"]:
                    st, cols = m.data.numpy()
                    stored = {int(s): float(v) for s, v in zip(st, cols[0])}
            res[f"readback_{key}"] = _compare(logged, stored)
    elif arm == "wandb":
        series = _read_wandb_history(info["run_dir"])
        for key, logged in (("loss", losses), ("accuracy", accs)):
            res[f"readback_{key}"] = _compare(logged, series.get(key, {}))
        if "__bad_crc__" in series:
            res["wandb_bad_crc_records"] = series["__bad_crc__"][0]
    res["readback_s"] = time.perf_counter() - t_rb
    try:
        import psutil

        res["children_left"] = [c.pid for c in psutil.Process().children(recursive=True)]
    except ImportError:
        pass
    return res


# ----------------------------------------------------------------------------------------------
# parent: MLflow server, schedule, summary
# ----------------------------------------------------------------------------------------------
def _pkg_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in ("torch", "scikit-learn", "numpy", "mlflow", "mlflow-skinny", "aim", "wandb", "psutil"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class MlflowServer:
    def __init__(self, venv: str, work: str, port: int):
        self.venv, self.work, self.port = venv, work, port
        self.proc = None
        self.tree_pids: list = []

    def start(self) -> str:
        if _port_open(self.port):
            raise SystemExit(f"port {self.port} is already in use on 127.0.0.1; pick another with --port")
        db = os.path.join(self.work, "mlflow.db")
        cmd = [os.path.join(self.venv, "bin", "mlflow"), "server", "--backend-store-uri", f"sqlite:///{db}",
               "--host", "127.0.0.1", "--port", str(self.port)]
        self.log = open(os.path.join(self.work, "mlflow-server.log"), "w")
        self.proc = subprocess.Popen(cmd, cwd=self.work, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        url = f"http://127.0.0.1:{self.port}"
        for _ in range(180):
            if self.proc.poll() is not None:
                raise SystemExit(f"mlflow server exited early; see {self.log.name}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            raise SystemExit("mlflow server did not come up in 180 s")
        print(f"mlflow server PID {self.proc.pid} on {url} ({' '.join(cmd)})", flush=True)
        self._warm_up(url)
        return url

    def _warm_up(self, url: str, requests: int = 40):
        """Hit every uvicorn worker (new connection per request) so lazy imports, DB connections and
        the job runner's first-request start-up are done before measuring; then wait for quiet."""
        def post(path, body):
            req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"{}")

        exp = post("/api/2.0/mlflow/experiments/create", {"name": "warm-up"})["experiment_id"]
        run_id = post("/api/2.0/mlflow/runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
        for i in range(requests):
            post("/api/2.0/mlflow/runs/log-batch", {"run_id": run_id, "metrics": [
                {"key": "loss", "value": 1.0, "timestamp": int(time.time() * 1000), "step": i}]})
        post("/api/2.0/mlflow/runs/update", {"run_id": run_id, "status": "FINISHED"})
        quiet, last, t0 = 0, self.cpu_s(), time.time()
        while quiet < 5 and time.time() - t0 < 180:
            time.sleep(1)
            now = self.cpu_s()
            quiet = quiet + 1 if now - last < 0.05 else 0
            last = now
        self.idle_cpu_per_s = None
        c0 = self.cpu_s()
        time.sleep(5)
        self.idle_cpu_per_s = (self.cpu_s() - c0) / 5
        print(f"mlflow server warmed up ({requests} log-batch requests); idle CPU {self.idle_cpu_per_s:.3f} s/s "
              f"after {time.time() - t0:.0f}s", flush=True)

    def cpu_s(self) -> float:
        import psutil

        try:
            p = psutil.Process(self.proc.pid)
            procs = [p] + p.children(recursive=True)
        except psutil.Error:
            return float("nan")
        total = 0.0
        for q in procs:
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        import psutil

        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            kids = []
        self.proc.send_signal(signal.SIGTERM)  # the mlflow CLI stops its uvicorn/job-runner children
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        _, alive = psutil.wait_procs(kids, timeout=15)
        for k in alive:  # only processes this script started, by PID
            try:
                k.kill()
            except psutil.Error:
                pass
        self.log.close()


def _run_worker(arm: str, steps: int, work: str, uri: str, timeout: int) -> dict:
    wdir = tempfile.mkdtemp(prefix=f"{arm}-", dir=work)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", arm, "--steps", str(steps),
           "--workdir", wdir, "--tracking-uri", uri or ""]
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", PYTHONHASHSEED="0")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=wdir)
    except subprocess.TimeoutExpired:
        return {"arm": arm, "steps": steps, "error": f"timeout after {timeout}s"}
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode != 0 or not line:
        return {"arm": arm, "steps": steps, "error": f"rc={p.returncode}", "stderr_tail": p.stderr[-2000:]}
    res = json.loads(line[-1][7:])
    # wandb-core / other helpers a worker spawned should exit with it; stop stragglers by PID
    left = res.get("children_left") or []
    if left:
        import psutil

        procs = []
        for pid in left:
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=10)
        for q in alive:
            try:
                q.kill()
            except psutil.Error:
                pass
        res["stragglers_killed"] = [q.pid for q in alive]
    return res


def _fmt_rb(r: dict) -> str:
    rb = r.get("readback_loss")
    if not rb:
        return "-"
    return f"{rb['matching']}/{rb['expected']}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--sync-steps", type=int, default=300,
                    help="steps for mlflow_sync (one HTTP request per step); per-step cost is extrapolated")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--arms", default=",".join(ALL_ARMS), help=f"subset of {ALL_ARMS + EXTRA_ARMS}")
    ap.add_argument("--port", type=int, default=5066)
    ap.add_argument("--mlflow-venv", default="/tmp/mlflow-venv")
    ap.add_argument("--worker-timeout", type=int, default=1200)
    ap.add_argument("--out", default=os.path.join(RESULTS, "logging_overhead"))
    ap.add_argument("--keep", action="store_true", help="keep the /tmp work dir (runs, DB, server log)")
    # internal
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--tracking-uri", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return

    arms = [a for a in args.arms.split(",") if a]
    for a in arms:
        if a not in ALL_ARMS + EXTRA_ARMS:
            raise SystemExit(f"unknown arm {a}")
    os.makedirs(RESULTS, exist_ok=True)
    work = tempfile.mkdtemp(prefix="logging-overhead-", dir="/tmp")
    versions = _pkg_versions()
    server_versions = None
    print(f"work dir {work}\nversions {versions}", flush=True)
    server = None
    uri = ""
    runs: list[dict] = []
    t_start = time.time()
    try:
        if any(a.startswith("mlflow") for a in arms):
            server = MlflowServer(args.mlflow_venv, work, args.port)
            uri = server.start()
            server_versions = subprocess.run([os.path.join(args.mlflow_venv, "bin", "python"), "-c",
                                              "import mlflow;print(mlflow.__version__)"],
                                             capture_output=True, text=True).stdout.strip()
        for rnd in range(1, args.reps + 1):
            for arm in arms:
                for a in ("baseline", arm):
                    steps = args.sync_steps if a == "mlflow_sync" else args.steps
                    s_cpu0 = server.cpu_s() if server else None
                    r = _run_worker(a, steps, work, uri, args.worker_timeout)
                    if server:
                        r["server_cpu_s"] = server.cpu_s() - s_cpu0
                    r["round"], r["paired_with"] = rnd, arm
                    runs.append(r)
                    if "error" in r:
                        print(f"round {rnd} {a:22s} ERROR {r['error']} {r.get('stderr_tail', '')[-600:]}", flush=True)
                    else:
                        print(f"round {rnd} {a:22s} steps={steps:5d} setup={r['setup_s']:.3f}s loop={r['loop_s']:.3f}s "
                              f"teardown={r['teardown_s']:.3f}s -> {steps / r['total_s']:9.1f} steps/s "
                              f"cpu={r['proc_cpu_s']:.2f}s helper={r['helper_cpu_s']:.2f}s "
                              f"server={r.get('server_cpu_s') or 0:.2f}s busy_cpus={r['system_busy_cpus']:.2f} "
                              f"readback(loss)={_fmt_rb(r)}", flush=True)
    finally:
        if server:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    # ---- summary ----
    ok = [r for r in runs if "error" not in r]
    base_by_round = {}
    for rnd in range(1, args.reps + 1):
        b = [r["total_s"] / r["steps"] for r in ok if r["arm"] == "baseline" and r["round"] == rnd]
        base_by_round[rnd] = statistics.median(b) if b else float("nan")
    summary = []
    base_all = [r for r in ok if r["arm"] == "baseline"]
    rows = [("baseline", base_all)] + [(a, [r for r in ok if r["arm"] == a]) for a in arms]
    for arm, rs in rows:
        if not rs:
            summary.append({"arm": arm, "error": "no successful measurement"})
            continue
        per_step = [r["total_s"] / r["steps"] for r in rs]
        ratios = [(r["total_s"] / r["steps"]) / base_by_round[r["round"]] for r in rs]
        rb = [r.get("readback_loss") for r in rs]
        summary.append({
            "arm": arm, "n": len(rs), "steps": rs[0]["steps"],
            "median_total_s": statistics.median(r["total_s"] for r in rs),
            "median_total_s_at_full_steps": statistics.median(per_step) * args.steps,
            "median_steps_per_s": statistics.median(1 / p for p in per_step),
            "median_slowdown": statistics.median(ratios), "slowdowns": ratios,
            "median_setup_s": statistics.median(r["setup_s"] for r in rs),
            "median_teardown_s": statistics.median(r["teardown_s"] for r in rs),
            "median_added_us_per_step": statistics.median(
                (p - base_by_round[r["round"]]) * 1e6 for p, r in zip(per_step, rs)),
            "median_system_busy_cpus": statistics.median(r["system_busy_cpus"] for r in rs),
            "median_proc_cpu_s_per_1k_steps": statistics.median(r["proc_cpu_s"] / r["steps"] * 1000 for r in rs),
            "median_helper_cpu_s_per_1k_steps": statistics.median(
                (r["helper_cpu_s"] + ((r.get("server_cpu_s") or 0) if arm.startswith("mlflow") else 0))
                / r["steps"] * 1000
                for r in rs),
            "readback_loss": [f"{x['matching']}/{x['expected']}" if x else None for x in rb],
            "readback_accuracy": [(lambda x: f"{x['matching']}/{x['expected']}" if x else None)(r.get("readback_accuracy"))
                                  for r in rs],
        })
    out = {
        "question": "slowdown of a small PyTorch training loop from logging loss+accuracy every step",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions, "mlflow_server_version": server_versions,
        "mlflow_server_idle_cpu_s_per_s": getattr(server, "idle_cpu_per_s", None),
        "config": {"steps": args.steps, "sync_steps": args.sync_steps, "reps": args.reps, "arms": arms,
                   "warmup": WARMUP, "batch": BATCH, "port": args.port},
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "wall_s": time.time() - t_start,
        "baseline_s_per_step_by_round": base_by_round, "summary": summary, "runs": runs,
    }
    with open(args.out + ".json", "w") as f:
        json.dump(out, f, indent=1)
    lines = ["| arm | steps/run | median total (s) | steps/s | slowdown vs baseline | added us/step | "
             "setup (s, untimed) | teardown (s) | helper CPU s/1k steps | loss points read back |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        if "error" in s:
            lines.append(f"| {s['arm']} | error |")
            continue
        lines.append(f"| {s['arm']} | {s['steps']} | {s['median_total_s']:.2f} | {s['median_steps_per_s']:.0f} | "
                     f"{s['median_slowdown']:.2f}x ({', '.join(f'{x:.2f}' for x in s['slowdowns'])}) | "
                     f"{s['median_added_us_per_step']:.0f} | {s['median_setup_s']:.2f} | {s['median_teardown_s']:.2f} | "
                     f"{s['median_helper_cpu_s_per_1k_steps']:.2f} | "
                     f"{', '.join(x or '-' for x in s['readback_loss'])} |")
    table = "\n".join(lines)
    with open(args.out + ".md", "w") as f:
        f.write(f"versions: {versions}; mlflow server: {server_versions}\n\n{table}\n")
    print("\n" + table)
    print(f"\nwrote {args.out}.json and {args.out}.md; wall {out['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
