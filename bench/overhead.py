"""What reporting every step costs a real training loop.

The digits MLP (batch 64, torch on one thread, log_every=1, eval_every=100) computes the
same metrics every step in both variants, which run interleaved in one process:

  null      the values go to `trainer.loop.NullSink`, which drops them
  reporter  the values go to `momentum.Run`, whose reporter sends them to a real
            `momentum serve` on a fresh SQLite database (started here, on loopback)

Each round runs both, alternating which goes first; a warm-up round is not counted.
Throughput is the loop's own time (`TrainResult.elapsed_s`); the time `Run` then takes to
flush and close is shown apart. With two or more CPUs the service gets the last one and
the training process (the loop and the reporter's threads) the others, so the service
does not steal the loop's CPU and the reporter's threads do. Besides the wall-clock
ratios, which a shared machine makes noisy, the reporter's own cost is measured directly:
time inside `run.log()` plus its two threads' CPU time. Afterwards every reporter run is
checked to hold every point it logged.

    python bench/overhead.py                      # 5 rounds x 2,000 steps
    python bench/overhead.py --rounds 15          # steadier medians on a noisy machine
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from momentum.client import MomentumClient, Run  # noqa: E402
from momentum.contract.training import TrainingConfig  # noqa: E402
from tests.support import live_server  # noqa: E402
from trainer.loop import NullSink, TrainResult, train  # noqa: E402
from trainer.torch_data import Dataset, dataset_for  # noqa: E402


@dataclass
class Samples:
    ms_per_step: list[float] = field(default_factory=list)  # wall time of the loop
    cpu_ms_per_step: list[float] = field(default_factory=list)  # this process, all threads
    close_s: list[float] = field(default_factory=list)
    log_us: list[float] = field(default_factory=list)  # time inside run.log per call
    encoder_us: list[float] = field(default_factory=list)  # background CPU per step
    sender_us: list[float] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(self.ms_per_step)

    def add(self, result: TrainResult, cpu_s: float) -> None:
        self.ms_per_step.append(result.elapsed_s / result.steps_done * 1e3)
        self.cpu_ms_per_step.append(cpu_s / result.steps_done * 1e3)


def run_null(config: TrainingConfig, data: Dataset, samples: Samples) -> None:
    cpu = time.process_time()
    result = train(config, NullSink(), data=data)
    samples.add(result, time.process_time() - cpu)


class TimedSink:
    """Passes values to the run and adds up the time the training thread spends in `log`."""

    def __init__(self, run: Run) -> None:
        self.run, self.calls, self.seconds = run, 0, 0.0

    def log(self, step: int, values: Mapping[str, float]) -> None:
        started = time.perf_counter()
        self.run.log(step, values)
        self.seconds += time.perf_counter() - started
        self.calls += 1


def run_reporter(
    config: TrainingConfig, data: Dataset, url: str, spool: Path, samples: Samples
) -> None:
    run = Run(f"overhead-{len(samples.run_ids)}", config.model_dump(), url=url, spool_dir=spool)
    sink = TimedSink(run)
    with run:
        cpu = time.process_time()
        result = train(config, sink, data=data)
        cpu = time.process_time() - cpu
        closing = time.perf_counter()
    samples.close_s.append(time.perf_counter() - closing)
    if run.id is None or run.unsent_path is not None:
        raise RuntimeError(f"run did not reach the service (spool: {run.unsent_path})")
    samples.run_ids.append(run.id)
    samples.log_us.append(sink.seconds / sink.calls * 1e6)
    assert run.reporter is not None
    samples.encoder_us.append(run.reporter.stats.encoder_cpu_s / result.steps_done * 1e6)
    samples.sender_us.append(run.reporter.stats.sender_cpu_s / result.steps_done * 1e6)
    samples.add(result, cpu)


def verify(url: str, run_ids: list[int], config: TrainingConfig) -> int:
    """Every run holds every logged point; returns how many points were checked."""
    steps = config.steps
    last_is_extra = (steps - 1) % config.eval_every != 0  # the final step is always evaluated
    evaluated = len(range(0, steps, config.eval_every)) + int(last_is_extra)
    expected = {k: steps for k in ("loss", "accuracy", "lr", "grad_norm", "update_norm")}
    expected |= {"step_time": steps, "val_loss": evaluated, "val_accuracy": evaluated}
    with MomentumClient(url) as client:
        for run_id in run_ids:
            counts = {s.key: s.count for s in client.list_series(run_id).items}
            if counts != expected:
                raise RuntimeError(f"run {run_id} holds {counts}, expected {expected}")
    return sum(expected.values()) * len(run_ids)


def report(null: Samples, reporter: Samples, points: int) -> None:
    rounds = Table(title="per round: ms per step")
    for column in ("round", "null", "reporter", "ratio", "CPU ratio"):
        rounds.add_column(column, justify="right")
    pairs = list(zip(null.ms_per_step, reporter.ms_per_step, strict=True))
    cpu_pairs = list(zip(null.cpu_ms_per_step, reporter.cpu_ms_per_step, strict=True))
    for i, ((a, b), (c, d)) in enumerate(zip(pairs, cpu_pairs, strict=True)):
        rounds.add_row(str(i + 1), f"{a:.4f}", f"{b:.4f}", f"{b / a:.4f}", f"{d / c:.4f}")
    paired = statistics.median(b / a for a, b in pairs)
    paired_cpu = statistics.median(d / c for c, d in cpu_pairs)
    summary = Table(title="logging overhead (medians over rounds)")
    columns = ("variant", "steps/s", "ms/step", "ratio", "added ms/step", "CPU ms/step")
    for column in (*columns, "added CPU ms/step"):
        summary.add_column(column, justify="right")
    base = null.median()
    base_cpu = statistics.median(null.cpu_ms_per_step)
    for name, samples in (("null sink", null), ("reporter -> service", reporter)):
        ms, cpu = samples.median(), statistics.median(samples.cpu_ms_per_step)
        summary.add_row(
            name,
            f"{1e3 / ms:,.0f}",
            f"{ms:.4f}",
            f"{ms / base:.4f}x",
            f"{ms - base:+.4f}",
            f"{cpu:.4f}",
            f"{cpu - base_cpu:+.4f}",
        )
    console = Console(width=120)
    console.print(rounds, summary)
    log_us, encoder_us, sender_us = (
        statistics.median(v) for v in (reporter.log_us, reporter.encoder_us, reporter.sender_us)
    )
    own_us = log_us + encoder_us + sender_us
    console.print(
        f"wall-clock overhead: {100 * (reporter.median() / base - 1):+.2f} % (ratio of medians), "
        f"{100 * (paired - 1):+.2f} % (median of per-round ratios); "
        f"CPU: {100 * (paired_cpu - 1):+.2f} % (median of per-round ratios)\n"
        f"the reporter's own cost per step (medians): run.log() {log_us:.2f} us + encoder "
        f"thread {encoder_us:.2f} us + sender thread {sender_us:.2f} us = {own_us:.2f} us "
        f"= {100 * own_us / (base * 1e3):.2f} % of a null step\n"
        f"close (final flush) per run: median {statistics.median(reporter.close_s) * 1e3:.0f} ms; "
        f"verified: all {points:,} points logged by the reporter runs are stored"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="Do not pin the service to the last CPU and the training process to the others.",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = TrainingConfig(
        dataset="digits",
        model="mlp",
        optimizer="momentum",
        steps=args.steps,
        batch_size=64,
        log_every=1,
        eval_every=100,
        device="cpu",
    )
    data = dataset_for(config)
    with tempfile.TemporaryDirectory(prefix="momentum-overhead-") as tmp:
        env = {"MOMENTUM_DATA_DIR": str(Path(tmp) / "data")}
        subprocess.run(
            [sys.executable, "-m", "momentum.cli", "db", "upgrade"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        spool = Path(tmp) / "spool"
        cpus = sorted(os.sched_getaffinity(0))
        pin = args.pin and len(cpus) > 1
        if pin:  # the server process inherits this: it gets the last CPU to itself
            os.sched_setaffinity(0, cpus[-1:])
        with live_server(env) as url:
            if pin:  # training and the reporter's threads share the rest
                os.sched_setaffinity(0, cpus[:-1])
            warm_null, warm_reporter = Samples(), Samples()
            run_null(config, data, warm_null)
            run_reporter(config, data, url, spool, warm_reporter)
            null, reporter = Samples(), Samples()
            for round_ in range(args.rounds):
                order = [
                    lambda: run_null(config, data, null),
                    lambda: run_reporter(config, data, url, spool, reporter),
                ]
                for step in order if round_ % 2 == 0 else reversed(order):
                    step()
            points = verify(url, reporter.run_ids, config)
    report(null, reporter, points)


if __name__ == "__main__":
    main()
