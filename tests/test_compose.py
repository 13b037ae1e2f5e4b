"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Every command a container runs must be a real `momentum` invocation that the real CLI
parses, so a renamed command or option breaks this test instead of a deployment.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from momentum.cli import main

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def parse(argv: list[str]) -> list[str]:
    """Parse `momentum ...` as the CLI would, without running it; returns the command path.

    Raises click.UsageError (or a subclass) for an unknown command or a bad option.
    """
    assert argv[0] == "momentum", f"not a momentum command: {argv}"
    command: click.Command = main
    ctx = click.Context(main, info_name="momentum")
    args, path = list(argv[1:]), []
    while isinstance(command, click.Group):
        if not args or args[0].startswith("-"):
            raise click.UsageError(f"{' '.join(argv)}: names no subcommand", ctx)
        name, args = args[0], args[1:]
        found = command.get_command(ctx, name)
        if found is None:
            raise click.UsageError(f"no such command {name!r}", ctx)
        command, path = found, [*path, name]
        if isinstance(command, click.Group) and args and not args[0].startswith("-"):
            ctx = click.Context(command, info_name=name, parent=ctx)
            continue
        with command.make_context(name, list(args), parent=ctx):
            return path
    raise AssertionError("unreachable")


def argv_of(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def test_every_built_service_runs_a_momentum_command_that_parses() -> None:
    services = compose()["services"]
    ours = {name: s for name, s in services.items() if "build" in s}
    assert set(ours) == {"migrate", "service", "worker"}
    paths = {name: parse(argv_of(service["command"])) for name, service in ours.items()}
    assert paths == {"migrate": ["db", "upgrade"], "service": ["serve"], "worker": ["worker"]}


def test_the_parser_rejects_what_the_cli_would() -> None:
    with pytest.raises(click.UsageError):
        parse(["momentum", "worker", "--no-such-option"])
    with pytest.raises(click.UsageError):
        parse(["momentum", "wrker"])
    with pytest.raises(click.BadParameter):
        parse(["momentum", "worker", "--device", "tpu"])
    assert parse(["momentum", "jobs", "cancel", "3"]) == ["jobs", "cancel"]


def test_the_shape_postgres_migrate_service_workers() -> None:
    services = compose()["services"]
    postgres, migrate = services["postgres"], services["migrate"]
    service, worker = services["service"], services["worker"]
    assert "pg_isready" in " ".join(argv_of(postgres["healthcheck"]["test"]))
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert worker["depends_on"] == {"service": {"condition": "service_healthy"}}
    url = migrate["environment"]["MOMENTUM_DATABASE_URL"]
    assert (
        url.startswith("postgresql+psycopg://")
        and service["environment"]["MOMENTUM_DATABASE_URL"] == url
    )
    # Workers scale: nothing in them may pin one container (a fixed name or host port).
    assert "container_name" not in worker and "ports" not in worker
    assert argv_of(worker["command"])[argv_of(worker["command"]).index("--url") + 1] == (
        "http://service:8000"
    )
    assert service["build"]["target"] == migrate["build"]["target"] == "service"
    assert worker["build"]["target"] == "worker"


def _stages() -> dict[str, str]:
    """Each Dockerfile stage's text, by name."""
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^FROM \S+ AS (\S+)\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_service_image_has_no_torch_and_every_image_command_parses() -> None:
    stages = _stages()
    assert "torch" not in stages["service"] and "[trainer]" not in stages["service"]
    assert "torch" in stages["worker"]
    for stage in ("service", "worker"):
        cmd = re.search(r"^CMD (\[.*\])$", stages[stage], flags=re.MULTILINE)
        assert cmd is not None, f"the {stage} stage has no CMD"
        argv = yaml.safe_load(cmd.group(1))
        if argv[:2] == ["sh", "-c"]:
            commands = [argv_of(part) for part in argv[2].split("&&")]
        else:
            commands = [argv]
        for command in commands:
            parse(command)
