"""`momentum train` (train once here, in any framework) and `momentum sync` (replay spools).

The options of `train` are generated from `TrainingConfig`'s fields, so every field has
one and a new field gets one for free; the config validates them, and its errors come
back as usage errors naming the option. The trainer of the chosen framework (torch,
NumPy, Keras) and the HTTP client are imported inside the commands, so `momentum serve`
never loads them.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import click
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from momentum.cli_common import F, connection_options
from momentum.contract.training import TrainingConfig
from momentum.training import ReportingSink

if TYPE_CHECKING:
    from momentum.client import Run
    from trainer.loop import TrainResult

# Help for the fields whose description is written for API readers or missing.
HELP = {
    "framework": "Training framework: torch, numpy (update rules by hand) or keras (fit).",
    "optimizer": "Update rule; 'momentum' is the hand-written classical rule.",
    "momentum": "Momentum coefficient mu (beta1 for adam).",
    "lr": "Learning rate.",
    "weight_decay": "L2 weight decay.",
    "dataset": "Offline dataset.",
    "model": "Model architecture.",
    "steps": "Training steps.",
    "batch_size": "Examples per step.",
    "seed": "Random seed: the same seed trains the same run.",
    "log_every": "Log training metrics every N steps.",
    "eval_every": "Evaluate on the validation split every N steps.",
    "stop_on_divergence": "Stop at the first NaN/Inf loss (the run still succeeds).",
    "device": "Where to train; auto picks CUDA when available.",
}
# Defaults that depend on other fields (TrainingConfig fills them in).
DEFAULT_TEXT = {"model": "linear for ravine, mlp otherwise"}


def _option_for(name: str, field: FieldInfo) -> Callable[[F], F]:
    """A click option for one TrainingConfig field; its default is None ("not given")."""
    flag = "--" + name.replace("_", "-")
    annotation = field.annotation
    if isinstance(annotation, types.UnionType):  # `int | None`: the option takes an int
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    default = DEFAULT_TEXT.get(name, field.default)
    help_text = f"{HELP.get(name) or field.description or name} [default: {default}]"
    if annotation is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)
    kind: Any = annotation
    if get_origin(annotation) is Literal:
        kind = click.Choice([str(choice) for choice in get_args(annotation)])
    return click.option(flag, name, type=kind, default=None, help=help_text)


def training_options(command: F) -> F:
    """Decorate `command` with one option per TrainingConfig field, in declaration order."""
    for name, field in reversed(TrainingConfig.model_fields.items()):
        command = _option_for(name, field)(command)
    return command


def build_config(given: Mapping[str, Any]) -> TrainingConfig:
    """A validated config from the options given; errors name the options at fault."""
    try:
        return TrainingConfig(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            fields = [str(part) for part in error["loc"]]
            where = ", ".join("--" + f.replace("_", "-") for f in fields)
            problems.append(f"{where}: {message}" if where else message)
        message = "invalid training configuration:\n  " + "\n  ".join(problems)
        raise click.UsageError(message) from None


def run_options(name_help: str) -> Callable[[F], F]:
    """`--name`, `--project` and `--tag` of the run that training (here or by a job) writes."""

    def decorate(command: F) -> F:
        command = click.option("--tag", "tags", multiple=True, help="KEY=VALUE; repeatable.")(
            command
        )
        command = click.option("--project", default="default", show_default=True)(command)
        return click.option("--name", help=name_help)(command)

    return decorate


def parse_tags(pairs: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = value
    return tags


@click.command()
@training_options
@connection_options
@run_options("Run name [default: from optimizer, momentum, dataset, model].")
@click.option("--threads", type=click.IntRange(min=1), help="torch CPU threads.")
@click.option("--progress/--no-progress", default=True, help="Show the progress bar.")
def train(
    url: str | None,
    token: str | None,
    name: str | None,
    project: str,
    tags: tuple[str, ...],
    threads: int | None,
    progress: bool,
    **fields: Any,
) -> None:
    """Train once on this machine, stream the metrics to the service, print the run id."""
    config = build_config(fields)
    run_tags = parse_tags(tags)
    from momentum.client import Run

    train_loop = _trainer(config.framework)
    if threads is not None and config.framework != "numpy":
        import torch  # Keras runs on torch here, so this bounds its threads too

        torch.set_num_threads(threads)
    name = name or f"{config.optimizer}-mu{config.momentum:g}-{config.dataset}-{config.model}"
    run = Run(name, config.model_dump(), project=project, tags=run_tags, url=url, token=token)
    with run, _progress_bar(progress) as bar:
        task = bar.add_task(name, total=config.steps, loss="-") if bar is not None else None
        result = train_loop(config, ReportingSink(run, bar, task))
        if bar is not None and task is not None:
            bar.update(task, completed=result.steps_done, loss=f"{result.final_loss:.4g}")
        if result.diverged:
            run.update(diverged=True)
    _report(run, result)


def _trainer(framework: str) -> Any:
    """The framework's `train`; a missing package is a usage error that says what to install."""
    from trainer.frameworks import available_frameworks, trainer_for

    if framework not in available_frameworks():
        extra = "keras" if framework == "keras" else "trainer"
        raise click.UsageError(
            f"--framework {framework}: it is not installed here; "
            f"pip install 'momentum-monitor[{extra}]'"
        )
    return trainer_for(framework)


def training_progress(console: Any, label: str) -> Any:
    """The training bar of `train` and `worker`: label, bar, steps, live loss, times."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _progress_bar(show: bool) -> Any:
    """A rich progress bar on stderr (stdout keeps the results), or a no-op context."""
    import contextlib

    if not show:
        return contextlib.nullcontext(None)
    from rich.console import Console

    return training_progress(Console(stderr=True), "[bold]{task.description}")


def _report(run: Run, result: TrainResult) -> None:
    accuracy = result.best_val_accuracy
    summary = f"{result.steps_done} steps, final loss {result.final_loss:.6g}"
    summary += f", best val accuracy {accuracy:.4f}" if accuracy is not None else ""
    summary += ", diverged" if result.diverged else ""
    click.echo(summary)
    if run.unsent_path is not None:
        click.echo(
            f"metrics not fully delivered; saved in {run.unsent_path}\n"
            f"replay them with: momentum sync {run.unsent_path}",
            err=True,
        )
    if run.id is None:
        raise click.ClickException("the service never answered: the run was not created yet")
    click.echo(f"run id: {run.id}")
    if run.unsent_path is not None:
        sys.exit(1)


@click.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@connection_options
@click.option("--keep", is_flag=True, help="Keep the files after a successful replay.")
def sync(paths: tuple[Path, ...], url: str | None, token: str | None, keep: bool) -> None:
    """Replay spool files (left by runs that could not reach the service) in order."""
    import httpx

    from momentum.client import MomentumAPIError, MomentumClient, sync_spool
    from momentum.client.spool import SpoolFormatError

    with MomentumClient(url, token) as client:
        for path in paths:
            try:
                result = sync_spool(path, client, delete=not keep)
            except (MomentumAPIError, SpoolFormatError, OSError) as exc:
                raise click.ClickException(f"{path}: {exc} (the file is kept)") from exc
            except httpx.HTTPError as exc:
                raise click.ClickException(f"{path}: cannot reach {client.url}: {exc}") from exc
            click.echo(
                f"{path}: run id {result.run_id}: "
                f"{result.points} points, {result.updates} updates replayed"
            )
