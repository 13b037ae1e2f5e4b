"""`from momentum.tensorboard import SummaryWriter`: a drop-in for
`torch.utils.tensorboard.SummaryWriter` that logs to Momentum Monitor.

    from momentum.tensorboard import SummaryWriter   # was: from torch.utils.tensorboard ...

    writer = SummaryWriter("runs/mlp-mu0.9")
    writer.add_scalar("loss", loss, step)

It writes through the SDK (`momentum.Run`), so it never blocks training and keeps what the
service could not take yet in the spool. The run is named as TensorBoard names it: the
run directory relative to the `runs/` folder TensorBoard's default `log_dir` lives in
(`runs/mlp-mu0.9` → `mlp-mu0.9`; any other relative path as written; an absolute path by
its last part). Scalars, `add_scalars` and `add_hparams` are carried; the other `add_*`
methods (images, histograms, graphs…) exist, warn once, and do nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import PurePath
from typing import Any

from momentum.adapters import close_at_exit, param, scalar, script_failed, warn_once
from momentum.client.run import Run
from momentum.contract import Status

# What torch's SummaryWriter offers that is not a scalar: accepted, warned about, dropped.
UNSUPPORTED = (
    "add_audio",
    "add_custom_scalars",
    "add_custom_scalars_marginchart",
    "add_custom_scalars_multilinechart",
    "add_embedding",
    "add_figure",
    "add_graph",
    "add_histogram",
    "add_histogram_raw",
    "add_image",
    "add_image_with_boxes",
    "add_images",
    "add_mesh",
    "add_onnx_graph",
    "add_pr_curve",
    "add_pr_curve_raw",
    "add_tensor",
    "add_text",
    "add_video",
)


def default_log_dir(comment: str = "") -> str:
    """TensorBoard's default: `runs/<Mon><DD>_<HH>-<MM>-<SS>_<host><comment>`."""
    current_time = datetime.now().strftime("%b%d_%H-%M-%S")
    return os.path.join("runs", f"{current_time}_{socket.gethostname()}{comment}")


def run_name(log_dir: str | os.PathLike[str]) -> str:
    """The name TensorBoard shows for `log_dir` when pointed at its `runs/` folder."""
    path = PurePath(os.path.normpath(os.fspath(log_dir)))
    if path.is_absolute():
        return path.name or str(path)
    parts = path.parts[1:] if len(path.parts) > 1 and path.parts[0] == "runs" else path.parts
    return "/".join(parts)


class SummaryWriter:
    """`torch.utils.tensorboard.SummaryWriter`'s scalar API over a `momentum.Run`.

    TensorBoard's own options (`purge_step`, `max_queue`, `flush_secs`,
    `filename_suffix`) are accepted and have no effect. `project`, `params`, `tags` and
    `run` (an already started `momentum.Run` to write into) are ours, keyword-only.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
        *,
        project: str = "default",
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        run: Run | None = None,
    ) -> None:
        self.log_dir = os.fspath(log_dir) if log_dir else default_log_dir(comment)
        self._params = {str(key): param(value) for key, value in (params or {}).items()}
        self._keys: set[str] = set()
        self._last_step = 0
        self._owns_run = run is None
        self.run = run or Run(
            name=run_name(self.log_dir), params=self._params, project=project, tags=tags
        )
        if self._owns_run:
            self.run.start()
            close_at_exit(self._close_at_exit)
        self._closed = False

    def get_logdir(self) -> str:
        return self.log_dir

    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        new_style: bool = False,
        double_precision: bool = False,
    ) -> None:
        """One value of `tag` at `global_step` (TensorBoard's default step is 0)."""
        self._write({tag: scalar(scalar_value)}, global_step, walltime)

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: Mapping[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Several values at one step, as keys `main_tag/tag` (TensorBoard's names)."""
        values = {f"{main_tag}/{tag}": scalar(value) for tag, value in tag_scalar_dict.items()}
        self._write(values, global_step, walltime)

    def add_hparams(
        self,
        hparam_dict: Mapping[str, Any],
        metric_dict: Mapping[str, Any],
        hparam_domain_discrete: Mapping[str, list[Any]] | None = None,
        run_name: str | None = None,
        global_step: int | None = None,
    ) -> None:
        """`hparam_dict` becomes the run's params (added to those it has). Each value of
        `metric_dict` whose key this writer has not logged is logged once, at
        `global_step` or else the last step written; a key already logged as a series
        is left alone (TensorBoard keeps these in a separate run, so they never mix)."""
        if self._refused("add_hparams"):
            return
        self._params.update({str(key): param(value) for key, value in hparam_dict.items()})
        self.run.update(params=dict(self._params))
        fresh = {key: scalar(v) for key, v in metric_dict.items() if key not in self._keys}
        if fresh:
            step = self._last_step if global_step is None else global_step
            self._write(fresh, step, None)

    def flush(self) -> None:
        """Ask the reporter to send what is queued now (it never waits on the network)."""
        reporter = self.run.reporter
        if reporter is not None and not self._closed:
            reporter.nudge()

    def close(self) -> None:
        """Finish the run as `succeeded` and send what is left; a second close does nothing."""
        self._finish(Status.succeeded)

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._finish(Status.failed if exc_type is not None else Status.succeeded)

    def _write(self, values: dict[str, Any], step: int | None, walltime: float | None) -> None:
        if self._refused("add_scalar"):
            return
        step = 0 if step is None else int(step)
        self._keys.update(values)
        self._last_step = max(self._last_step, step)
        self.run.log_at(step, time.time() if walltime is None else float(walltime), values)

    def _refused(self, method: str) -> bool:
        if self._closed:
            warn_once(f"tensorboard.closed.{method}", f"{method} after close() is dropped")
        return self._closed

    def _finish(self, status: Status) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_run:
            self.run.finish(status)

    def _close_at_exit(self) -> None:
        self._finish(Status.failed if script_failed() else Status.succeeded)


def _unsupported(name: str) -> Any:
    def method(self: SummaryWriter, *args: Any, **kwargs: Any) -> None:
        warn_once(
            f"tensorboard.{name}",
            f"momentum.tensorboard.SummaryWriter.{name} does nothing: "
            "Momentum Monitor records scalars",
        )

    method.__name__ = method.__qualname__ = name
    method.__doc__ = "Accepted so that code calling it keeps running; does nothing (warns once)."
    return method


for _name in UNSUPPORTED:
    setattr(SummaryWriter, _name, _unsupported(_name))

__all__ = ["SummaryWriter", "run_name"]
