"""Reading TensorBoard run directories with the `tensorboard` package's own event reader
(no TensorFlow): every scalar series and the hparams of each directory holding event
files.

Scalars come in two encodings: `simple_value` (torch's writer, TF1) and a rank-0 tensor
whose tag's metadata names the `scalars` plugin (TF2, torch's `new_style=True`); the
reader's `data_compat` step turns the first into the second, and both are read here.
The metadata comes with a tag's first value only, so a file's scalar tags are tracked as
it is read. Hparams are the hparams plugin's `session_start_info` (torch's `add_hparams`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from momentum.importers import metric_key, require

EVENT_FILE_GLOB = "events.out.tfevents.*"
Point = tuple[int, float, float]  # step, value, wall time (seconds since the epoch)


@dataclass
class RunDirectory:
    """One directory's scalars, by key, and its hparams."""

    path: Path
    series: dict[str, list[Point]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def points(self) -> int:
        return sum(len(points) for points in self.series.values())


def require_reader() -> None:
    """MissingExtra unless TensorBoard's event reader can be imported."""
    require("tensorboard.backend.event_processing.event_file_loader", "TensorBoard")


def run_directories(logdir: Path) -> list[Path]:
    """Every directory under `logdir` (itself included) holding event files, sorted."""
    found = {path.parent for path in logdir.rglob(EVENT_FILE_GLOB) if path.is_file()}
    return sorted(found)


def event_files(directory: Path) -> list[Path]:
    """The directory's own event files in the order they were written (TensorBoard's
    file names begin with the writer's start time)."""
    return sorted(path for path in directory.glob(EVENT_FILE_GLOB) if path.is_file())


def read_run_directory(directory: Path) -> RunDirectory:
    run = RunDirectory(directory)
    for path in event_files(directory):
        for tag, step, value, wall_time in _scalars(path, run.params):
            run.series.setdefault(metric_key(tag), []).append((step, value, wall_time))
    return run


def _scalars(path: Path, params: dict[str, Any]) -> Iterator[tuple[str, int, float, float]]:
    """(tag, step, value, wall time) of each scalar in one event file; hparams go into
    `params` on the way."""
    loader = require("tensorboard.backend.event_processing.event_file_loader", "TensorBoard")
    scalar_tags: set[str] = set()
    for event in loader.EventFileLoader(str(path)).Load():
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            plugin = value.metadata.plugin_data.plugin_name
            if plugin == "hparams":
                params.update(_hparams(value))
                continue
            if plugin == "scalars":
                scalar_tags.add(value.tag)
            number = _scalar_value(value, scalar_tags)
            if number is not None:
                yield value.tag, int(event.step), number, float(event.wall_time)


def _scalar_value(value: Any, scalar_tags: set[str]) -> float | None:
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if not value.HasField("tensor") or value.tag not in scalar_tags:
        return None
    tensor_util = require("tensorboard.util.tensor_util", "TensorBoard")
    array = tensor_util.make_ndarray(value.tensor)
    if array.size != 1:
        return None
    return float(array.reshape(()).item())


def _hparams(value: Any) -> dict[str, Any]:
    """The hparams of a `session_start_info` summary; other hparams summaries (the
    experiment's domains, session end) carry none."""
    plugin_data = require("tensorboard.plugins.hparams.plugin_data_pb2", "TensorBoard")
    data = plugin_data.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    if not data.HasField("session_start_info"):
        return {}
    return {
        str(name): _json_value(hparam) for name, hparam in data.session_start_info.hparams.items()
    }


def _json_value(value: Any) -> Any:
    """A google.protobuf.Value as a param: numbers as numbers (whole ones as ints)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = float(value.number_value)
        if not math.isfinite(number):
            return str(number)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "bool_value":
        return bool(value.bool_value)
    if kind == "string_value":
        return str(value.string_value)
    return None
