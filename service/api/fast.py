"""Read routes whose handlers build their JSON by hand for speed (histories, comparisons)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel

from service.auth import Scope, requires
from service.responses import FastJSONResponse

F = TypeVar("F", bound=Callable[..., Any])


def fast_read(router: APIRouter, path: str, model: type[BaseModel]) -> Callable[[F], F]:
    """A GET for `read` tokens answering a FastJSONResponse; `model` documents its body."""
    return router.get(
        path,
        response_model=model,
        dependencies=[requires(Scope.read)],
        response_class=FastJSONResponse,
    )
