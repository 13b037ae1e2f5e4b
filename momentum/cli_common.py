"""What the `momentum` commands share: the connection options, the client whose errors
become click errors, request bodies checked as the service checks them, and the table.

Light on purpose (click only at import): `momentum --help` loads every command module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from momentum.client import MomentumAPIError, MomentumClient

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound="BaseModel")
URL_HELP = "Service URL [default: $MOMENTUM_URL or http://127.0.0.1:8000]."
TOKEN_HELP = "Bearer token [default: $MOMENTUM_TOKEN]."
WIDE = 200  # columns when the output is not a terminal


def connection_options_with(token_help: str) -> Callable[[F], F]:
    """`--url` and `--token`, read from MOMENTUM_URL / MOMENTUM_TOKEN when not given."""

    def decorate(command: F) -> F:
        command = click.option("--token", envvar="MOMENTUM_TOKEN", help=token_help)(command)
        return click.option("--url", envvar="MOMENTUM_URL", help=URL_HELP)(command)

    return decorate


connection_options = connection_options_with(TOKEN_HELP)


@contextmanager
def api(url: str | None, token: str | None) -> Iterator[MomentumClient]:
    """A client whose errors become click errors: the contract's message, exit code 1."""
    import httpx

    from momentum.client import MomentumAPIError, MomentumClient

    client = MomentumClient(url, token)
    try:
        yield client
    except MomentumAPIError as exc:
        lines = [exc.message]
        for item in exc.detail:
            if isinstance(item, dict) and "loc" in item:
                lines.append(f"  {'.'.join(str(p) for p in item['loc'])}: {item.get('msg', '')}")
        raise click.ClickException("\n".join(lines)) from exc
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {client.url}: {exc}") from exc
    finally:
        client.close()


def request_body(model: type[M], body: Mapping[str, Any]) -> M:
    """`body` as the contract's request model, checked here as the service checks it; a
    problem raises the service's 422 (inside `api`, the same message and exit code)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise as_service_error(exc) from None


def as_service_error(exc: ValidationError) -> MomentumAPIError:
    """A request model's validation error as the service words it (its 422)."""
    from momentum.client import MomentumAPIError

    items = [
        {"loc": list(error["loc"]), "msg": str(error["msg"]), "type": error["type"]}
        for error in exc.errors(include_url=False)
    ]
    first = items[0]
    where = ".".join(str(part) for part in first["loc"]) or "request"
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    message = f"invalid request: {where}: {first['msg']}{more}"
    return MomentumAPIError(422, "validation_error", message, items)


def print_table(
    title: str,
    columns: list[str],
    rows: list[list[str]],
    *,
    caption: str | None = None,
    wrapping: frozenset[str] = frozenset({"name"}),
) -> None:
    """A rich table on stdout; long free text (`wrapping` columns) wraps, ids, statuses
    and numbers stay on one line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=column not in wrapping, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, WIDE)  # piped or logged: wrap nothing needlessly
    console.print(table)
