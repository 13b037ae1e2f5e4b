"""`momentum import tensorboard LOGDIR`: each directory holding event files becomes a
run, named by its path relative to LOGDIR (LOGDIR itself by its own name).

Idempotent: a run is found again by its `external_id`, made from the project and the
directory's absolute path (the service returns the existing run), and each series sends
only the points after the highest step the run holds for that key. Event files only
grow, so a re-import of an unchanged directory sends nothing, and one that grew sends
only what is new. The run also carries the tag `momentum.import.source`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from momentum.contract import Status
from momentum.importers.sending import last_steps, new_points, send_points
from momentum.importers.tensorboard_reader import RunDirectory

if TYPE_CHECKING:
    from momentum.client import MomentumClient

SOURCE_TAG = "momentum.import.source"


@dataclass(frozen=True)
class ImportedRun:
    name: str
    run_id: int
    created: bool
    points: int  # sent this time


def run_name(logdir: Path, directory: Path) -> str:
    relative = directory.relative_to(logdir).as_posix()
    return logdir.name or str(logdir) if relative == "." else relative


def external_id(project: str, directory: Path) -> str:
    """The same run for the same directory imported into the same project."""
    digest = hashlib.sha256(f"{project}\0{directory}".encode()).hexdigest()[:40]
    return f"tensorboard-{digest}"


def import_run_directory(
    client: MomentumClient, logdir: Path, directory: RunDirectory, project: str
) -> ImportedRun:
    name = run_name(logdir, directory.path)
    source = f"tensorboard:{directory.path}"[:250]
    run, created = client.create_run_raw(
        _create_body(name, project, directory, source, external_id(project, directory.path))
    )
    merged = {**run.params, **directory.params}
    if not created and merged != run.params:
        client.update_run(run.id, params=merged)
    held = {} if created else last_steps(client, run.id)
    sent = send_points(client, run.id, new_points(directory.series, held))
    return ImportedRun(name, run.id, created, sent)


def _create_body(name: str, project: str, directory: RunDirectory, source: str, key: str) -> bytes:
    from momentum.contract import RunCreate

    body = RunCreate(
        name=name,
        project=project,
        params=directory.params,
        tags={SOURCE_TAG: source},
        external_id=key,
        status=Status.succeeded,
    )
    return body.model_dump_json(exclude_none=True).encode()
