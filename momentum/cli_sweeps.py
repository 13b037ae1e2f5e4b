"""`momentum sweep` (a grid, or a random or TPE search with early stopping) and
`momentum sweeps` (list them; `sweeps show ID`: strategy, budget spent, best, rungs and
the runs stopped early with their reasons).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from pydantic import TypeAdapter, ValidationError

from momentum.cli_common import api, connection_options, print_table, request_body
from momentum.cli_entry_points import check_one_kind, entry_point_options, parse_params
from momentum.cli_entry_points import parse_param_grid as parse_entry_grid
from momentum.cli_search import (
    RULES,
    STRATEGIES,
    early_stop_body,
    parse_objective,
    parse_space,
    search_fields,
)
from momentum.cli_train import parse_tags, training_options
from momentum.contract.training import TrainingConfig

if TYPE_CHECKING:
    from momentum.client import MomentumClient
    from momentum.contract import JobPublic, SweepPublic

PAGE = 1000  # the API's largest page


def given(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


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


def search_options(command: Any) -> Any:
    """`--strategy`, `--space`, `--max-jobs`, `--parallelism`, `--objective`,
    `--early-stop`, `--min-step`, `--reduction-factor`."""
    options = [
        click.option("--search-seed", type=click.IntRange(0, 2**31 - 1),
                     help="Seeds the sampler, to replay a search [default: the sweep id]."),
        click.option("--reduction-factor", type=click.IntRange(2, 100),
                     help="Rungs at MIN_STEP * N^k; ASHA keeps the top 1/N at each [default: 3]."),
        click.option("--min-step", type=click.IntRange(min=1),
                     help="The first rung, where early stopping first judges [default: 100]."),
        click.option("--early-stop", type=click.Choice(RULES),
                     help="Stop losing runs early (judged on the objective's key)."),
        click.option("--objective", help="KEY[:min|max[:final|best|tail_mean]] "
                     "[default: loss:min:tail_mean; *accuracy keys are maximised]."),
        click.option("--parallelism", type=click.IntRange(min=1),
                     help="Jobs queued or running at once [service default: 4]."),
        click.option("--max-jobs", type=click.IntRange(min=1),
                     help="The budget: trials to create (random and tpe)."),
        click.option("--space", "spaces", multiple=True,
                     help="NAME=LOW:HIGH[:log][:int] or NAME=choice:A,B,...; repeatable."),
        click.option("--strategy", type=click.Choice(STRATEGIES), default="grid",
                     show_default=True, help="grid: every combination; random or tpe: "
                     "--max-jobs points sampled from --space."),
    ]  # fmt: skip
    for option in options:
        command = option(command)
    return command


@click.command()
@click.option("--grid", "grids", multiple=True, help="FIELD=V1,V2,...; repeatable.")
@search_options
@entry_point_options
@training_options
@connection_options
@click.option("--name", default="sweep", show_default=True, help="Sweep name.")
@click.option("--project", default="default", show_default=True)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE; repeatable.")
def sweep(
    entry_point: str | None,
    params: tuple[str, ...],
    url: str | None,
    token: str | None,
    name: str,
    project: str,
    tags: tuple[str, ...],
    **options: Any,
) -> None:
    """Queue a sweep on top of the training options (or an entry point's --param values):
    every combination of the grids, or a random or TPE search over --space."""
    from momentum.contract import SweepCreate

    training = {field: options.pop(field) for field in TrainingConfig.model_fields}
    check_one_kind(entry_point, params, training)
    body = {"name": name, "project": project, "tags": parse_tags(tags)}
    body.update(work_fields(entry_point, params, training, options))
    body.update(goal_fields(options))
    with api(url, token) as client:
        created = client.create_sweep(request_body(SweepCreate, body))
    click.echo(describe_created(created))


def work_fields(
    entry_point: str | None,
    params: tuple[str, ...],
    training: dict[str, Any],
    options: dict[str, Any],
) -> dict[str, Any]:
    """What the jobs run (base, entry point) and how points are picked (grid, space)."""
    budget = (options["strategy"], options["max_jobs"], options["parallelism"])
    if entry_point is None:
        types = {field: info.annotation for field, info in TrainingConfig.model_fields.items()}
        space = parse_space(options["spaces"], types)
        picked = search_fields(budget[0], space, parse_grid(options["grids"]), *budget[1:])
        return {"base": given(training), **picked}
    space = parse_space(options["spaces"], None)
    picked = search_fields(budget[0], space, parse_entry_grid(options["grids"]), *budget[1:])
    return {"entry_point": entry_point, "base": parse_params(params), **picked}


def goal_fields(options: dict[str, Any]) -> dict[str, Any]:
    """`objective` and `early_stop`, when asked for."""
    spec = options["objective"]
    objective = parse_objective(spec) if spec is not None else None
    stopping = early_stop_body(
        options["early_stop"], objective, options["min_step"], options["reduction_factor"]
    )
    seed = options["search_seed"]
    return given({"objective": objective, "early_stop": stopping, "search_seed": seed})


def describe_created(created: SweepPublic) -> str:
    ids = created.job_ids
    if created.strategy == "grid":
        return f"sweep {created.id}: {len(ids)} jobs queued ({id_range(ids)})"
    return (
        f"sweep {created.id}: {created.strategy} search, budget {created.max_jobs} jobs; "
        f"{len(ids)} queued so far ({id_range(ids)})"
    )


def id_range(ids: list[int]) -> str:
    if not ids:
        return "none"
    return f"job {ids[0]}" if len(ids) == 1 else f"jobs {min(ids)}-{max(ids)}"


@click.group(invoke_without_command=True)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@connection_options
@click.pass_context
def sweeps(ctx: click.Context, limit: int, url: str | None, token: str | None) -> None:
    """List sweeps, newest first (`sweeps show ID`: its search, best, rungs, stops)."""
    if ctx.invoked_subcommand is not None:
        return
    with api(url, token) as client:
        page = client.list_sweeps(limit=limit)
    columns = ["id", "name", "strategy", "status", "trials", "steps", "best"]
    rows = [_sweep_row(item.model_dump(mode="json")) for item in page.items]
    print_table(f"sweeps ({len(rows)} of {page.total})", columns, rows)


def _sweep_row(shown: dict[str, Any]) -> list[str]:
    best = shown.get("best")
    return [
        str(shown["id"]),
        escape(shown["name"]),
        shown.get("strategy") or "grid",
        shown["status"],
        _budget(shown),
        f"{shown.get('steps_spent') or 0:,}",
        "-" if not best else number(best.get("objective")),
    ]


@sweeps.command("show")
@click.argument("sweep_id", type=int)
@connection_options
def show(sweep_id: int, url: str | None, token: str | None) -> None:
    """Print sweep ID: strategy, objective, budget spent, best, rungs, stopped runs."""
    with api(url, token) as client:
        shown = client.get_sweep(sweep_id).model_dump(mode="json")
        stopped, total = stopped_jobs(client, sweep_id)
    for line in describe_sweep(shown):
        click.echo(line)
    rungs = shown.get("rungs") or []
    if rungs:
        columns = ["step", "cutoff", "reached", "stopped"]
        rows = [[str(r["step"]), number(r.get("cutoff")), str(r["reached"]), str(r["stopped"])]
                for r in rungs]  # fmt: skip
        print_table("rungs", columns, rows)
    if stopped:
        columns = ["job", "run", "step", "rule", "reason"]
        print_table(
            f"stopped early ({len(stopped)} of {total} jobs)",
            columns,
            [_stopped_row(job) for job in stopped],
            wrapping=frozenset({"reason"}),
        )


def stopped_jobs(client: MomentumClient, sweep_id: int) -> tuple[list[JobPublic], int]:
    """The sweep's jobs its rule (or a person) stopped early, oldest first, and how many
    jobs it has (its first 1000 are looked at: the most one sweep may create by default
    is 256)."""
    page = client.list_jobs(sweep_id=sweep_id, limit=PAGE)
    stopped = [job for job in page.items if job.early_stopped is not None]
    stopped.sort(key=lambda job: job.id)
    return stopped, page.total


def _stopped_row(job: JobPublic) -> list[str]:
    assert job.early_stopped is not None
    reason = job.early_stopped
    return [str(job.id), dash(job.run_id), str(reason.step), reason.rule, escape(reason.reason)]


def describe_sweep(shown: dict[str, Any]) -> list[str]:
    """The sweep's header lines: what it searches, for what, and how far it got."""
    strategy = shown.get("strategy") or "grid"
    lines = [f"sweep {shown['id']} {shown['name']!r}: {strategy}, {shown['status']}"]
    objective = shown.get("objective")
    if objective:
        summary = objective.get("summary") or "tail_mean"
        lines.append(f"objective:  {objective['key']} ({objective['mode']}, {summary})")
    if shown.get("space"):
        lines.append("space:      " + "; ".join(
            describe_dimension(name, spec) for name, spec in shown["space"].items()))  # fmt: skip
    lines.append(f"early stop: {describe_early_stop(shown.get('early_stop'))}")
    parallel = shown.get("parallelism")
    at_once = f"; {parallel} at once" if parallel else ""
    steps = shown.get("steps_spent") or 0
    lines.append(f"budget:     {_budget(shown)} trials, {steps:,} steps spent{at_once}")
    lines.append(f"best:       {describe_best(shown.get('best'), objective)}")
    return lines


def _budget(shown: dict[str, Any]) -> str:
    trials = shown.get("trials")
    trials = len(shown["job_ids"]) if trials is None else trials
    limit = shown.get("max_jobs")
    return f"{trials}/{limit}" if limit else str(trials)


def describe_dimension(name: str, spec: dict[str, Any]) -> str:
    """`lr float [0.001, 1] log`, `optimizer in {sgd_momentum, nesterov}`."""
    if spec.get("type") == "choice":
        return f"{name} in {{{', '.join(str(c) for c in spec.get('choices') or [])}}}"
    scale = " log" if spec.get("log") else ""
    return (
        f"{name} {spec.get('type')} [{number(spec.get('low'))}, {number(spec.get('high'))}]{scale}"
    )


def describe_early_stop(rule: dict[str, Any] | None) -> str:
    if not rule:
        return "none"
    on = f" on {rule['key']} ({rule.get('mode', 'min')})" if rule.get("key") else ""
    factor = rule.get("reduction_factor")
    rungs = f"rungs at {rule.get('min_step')} x {factor}^k"
    if rule.get("rule") == "asha":
        return f"asha{on}: {rungs}, the top 1/{factor} at each rung go on"
    return f"median{on}: {rungs}, a run worse than the median there stops"


def describe_best(best: dict[str, Any] | None, objective: dict[str, Any] | None) -> str:
    if not best:
        return "none yet"
    key = objective["key"] if objective else "objective"
    params = " ".join(
        f"{name}={number(value)}" for name, value in (best.get("params") or {}).items()
    )
    where = f"job {best.get('job_id')}, run {best.get('run_id')}"
    return f"{key} {number(best.get('objective'))} ({where}) {params}".rstrip()


def number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return dash(value)


def dash(value: Any) -> str:
    return "-" if value is None else str(value)


def escape(text: str) -> str:
    """Names and reasons are text, not rich markup (`[red]` stays as typed)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
