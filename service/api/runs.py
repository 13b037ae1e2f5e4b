"""Runs: create (idempotent by external_id), list with filters, get, patch, delete, heartbeat."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import StringConstraints
from sqlalchemy.orm import Session

from momentum.contract import (
    FindingKind,
    Page,
    RunCreate,
    RunHeartbeat,
    RunPublic,
    RunUpdate,
    Status,
)
from momentum.contract.common import NO_NUL
from momentum.contract.metrics import better_direction
from momentum.contract.values import encode_value
from service.api.compare import parse_run_ids
from service.artifacts import ArtifactStore
from service.auth import Caller, CallerDep, Role, Scope, requires
from service.deps import PageDep, SessionDep, SettingsDep, WriteSessionDep
from service.domain_errors import Forbidden, NotFound
from service.errors import invalid_field, unprocessable
from service.models import MAX_ROW_ID, Run
from service.storage import findings as finding_store
from service.storage import metrics as metric_store
from service.storage import runs as run_store
from service.write_rights import check_writable

router = APIRouter(prefix="/runs", tags=["runs"])

RunId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The run's id.")]
# Which runs a list shows by MLflow's lifecycle stage (soft delete through `runs/delete`).
Lifecycle = Annotated[
    Literal["active", "deleted", "all"],
    Query(description="Runs soft-deleted through MLflow's `runs/delete`: `deleted`, `all`."),
]
LIFECYCLE_STAGES = {"active": ("active",), "deleted": ("deleted",), "all": ("active", "deleted")}
OnlyIds = Annotated[
    str | None,
    Query(
        max_length=20_000,
        description="Comma-separated run ids: only these (a comparison's runs in one "
        "request); at most MOMENTUM_MAX_COMPARE_RUNS or a whole sweep's.",
    ),
]
SortField = Literal["created_at", "-created_at", "name", "-name", "momentum", "-momentum"]
FindingFilter = Annotated[
    FindingKind | None, Query(description="Runs whose live diagnosis holds a finding of this kind.")
]
Pair = Annotated[str, StringConstraints(pattern=r"^[^:\x00]+:[^\x00]*$", max_length=1000)]
ParamPairs = Annotated[
    list[Pair] | None,
    Query(
        description="name:value; repeatable (AND). The value is a JSON string, number "
        "(int64, finite), true, false or null, else matched as text; an object or array "
        "is a 422."
    ),
]
NameText = Annotated[
    str | None, Query(max_length=250, pattern=NO_NUL, description="Text in the run's name.")
]


def load_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound("run", run_id)
    return run


def load_writable_run(
    session: Session, run_id: int, caller: Caller, params: dict[str, Any] | None = None
) -> Run:
    """The run, if this caller may write it (SECURITY.md: the worker and run tokens' rights)."""
    run = load_run(session, run_id)
    check_writable(session, run, caller, params)
    return run


# What a run token may set with PATCH: a run's end, not what it is (name, params).
RUN_TOKEN_PATCHES = frozenset({"status", "diverged", "tags"})


def _check_run_token_patch(caller: Caller, body: RunUpdate) -> None:
    others = sorted(body.model_fields_set - RUN_TOKEN_PATCHES)
    if caller.role is Role.run and others:
        raise Forbidden(
            "forbidden",
            f"a run token may set only a run's {', '.join(sorted(RUN_TOKEN_PATCHES))}, "
            f"not {', '.join(others)}",
        )


def _best_values(extremes: dict[str, tuple[float | None, float | None]]) -> dict[str, Any]:
    best = {}
    for key, (lowest, highest) in extremes.items():
        direction = better_direction(key)
        value = lowest if direction == "min" else highest if direction == "max" else None
        if value is not None:
            best[key] = value
    return best


def to_public(session: Session, runs: list[Run]) -> list[RunPublic]:
    """Runs with their metric summaries: two queries for the whole page, not per run."""
    run_ids = [run.id for run in runs]
    latest = metric_store.latest_values(session, run_ids)
    extremes = metric_store.value_extremes(session, run_ids)
    kinds = finding_store.kinds_by_run(session, run_ids)
    out = []
    for run in runs:
        by_key = latest.get(run.id, {})
        out.append(
            RunPublic.model_validate(
                {
                    **{c.key: getattr(run, c.key) for c in Run.__table__.columns},
                    "last_step": max((step for step, _ in by_key.values()), default=None),
                    "latest": {key: encode_value(value) for key, (_, value) in by_key.items()},
                    "best": _best_values(extremes.get(run.id, {})),
                    "findings": kinds.get(run.id, []),
                }
            )
        )
    return out


def _pairs(raw: list[str] | None, what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw or []:
        name, _, value = item.partition(":")
        if '"' in name:
            raise unprocessable(f"{what} names may not contain '\"': {name!r}")
        pairs.append((name, value))
    return pairs


def _param_filters(raw: list[str] | None) -> list[tuple[str, run_store.ParamValue]]:
    """Each `name:value` with its value read as run_store.param_filter_value does."""
    filters = []
    for name, value in _pairs(raw, "param"):
        try:
            filters.append((name, run_store.param_filter_value(value)))
        except ValueError as exc:
            message = f"param {name}: {exc}"
            raise invalid_field("query", "param", str(exc), message=message) from None
    return filters


@router.post(
    "",
    status_code=201,
    response_model=RunPublic,
    dependencies=[requires(Scope.ingest)],
    responses={200: {"model": RunPublic, "description": "The run with this external_id."}},
)
def create_run(body: RunCreate, session: WriteSessionDep, response: Response) -> RunPublic:
    """Create a run; repeating an external_id returns the existing run with 200."""
    run, created = run_store.create_run(session, body)
    if not created:
        response.status_code = 200
    return to_public(session, [run])[0]


@router.get("", response_model=Page[RunPublic], dependencies=[requires(Scope.read)])
def list_runs(
    session: SessionDep,
    settings: SettingsDep,
    page: PageDep,
    project: Annotated[str | None, Query(max_length=250, pattern=NO_NUL)] = None,
    status: Status | None = None,
    optimizer: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    momentum_min: float | None = None,
    momentum_max: float | None = None,
    sweep_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    tag: Annotated[list[Pair] | None, Query(description="key:value; repeatable (AND)")] = None,
    param: ParamPairs = None,
    q: NameText = None,
    sort: SortField = "-created_at",
    finding: FindingFilter = None,
    lifecycle: Lifecycle = "active",
    ids: OnlyIds = None,
) -> Page[RunPublic]:
    """List runs, filtered, sorted and paginated."""
    filters = run_store.RunFilters(
        ids=None if ids is None else parse_run_ids(ids, settings.compare_run_cap, "ids"),
        project=project,
        status=status,
        optimizer=optimizer,
        momentum_min=momentum_min,
        momentum_max=momentum_max,
        sweep_id=sweep_id,
        tags=_pairs(tag, "tag"),
        params=_param_filters(param),
        q=q,
        finding=finding,
        lifecycle=LIFECYCLE_STAGES[lifecycle],
    )
    runs, total = run_store.list_runs(session, filters, sort, page.limit, page.offset)
    items = to_public(session, runs)
    return page.of(items, total)


@router.get("/{run_id}", response_model=RunPublic, dependencies=[requires(Scope.read)])
def get_run(run_id: RunId, session: SessionDep) -> RunPublic:
    """One run with its last step and latest values."""
    return to_public(session, [load_run(session, run_id)])[0]


@router.patch(
    "/{run_id}",
    response_model=RunPublic,
    dependencies=[requires(Scope.ingest, run_token=True)],
)
def update_run(
    run_id: RunId, body: RunUpdate, session: WriteSessionDep, caller: CallerDep
) -> RunPublic:
    """Rename, retag, change params, set status or divergence (a run token: status,
    divergence and tags of its own run)."""
    _check_run_token_patch(caller, body)
    run = load_writable_run(session, run_id, caller, params=body.params)
    return to_public(session, [run_store.update_run(session, run, body)])[0]


@router.delete("/{run_id}", status_code=204, dependencies=[requires(Scope.admin)])
def delete_run(run_id: RunId, session: WriteSessionDep, settings: SettingsDep) -> Response:
    """Delete a run with all its series, points and artifacts."""
    session.delete(load_run(session, run_id))
    session.flush()
    # Committed first: the files go only once the run is gone for good.
    session.commit()
    ArtifactStore(settings.artifacts_dir, settings.max_artifact_bytes).remove_run(run_id)
    return Response(status_code=204)


@router.post(
    "/{run_id}/heartbeat",
    response_model=RunHeartbeat,
    dependencies=[requires(Scope.ingest, run_token=True)],
)
def heartbeat(run_id: RunId, session: WriteSessionDep, caller: CallerDep) -> RunHeartbeat:
    """Keep an SDK run alive; a run silent past the timeout becomes failed."""
    run = run_store.heartbeat(session, load_writable_run(session, run_id, caller))
    assert run.last_heartbeat_at is not None
    return RunHeartbeat(
        id=run.id, status=Status(run.status), last_heartbeat_at=run.last_heartbeat_at
    )
