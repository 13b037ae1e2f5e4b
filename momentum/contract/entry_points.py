"""Entry points: the user's own training code, declared on a worker's machine.

A worker reads its entry points from `momentum.toml` and registers each with the
service (`PUT /api/v1/entry-points/{name}`). The service validates params against the
registered definition; it never executes or forwards `command`, which it keeps only to
show. `digest` names one exact definition, so a job submitted under it is claimed only
by a worker whose definition is the same.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Annotated, Literal, Self

import orjson
from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from momentum.contract.common import ContractModel, Name, Text

ENTRY_POINT_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$"
EntryPointName = Annotated[
    str,
    Field(
        pattern=ENTRY_POINT_PATTERN,
        description="1-100 characters: letters, digits, `_ . -`; not starting with `.` or `-`.",
        examples=["train"],
    ),
]
PARAM_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
ParamName = Annotated[str, Field(pattern=PARAM_PATTERN, examples=["momentum"])]
ParamType = Literal["float", "int", "str", "bool"]
# A param's value on the wire: strict, so `"5"` is no int and `true` no number.
ParamValue = StrictBool | StrictInt | StrictFloat | StrictStr
DIGEST_PATTERN = r"^[0-9a-f]{64}$"
MAX_PARAMS = 100
MAX_COMMAND_ARGS = 100


class ParamSpec(ContractModel):
    """One declared param: its type and, optionally, default, range, choices, scale."""

    type: ParamType
    default: ParamValue | None = Field(default=None, description="None: the param is required.")
    min: StrictInt | StrictFloat | None = None
    max: StrictInt | StrictFloat | None = None
    choices: list[ParamValue] | None = Field(default=None, min_length=1, max_length=1000)
    log: StrictBool = Field(default=False, description="Search it on a log scale.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type in ("str", "bool") and (self.min is not None or self.max is not None):
            raise ValueError(f"a {self.type} param takes no min or max")
        for bound in (self.min, self.max):
            if isinstance(bound, float) and not math.isfinite(bound):
                raise ValueError("min and max must be finite numbers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        for choice in self.choices or []:
            self.check(choice)
        if self.default is not None:
            self.check(self.default)
        return self

    @property
    def required(self) -> bool:
        return self.default is None

    def check(self, value: object) -> ParamValue:
        """The value, if this param takes it; otherwise ValueError saying what it takes."""
        checked = _typed(self.type, value)
        if self.choices is not None and checked not in self.choices:
            raise ValueError(f"must be one of {self.choices}, got {value!r}")
        if isinstance(checked, int | float) and not isinstance(checked, bool):
            if self.min is not None and checked < self.min:
                raise ValueError(f"must be at least {self.min}, got {value!r}")
            if self.max is not None and checked > self.max:
                raise ValueError(f"must be at most {self.max}, got {value!r}")
        return checked


_A = {"float": "a float", "int": "an int", "str": "a string", "bool": "true or false"}


def _typed(kind: ParamType, value: object) -> ParamValue:
    """`value` as a `kind`: an int is also a float (1 → 1.0); nothing else converts."""
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValueError(f"must be {_A[kind]}, got {value!r}")
    if kind == "int" and isinstance(value, int):
        return value
    if kind == "float" and isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        return float(value)
    raise ValueError(f"must be {_A[kind]}, got {value!r}")


class EntryPointDefinition(ContractModel):
    """What `[entry_points.NAME]` in momentum.toml declares."""

    command: list[Text] = Field(
        min_length=1,
        max_length=MAX_COMMAND_ARGS,
        description="argv, run without a shell, in the file's directory; shown, never run "
        "by the service.",
        examples=[["python", "train.py"]],
    )
    total_param: ParamName | None = Field(
        default=None, description="The int param that is the step count (progress)."
    )
    params: dict[ParamName, ParamSpec] = Field(default_factory=dict, max_length=MAX_PARAMS)

    @model_validator(mode="after")
    def _total_is_an_int_param(self) -> Self:
        if self.total_param is None:
            return self
        spec = self.params.get(self.total_param)
        if spec is None or spec.type != "int":
            raise ValueError(f"total_param {self.total_param!r} must name an int param")
        return self

    def compute_digest(self) -> str:
        """sha256 of the definition's canonical JSON: equal definitions, equal digests."""
        canonical = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()

    def resolve(self, given: dict[str, object]) -> dict[str, ParamValue]:
        """The full param set: `given` checked, defaults filled in. Raises ParamErrors."""
        errors: dict[str, str] = {}
        for name in given.keys() - self.params.keys():
            errors[name] = f"unknown param; this entry point takes {sorted(self.params)}"
        resolved: dict[str, ParamValue] = {}
        for name, spec in self.params.items():
            if name in given:
                try:
                    resolved[name] = spec.check(given[name])
                except ValueError as exc:
                    errors[name] = str(exc)
            elif spec.default is not None:
                resolved[name] = spec.default
            else:
                errors[name] = "required: it has no default"
        if errors:
            raise ParamErrors(errors)
        return resolved


class ParamErrors(ValueError):
    """Each bad param with what is wrong with it (for a 422 at ["params", NAME])."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(sorted(errors.items()))
        super().__init__("; ".join(f"{name}: {why}" for name, why in self.errors.items()))


class EntryPointRegistration(EntryPointDefinition):
    """`PUT /api/v1/entry-points/{name}`: a worker announces what it can run."""

    digest: str = Field(pattern=DIGEST_PATTERN, description="`compute_digest()` of the definition.")
    worker_id: Name | None = Field(default=None, description="The worker that has it.")

    @model_validator(mode="after")
    def _digest_matches(self) -> Self:
        if self.digest != self.definition().compute_digest():
            raise ValueError("digest is not the sha256 of this definition's canonical JSON")
        return self

    def definition(self) -> EntryPointDefinition:
        return EntryPointDefinition(
            command=self.command, total_param=self.total_param, params=self.params
        )


class EntryPointPublic(BaseModel):
    name: str
    digest: str
    command: list[str]
    total_param: str | None
    params: dict[str, ParamSpec]
    workers: list[str] = Field(description="Workers that registered this definition.")
    current: bool = Field(
        default=False,
        description="The name's newest registration: new jobs' params are checked against it.",
    )
    registered_at: datetime
    updated_at: datetime
