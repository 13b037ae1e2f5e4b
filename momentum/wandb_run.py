"""The run behind `momentum.wandb`: W&B's step rules over a `momentum.Run`, and the
`config` and `summary` objects (see momentum/wandb.py for the rules in words)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from momentum.adapters import param, scalar, warn_once
from momentum.client.http import MomentumAPIError
from momentum.client.run import Run
from momentum.contract import Status

log = logging.getLogger("momentum.client")
SUMMARY_TAG = "summary."
MAX_TAG_TEXT = 1000


class Error(Exception):
    """W&B's `wandb.Error`: raised for calls that need `wandb.init()` first."""


def new_run_id() -> str:
    """A W&B-style run id: 8 lowercase letters and digits."""
    return uuid.uuid4().hex[:8]


class _Attributes:
    """A dict with attribute access (`config.lr`) as well as item access (`config["lr"]`);
    `_changed` is called after each change."""

    def __init__(self) -> None:
        object.__setattr__(self, "_data", {})

    def _changed(self) -> None:
        pass

    def reset(self, values: Mapping[str, Any] | None = None) -> None:
        self._data.clear()
        self._data.update(values or {})

    def __getattr__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[str(key)] = param(value)
        self._changed()

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def keys(self) -> Any:
        return self._data.keys()

    def items(self) -> Any:
        return self._data.items()

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def update(self, values: Mapping[str, Any] | None = None, **more: Any) -> None:
        self._data.update({str(k): param(v) for k, v in {**(values or {}), **more}.items()})
        self._changed()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


class Config(_Attributes):
    """`wandb.config`: the run's params; each change is sent as the run's new params."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_run", None)

    def bind(self, run: Run | None) -> None:
        object.__setattr__(self, "_run", run)

    def update(
        self, values: Mapping[str, Any] | None = None, allow_val_change: bool = True, **more: Any
    ) -> None:
        super().update(values, **more)

    def setdefaults(self, values: Mapping[str, Any]) -> None:
        self.update({key: value for key, value in values.items() if key not in self})

    def _changed(self) -> None:
        if self._run is not None and self._run.status is None:
            self._run.update(params=self.as_dict())


class Summary(_Attributes):
    """`wandb.summary`: the values set here are sent when the run finishes."""


class WandbRun:
    """What `wandb.init()` returns: `.id`, `.name`, `.config`, `.summary`, `.step`,
    `.log()`, `.finish()`."""

    def __init__(
        self,
        *,
        project: str,
        name: str | None,
        run_id: str,
        tags: dict[str, str],
        config: Config,
        summary: Summary,
        resume: bool | str | None = None,
    ) -> None:
        self.id, self.project, self.config, self.summary = run_id, project, config, summary
        self._name, self._tags = name, tags
        self._step = 0
        self._pending: dict[str, Any] = {}
        self._logged: set[str] = set()
        self.run = Run(
            name=name, params=config.as_dict(), project=project, tags=tags, external_id=run_id
        )
        self.run.start()
        config.bind(self.run)
        if resume:
            self._step = self._resumed_step()

    def _resumed_step(self, timeout: float = 30.0) -> int:
        """W&B goes on after a resumed run's last step; 0 for a new run, or when the
        service cannot say (the points then wait in the spool as usual)."""
        try:
            run_id = self.run.wait_for_id(timeout)
            last = self.run.client.get_run(run_id).last_step if run_id is not None else None
        except (httpx.HTTPError, MomentumAPIError) as error:
            log.warning("momentum.wandb: could not read the resumed run's last step: %s", error)
            return 0
        return 0 if last is None else last + 1

    @property
    def name(self) -> str | None:
        """The name given, or the service's `run-<id>` once the run exists there."""
        if self._name is None and self.run.id is not None:
            return f"run-{self.run.id}"
        return self._name

    @property
    def step(self) -> int:
        """The step the next `log` without `step` writes to."""
        return self._step

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """W&B's rules: see momentum/wandb.py."""
        if step is not None:
            step = int(step)
            if step < self._step:
                warn_once(
                    f"wandb.step.{step}",
                    f"Tried to log to step {step} that is less than the current step "
                    f"{self._step}; this data is ignored",
                )
                return
            if step > self._step:
                self._commit()
                self._step = step
        elif commit is None:
            commit = True
        self._pending.update(_flattened(data))
        if commit:
            self._commit()

    def finish(self, exit_code: int | None = None) -> None:
        if self.run.status is not None:
            return
        self._commit()
        self._send_summary()
        self.config.bind(None)
        self.run.finish(Status.failed if exit_code else Status.succeeded)

    def _commit(self) -> None:
        if self._pending:
            self.run.log(self._step, self._pending)
            self._logged.update(self._pending)
            self._pending = {}
            self._step += 1

    def _send_summary(self) -> None:
        """Explicit summary values: as tags, and numbers never logged as a point."""
        explicit = self.summary.as_dict()
        if not explicit:
            return
        tags = {**self._tags}
        for key, value in explicit.items():
            tags[f"{SUMMARY_TAG}{key}"] = str(value)[:MAX_TAG_TEXT]
        self.run.update(tags=tags)
        fresh = {
            key: value
            for key, value in explicit.items()
            if key not in self._logged
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        }
        if fresh:
            self.run.log(max(self._step - 1, 0), fresh)


def _flattened(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as `outer.inner` keys (as W&B shows them); values as numbers."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(_flattened(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = scalar(value)
    return flat
