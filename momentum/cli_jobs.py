"""Commands for people: `submit`, `sweep`, `jobs` (with `cancel`, `stop`, `retry`, `logs`),
`runs`, `workers`.

Each is one or two calls through `MomentumClient`, shown as a rich table. An error from
the service is shown as the contract's message (with its detail items) and exits 1.
The training options are the ones `momentum train` has (`training_options`), so a job
is described the same way whether it is trained here or on a worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from pydantic import TypeAdapter, ValidationError

from momentum.cli_common import F, api, connection_options, print_table, request_body
from momentum.cli_entry_points import (
    check_one_kind,
    describe_entry_job,
    entry_point_options,
    parse_param_grid,
    parse_params,
)
from momentum.cli_train import parse_tags, run_options, training_options
from momentum.contract.training import TrainingConfig

if TYPE_CHECKING:
    from momentum.client import MomentumClient
    from momentum.contract import JobPublic, RunPublic, WorkerPublic

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
WRAPPING = frozenset({"name", "config", "error"})
STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _listing_options(what: str) -> Callable[[F], F]:
    """`--status`, `--sweep` and `--limit` of the commands that list jobs or runs."""

    def decorate(command: F) -> F:
        command = click.option(
            "--limit", default=50, show_default=True, type=click.IntRange(1, 1000)
        )(command)
        command = click.option(
            "--sweep", "sweep_id", type=int, help=f"Only the {what} of this sweep."
        )(command)
        return click.option(
            "--status", type=click.Choice(STATUSES), help=f"Only {what} with this status."
        )(command)

    return decorate


@click.command()
@entry_point_options
@training_options
@connection_options
@run_options("Job (and run) name [default: job-<id>].")
@click.option("--max-attempts", type=click.IntRange(1, 100), help="Claims before giving up.")
def submit(
    entry_point: str | None,
    params: tuple[str, ...],
    url: str | None,
    token: str | None,
    name: str | None,
    project: str,
    tags: tuple[str, ...],
    max_attempts: int | None,
    **fields: Any,
) -> None:
    """Queue one job for a worker (the built-in trainer, or an entry point with
    --param values); prints its id and its run's id."""
    from momentum.contract import JobCreate

    check_one_kind(entry_point, params, fields)
    work: dict[str, Any] = {"config": _given(fields)}
    if entry_point is not None:
        work = {"entry_point": entry_point, "params": parse_params(params)}
    body = {**work, "project": project, "tags": parse_tags(tags)}
    body.update(_given({"name": name, "max_attempts": max_attempts}))
    with api(url, token) as client:
        job = client.submit_job(request_body(JobCreate, body))
    click.echo(f"job {job.id} {job.status} (run {job.run_id})")


def parse_grid(specs: tuple[str, ...]) -> dict[str, list[Any]]:
    """`--grid momentum=0,0.5,0.9` → {"momentum": [0.0, 0.5, 0.9]}, typed by the field."""
    grid: dict[str, list[Any]] = {}
    fields = TrainingConfig.model_fields
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values:
            raise click.BadParameter(f"{spec!r} is not FIELD=V1,V2,...", param_hint="--grid")
        if name not in fields:
            known = ", ".join(fields)
            raise click.BadParameter(f"unknown field {name!r}; known: {known}", param_hint="--grid")
        adapter: TypeAdapter[Any] = TypeAdapter(fields[name].annotation or str)
        try:
            grid[name] = [adapter.validate_strings(v.strip()) for v in values.split(",")]
        except ValidationError as exc:
            message = exc.errors(include_url=False)[0]["msg"]
            raise click.BadParameter(f"{name}: {message}", param_hint="--grid") from None
    return grid


@click.command()
@click.option("--grid", "grids", multiple=True, required=True, help="FIELD=V1,V2,...; repeatable.")
@entry_point_options
@training_options
@connection_options
@click.option("--name", default="sweep", show_default=True, help="Sweep name.")
@click.option("--project", default="default", show_default=True)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE; repeatable.")
def sweep(
    grids: tuple[str, ...],
    entry_point: str | None,
    params: tuple[str, ...],
    url: str | None,
    token: str | None,
    name: str,
    project: str,
    tags: tuple[str, ...],
    **fields: Any,
) -> None:
    """Queue one job per combination of the grids, on top of the training options (or
    an entry point's --param values) given."""
    from momentum.contract import SweepCreate

    check_one_kind(entry_point, params, fields)
    work: dict[str, Any] = {"base": _given(fields), "grid": parse_grid(grids)}
    if entry_point is not None:
        work = {"entry_point": entry_point, "base": parse_params(params)}
        work["grid"] = parse_param_grid(grids)
    body = {
        "name": name,
        **work,
        "project": project,
        "tags": parse_tags(tags),
    }
    with api(url, token) as client:
        created = client.create_sweep(request_body(SweepCreate, body))
    ids = created.job_ids
    click.echo(f"sweep {created.id}: {len(ids)} jobs queued ({_id_range(ids)})")


def _id_range(ids: list[int]) -> str:
    if not ids:
        return "none"
    return f"job {ids[0]}" if len(ids) == 1 else f"jobs {min(ids)}-{max(ids)}"


def _ago(at: datetime | None) -> str:
    if at is None:
        return "-"
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - at).total_seconds()
    if seconds < 120:
        return f"{max(0, round(seconds))}s ago"
    if seconds < 7200:
        return f"{round(seconds / 60)}m ago"
    return f"{round(seconds / 3600)}h ago"


def _table(title: str, columns: list[str], rows: list[list[str]], total: int) -> None:
    print_table(f"{title} ({len(rows)} of {total})", columns, rows, wrapping=WRAPPING)


def _status(status: str) -> str:
    style = STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _job_row(job: JobPublic) -> list[str]:
    config = job.config
    # A finished job's summary has the final count; heartbeats report only until then.
    step = (job.summary or {}).get("steps_done", job.progress_step)
    total = config.steps if config is not None else job.progress_total
    progress = "-" if step is None else f"{step}/{_dash(total)}"
    what = describe_entry_job(job)
    if config is not None:
        what = f"{config.optimizer} mu={config.momentum:g} {config.dataset}/{config.model}"
    return [
        str(job.id),
        _dash(job.name),
        _status(job.status) + (" (stopped early)" if job.early_stopped else ""),
        what,
        progress,
        f"{job.attempts}/{job.max_attempts}",
        _dash(job.lease_owner),
        _dash(job.run_id),
        (job.error or "")[:60],
    ]


@click.group(invoke_without_command=True)
@_listing_options("jobs")
@connection_options
@click.pass_context
def jobs(
    ctx: click.Context,
    status: str | None,
    sweep_id: int | None,
    limit: int,
    url: str | None,
    token: str | None,
) -> None:
    """List jobs, newest first (`jobs cancel ID`, `jobs stop ID`, `jobs retry ID` act on one)."""
    if ctx.invoked_subcommand is not None:
        return
    with api(url, token) as client:
        page = client.list_jobs(status=status, sweep_id=sweep_id, limit=limit)
    columns = ["id", "name", "status", "config", "step", "attempts", "worker", "run", "error"]
    _table("jobs", columns, [_job_row(job) for job in page.items], page.total)


def _job_action(action: str, act: Callable[[MomentumClient, int], JobPublic]) -> click.Command:
    @click.command(action, help=f"{action.capitalize()} job ID.")
    @click.argument("job_id", type=int)
    @connection_options
    def command(job_id: int, url: str | None, token: str | None) -> None:
        with api(url, token) as client:
            job = act(client, job_id)
        stopping = job.status == "running" and job.cancel_requested
        note = " (cancel requested: its worker stops within seconds)" if stopping else ""
        click.echo(f"job {job.id} {job.status}{note}")

    return command


jobs.add_command(_job_action("cancel", lambda client, job_id: client.cancel_job(job_id)))
jobs.add_command(_job_action("retry", lambda client, job_id: client.retry_job(job_id)))


@jobs.command("stop")
@click.argument("job_id", type=int)
@click.option("--reason", help="Why, in words (kept in the verdict's reason).")
@connection_options
def stop(job_id: int, reason: str | None, url: str | None, token: str | None) -> None:
    """Stop running job ID early, keeping its result: unlike cancel, it ends succeeded
    (`early_stopped`, rule manual) with its points up to the step it reached."""
    with api(url, token) as client:
        job = client.stop_job(job_id, reason)
    verdict = job.early_stopped
    said = f": {verdict.reason}" if verdict is not None else ""
    note = " (its worker stops within seconds)" if job.status == "running" else ""
    click.echo(f"job {job.id} {job.status}, stopped early{said}{note}")


@jobs.command("logs")
@click.argument("job_id", type=int)
@click.option(
    "--follow", "-f", is_flag=True, help="Print new output as it comes, until the job ends."
)
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.05, 60),
    help="Seconds between looks for new output with --follow.",
)
@connection_options
def logs(job_id: int, follow: bool, interval: float, url: str | None, token: str | None) -> None:
    """Print job ID's log: its process's stdout and stderr, every attempt's."""
    from momentum.contract import TERMINAL_STATUSES

    printer = _LogPrinter()
    with api(url, token) as client:
        printer.catch_up(client, job_id)
        while follow:
            # The status first: output shipped before the job ended is read after it.
            ended = client.get_job(job_id).status in TERMINAL_STATUSES
            printer.catch_up(client, job_id)
            if ended:
                break
            time.sleep(interval)


class _LogPrinter:
    """Prints a job's log from where it left off, saying where a dropped middle was."""

    def __init__(self) -> None:
        self.offset = 0
        self.at_line_start = True

    def catch_up(self, client: MomentumClient, job_id: int) -> None:
        while True:
            page = client.job_logs(job_id, self.offset)
            if page.offset > self.offset:
                lead = "" if self.at_line_start else "\n"
                dropped = page.offset - self.offset
                click.echo(f"{lead}[... {dropped} bytes dropped: over the service's log cap ...]")
                self.at_line_start = True
            if not page.text:
                return
            click.echo(page.text, nl=False)
            self.offset = page.next_offset
            self.at_line_start = page.text.endswith("\n")


def _latest(run: RunPublic, key: str) -> str:
    value = run.latest.get(key)
    return f"{value:.4g}" if isinstance(value, float) else _dash(value)


def _run_row(run: RunPublic) -> list[str]:
    return [
        str(run.id),
        run.name,
        run.project,
        _status(run.status) + (" [red](diverged)[/]" if run.diverged else ""),
        _dash(run.optimizer),
        _dash(run.momentum),
        _dash(run.last_step),
        _latest(run, "loss"),
        _latest(run, "val_accuracy"),
    ]


@click.command()
@click.option("--project", help="Only runs of this project.")
@_listing_options("runs")
@connection_options
def runs(
    status: str | None,
    sweep_id: int | None,
    limit: int,
    project: str | None,
    url: str | None,
    token: str | None,
) -> None:
    """List runs, newest first, with their last step and latest loss."""
    with api(url, token) as client:
        page = client.list_runs(project=project, status=status, sweep_id=sweep_id, limit=limit)
    columns = ["id", "name", "project", "status", "optimizer", "mu", "step", "loss", "val acc"]
    _table("runs", columns, [_run_row(run) for run in page.items], page.total)


def _worker_row(worker: WorkerPublic) -> list[str]:
    return [
        worker.id,
        worker.device,
        ",".join(worker.frameworks),
        _dash(worker.current_job_id),
        _ago(worker.last_seen_at),
        _ago(worker.first_seen_at),
    ]


@click.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@connection_options
def workers(limit: int, url: str | None, token: str | None) -> None:
    """List the workers the service has seen, most recent first."""
    with api(url, token) as client:
        page = client.list_workers(limit=limit)
    columns = ["id", "device", "frameworks", "job", "last seen", "first seen"]
    _table("workers", columns, [_worker_row(worker) for worker in page.items], page.total)
