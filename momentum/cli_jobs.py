"""Commands for people: `submit`, `sweep`, `jobs` (with `cancel`, `retry`), `runs`, `workers`.

Each is one or two calls through `MomentumClient`, shown as a rich table. An error from
the service is shown as the contract's message (with its detail items) and exits 1.
The training options are the ones `momentum train` has (`training_options`), so a job
is described the same way whether it is trained here or on a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson
from pydantic import TypeAdapter, ValidationError

from momentum.cli_train import parse_tags, training_options
from momentum.contract.training import TrainingConfig

if TYPE_CHECKING:
    from momentum.client import MomentumClient

F = TypeVar("F", bound=Callable[..., Any])
STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
WIDE = 200  # columns when the output is not a terminal
WRAPPING = frozenset({"name", "config", "error"})
STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


def connection_options(command: F) -> F:
    command = click.option("--token", help="Bearer token [default: $MOMENTUM_TOKEN].")(command)
    return click.option(
        "--url", help="Service URL [default: $MOMENTUM_URL or http://127.0.0.1:8000]."
    )(command)


@contextmanager
def api(url: str | None, token: str | None) -> Iterator[MomentumClient]:
    """A client whose errors become click errors: the contract's message, exit code 1."""
    import httpx

    from momentum.client import MomentumAPIError, MomentumClient

    client = MomentumClient(url, token)
    try:
        yield client
    except MomentumAPIError as exc:
        lines = [exc.message]
        for item in exc.detail:
            if isinstance(item, dict) and "loc" in item:
                lines.append(f"  {'.'.join(str(p) for p in item['loc'])}: {item.get('msg', '')}")
        raise click.ClickException("\n".join(lines)) from exc
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {client.url}: {exc}") from exc
    finally:
        client.close()


def _post(client: MomentumClient, path: str, body: dict[str, Any] | None = None) -> Any:
    content = orjson.dumps(body) if body is not None else None
    return client.request("POST", path, content=content).json()


def _get(client: MomentumClient, path: str, **params: Any) -> Any:
    given = {name: value for name, value in params.items() if value is not None}
    return client.request("GET", path, params=given).json()


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


@click.command()
@training_options
@connection_options
@click.option("--name", help="Job (and run) name [default: job-<id>].")
@click.option("--project", default="default", show_default=True)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE; repeatable.")
@click.option("--max-attempts", type=click.IntRange(1, 100), help="Claims before giving up.")
def submit(
    url: str | None,
    token: str | None,
    name: str | None,
    project: str,
    tags: tuple[str, ...],
    max_attempts: int | None,
    **fields: Any,
) -> None:
    """Queue one training job for a worker; prints its id and its run's id."""
    body = {"config": _given(fields), "project": project, "tags": parse_tags(tags)}
    body.update(_given({"name": name, "max_attempts": max_attempts}))
    with api(url, token) as client:
        job = _post(client, "/jobs", body)
    click.echo(f"job {job['id']} {job['status']} (run {job['run_id']})")


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
@training_options
@connection_options
@click.option("--name", default="sweep", show_default=True, help="Sweep name.")
@click.option("--project", default="default", show_default=True)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE; repeatable.")
def sweep(
    grids: tuple[str, ...],
    url: str | None,
    token: str | None,
    name: str,
    project: str,
    tags: tuple[str, ...],
    **fields: Any,
) -> None:
    """Queue one job per combination of the grids, on top of the training options given."""
    body = {
        "name": name,
        "base": _given(fields),
        "grid": parse_grid(grids),
        "project": project,
        "tags": parse_tags(tags),
    }
    with api(url, token) as client:
        created = _post(client, "/sweeps", body)
    ids = created["job_ids"]
    click.echo(f"sweep {created['id']}: {len(ids)} jobs queued ({_id_range(ids)})")


def _id_range(ids: list[int]) -> str:
    if not ids:
        return "none"
    return f"job {ids[0]}" if len(ids) == 1 else f"jobs {min(ids)}-{max(ids)}"


def _ago(stamp: str | None) -> str:
    if not stamp:
        return "-"
    at = datetime.fromisoformat(stamp)
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - at).total_seconds()
    if seconds < 120:
        return f"{max(0, round(seconds))}s ago"
    if seconds < 7200:
        return f"{round(seconds / 60)}m ago"
    return f"{round(seconds / 3600)}h ago"


def _table(title: str, columns: list[str], rows: list[list[str]], total: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} ({len(rows)} of {total})", title_justify="left")
    for column in columns:
        # Long free text wraps; ids, statuses and numbers stay on one line.
        table.add_column(column, no_wrap=column not in WRAPPING, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, WIDE)  # piped or logged: wrap nothing needlessly
    console.print(table)


def _status(status: str) -> str:
    style = STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _job_row(job: dict[str, Any]) -> list[str]:
    config = job["config"]
    # A finished job's summary has the final count; heartbeats report only until then.
    step = (job["summary"] or {}).get("steps_done", job["progress_step"])
    progress = f"{step}/{config['steps']}" if step is not None else "-"
    return [
        str(job["id"]),
        _dash(job["name"]),
        _status(job["status"]),
        f"{config['optimizer']} mu={config['momentum']:g} {config['dataset']}/{config['model']}",
        progress,
        f"{job['attempts']}/{job['max_attempts']}",
        _dash(job["lease_owner"]),
        _dash(job["run_id"]),
        (job["error"] or "")[:60],
    ]


@click.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs with this status.")
@click.option("--sweep", "sweep_id", type=int, help="Only the jobs of this sweep.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
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
    """List jobs, newest first (`jobs cancel ID`, `jobs retry ID` act on one)."""
    if ctx.invoked_subcommand is not None:
        return
    with api(url, token) as client:
        page = _get(client, "/jobs", status=status, sweep_id=sweep_id, limit=limit)
    columns = ["id", "name", "status", "config", "step", "attempts", "worker", "run", "error"]
    _table("jobs", columns, [_job_row(job) for job in page["items"]], page["total"])


def _job_action(action: str) -> click.Command:
    @click.command(action, help=f"{action.capitalize()} job ID.")
    @click.argument("job_id", type=int)
    @connection_options
    def command(job_id: int, url: str | None, token: str | None) -> None:
        with api(url, token) as client:
            job = _post(client, f"/jobs/{job_id}/{action}")
        stopping = job["status"] == "running" and job["cancel_requested"]
        note = " (cancel requested: its worker stops within seconds)" if stopping else ""
        click.echo(f"job {job['id']} {job['status']}{note}")

    return command


jobs.add_command(_job_action("cancel"))
jobs.add_command(_job_action("retry"))


def _latest(run: dict[str, Any], key: str) -> str:
    value = run["latest"].get(key)
    return f"{value:.4g}" if isinstance(value, float) else _dash(value)


@click.command()
@click.option("--project", help="Only runs of this project.")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@click.option("--sweep", "sweep_id", type=int, help="Only the runs of this sweep.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@connection_options
def runs(
    project: str | None,
    status: str | None,
    sweep_id: int | None,
    limit: int,
    url: str | None,
    token: str | None,
) -> None:
    """List runs, newest first, with their last step and latest loss."""
    with api(url, token) as client:
        page = _get(client, "/runs", project=project, status=status, sweep_id=sweep_id, limit=limit)
    rows = [
        [
            str(run["id"]),
            run["name"],
            run["project"],
            _status(run["status"]) + (" [red](diverged)[/]" if run["diverged"] else ""),
            _dash(run["optimizer"]),
            _dash(run["momentum"]),
            _dash(run["last_step"]),
            _latest(run, "loss"),
            _latest(run, "val_accuracy"),
        ]
        for run in page["items"]
    ]
    columns = ["id", "name", "project", "status", "optimizer", "mu", "step", "loss", "val acc"]
    _table("runs", columns, rows, page["total"])


@click.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@connection_options
def workers(limit: int, url: str | None, token: str | None) -> None:
    """List the workers the service has seen, most recent first."""
    with api(url, token) as client:
        page = _get(client, "/workers", limit=limit)
    rows = [
        [
            w["id"],
            w["device"],
            ",".join(w["frameworks"]),
            _dash(w["current_job_id"]),
            _ago(w["last_seen_at"]),
            _ago(w["first_seen_at"]),
        ]
        for w in page["items"]
    ]
    columns = ["id", "device", "frameworks", "job", "last seen", "first seen"]
    _table("workers", columns, rows, page["total"])
