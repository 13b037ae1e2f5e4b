"""A worker's entry points: `momentum.toml` read, checked, and turned into a child's argv.

    [entry_points.train]
    command = ["python", "train.py"]
    total_param = "steps"
    [entry_points.train.params]
    momentum = { type = "float", default = 0.9, min = 0.0, max = 1.0 }

The file is read once, at the worker's start; anything wrong in it stops the worker
with a message naming the file, the entry point and the field, rather than failing the
first job that needs it. A child's argv is `command` plus one `--NAME=VALUE` element per
param, except a param the command names as `{NAME}`, whose value is put there instead.
Values are written as JSON writes them (`true`/`false`, `0.9`, `1e-05`), which argparse
`type=float`/`int` reads, and which `json.loads` reads for bools.

A library module: no click, no CLI imports.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from momentum.contract.entry_points import (
    ENTRY_POINT_PATTERN,
    EntryPointDefinition,
    EntryPointRegistration,
)
from momentum.contract.jobs import EntryPointRef

FILE_NAME = "momentum.toml"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class EntryPointFileError(ValueError):
    """momentum.toml is malformed; the message names the file, entry point and field."""


@dataclass(frozen=True)
class EntryPoint:
    """One declared entry point, with where its command runs."""

    name: str
    definition: EntryPointDefinition
    directory: Path  # the file's directory: the child's working directory
    digest: str

    def ref(self) -> EntryPointRef:
        return EntryPointRef(name=self.name, digest=self.digest)

    def registration(self, worker_id: str | None) -> EntryPointRegistration:
        fields = self.definition.model_dump()
        return EntryPointRegistration(**fields, digest=self.digest, worker_id=worker_id)

    def argv(self, params: Mapping[str, object]) -> list[str]:
        return command_argv(self.definition.command, params)


def load_entry_points(path: Path) -> dict[str, EntryPoint]:
    """The entry points `path` declares (none when it declares none)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EntryPointFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EntryPointFileError(f"{path}: not valid TOML: {exc}") from None
    tables = data.get("entry_points", {})
    if not isinstance(tables, dict):
        raise EntryPointFileError(f"{path}: entry_points must be a table of [entry_points.NAME]")
    directory = path.resolve().parent
    return {name: _entry_point(path, directory, name, table) for name, table in tables.items()}


def find_entry_points(given: Path | None, working_directory: Path) -> dict[str, EntryPoint]:
    """`--entry-points PATH` (which must exist), else ./momentum.toml if there is one."""
    if given is not None:
        return load_entry_points(given)
    default = working_directory / FILE_NAME
    return load_entry_points(default) if default.is_file() else {}


def _entry_point(path: Path, directory: Path, name: str, table: object) -> EntryPoint:
    where = f"{path}: entry point {name!r}"
    if not re.fullmatch(ENTRY_POINT_PATTERN, name):
        raise EntryPointFileError(
            f"{where}: the name must be 1-100 letters, digits or `_ . -`, "
            "not starting with `.` or `-`"
        )
    if not isinstance(table, dict):
        raise EntryPointFileError(f"{where}: must be a table ([entry_points.{name}])")
    try:
        definition = EntryPointDefinition.model_validate(table)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = _field(error["loc"], str(error["msg"]))
        raise EntryPointFileError(f"{where}, field {field}: {error['msg']}") from None
    return EntryPoint(name, definition, directory, definition.compute_digest())


def _field(loc: tuple[int | str, ...], message: str) -> str:
    """Where in the entry point's table the error is, as the file spells it."""
    if not loc:  # a check of the whole definition: only total_param's is one
        return "total_param" if "total_param" in message else "(the entry point)"
    head, *rest = (str(part) for part in loc)
    if head == "command" and rest:
        return f"command[{rest[0]}]"
    return ".".join([head, *rest])


def format_value(value: object) -> str:
    """A param as one argv value: JSON's spelling for bools and numbers, strings as is."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)  # the shortest exact spelling: 0.9, 1e-05
    return json.dumps(value)


def command_argv(command: list[str], params: Mapping[str, object]) -> list[str]:
    """`command` with `{NAME}` filled in, plus `--NAME=VALUE` for every param not used so."""
    placed: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            return match.group(0)  # braces that name no param stay as written
        placed.add(name)
        return format_value(params[name])

    argv = [PLACEHOLDER.sub(fill, part) for part in command]
    extra = [f"--{name}={format_value(v)}" for name, v in params.items() if name not in placed]
    return argv + extra
