"""`import momentum.wandb as wandb`: the part of W&B's API training scripts use, logging
to Momentum Monitor through the SDK (`momentum.Run`: never blocks, never loses a point).

    import momentum.wandb as wandb                   # was: import wandb

    wandb.init(project="mnist", config={"lr": 0.05, "momentum": 0.9})
    for step in range(steps):
        wandb.log({"loss": loss})
    wandb.finish()

Steps follow W&B's rules: each `log` without `step` is the next step (0, 1, 2…);
`commit=False` adds to the current step without moving on; `log(..., step=s)` with `s`
ahead of the current step first commits what is pending, then collects at `s` (it is
committed by the next `log` without `step`, a larger step, `commit=True` or `finish`);
a `step` behind the current one is dropped with a warning. `config` becomes the run's
params, so `momentum` and `lr` are filterable. `summary` values you set are kept as the
run's tags `summary.<key>` (and, for a number under a key never logged, as a point at
the last step); a key's last logged value is the service's `latest` already.
`define_metric`, `watch`, `Image`, `Histogram`, `Table` exist and do nothing but warn.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from momentum.adapters import close_at_exit, param, script_failed, warn_once
from momentum.wandb_run import Config, Error, Summary, WandbRun, new_run_id

__all__ = [
    "Config",
    "Error",
    "Histogram",
    "Image",
    "Summary",
    "Table",
    "config",
    "define_metric",
    "finish",
    "init",
    "log",
    "login",
    "run",
    "summary",
    "watch",
]

run: WandbRun | None = None
config = Config()
summary = Summary()


def init(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | argparse.Namespace | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    id: str | None = None,  # noqa: A002 - W&B's name for it
    resume: bool | str | None = None,
    *,
    group: str | None = None,
    job_type: str | None = None,
    reinit: bool | str | None = None,
    **_ignored: Any,
) -> WandbRun:
    """Start a run (W&B's other arguments, `entity`, `notes`, `mode`…, are accepted and
    ignored). `id` makes the run idempotent: the same id continues the same run, and with
    `resume` its steps go on after the last one logged. A second
    `init` returns the active run, unless `reinit` asks for a new one (W&B's default in
    a script)."""
    global run
    if run is not None:
        if not reinit or reinit == "return_previous":
            return run
        finish()
    values = vars(config) if isinstance(config, argparse.Namespace) else dict(config or {})
    labels = {str(tag): "" for tag in tags or ()}
    labels.update({k: v for k, v in (("group", group), ("job_type", job_type)) if v})
    globals()["config"].reset({str(key): param(value) for key, value in values.items()})
    summary.reset()
    run = WandbRun(
        project=project or "default",
        name=name,
        run_id=id or new_run_id(),
        tags=labels,
        config=globals()["config"],
        summary=summary,
        resume=resume and id is not None,
    )
    close_at_exit(_finish_at_exit)
    return run


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """Log `data` (nested dicts as `outer.inner` keys) by W&B's step rules."""
    _active("log").log(data, step=step, commit=commit)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Commit what is pending and end the run: `failed` for a non-zero `exit_code`."""
    global run
    if run is not None:
        finishing, run = run, None
        finishing.finish(exit_code)


def define_metric(name: str, *args: Any, **kwargs: Any) -> None:
    warn_once("wandb.define_metric", "momentum.wandb.define_metric does nothing")


def watch(models: Any, *args: Any, **kwargs: Any) -> None:
    warn_once("wandb.watch", "momentum.wandb.watch does nothing: gradients are not logged")


def login(*args: Any, **kwargs: Any) -> bool:
    """Nothing to log in to: MOMENTUM_URL and MOMENTUM_TOKEN say where runs go."""
    return True


class _Media:
    """W&B's media types: accepted so scripts run; logging one drops it with a warning."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kind = type(self).__name__
        warn_once(f"wandb.{kind}", f"momentum.wandb.{kind} is not logged: values are numbers")


class Image(_Media):
    pass


class Histogram(_Media):
    pass


class Table(_Media):
    pass


def _active(method: str) -> WandbRun:
    if run is None:
        raise Error(f"You must call wandb.init() before wandb.{method}()")
    return run


def _finish_at_exit() -> None:
    """W&B finishes a run the script left open; failed if the script raised."""
    if run is not None:
        finish(1 if script_failed() else 0)
