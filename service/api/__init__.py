"""HTTP routers, one module per resource, collected under /api/v1 by `service.app`."""

from __future__ import annotations

from typing import Any


def operation_id(route: Any) -> str:
    """Readable OpenAPI ids, `{tag}-{name}`; also the Prometheus label of a route."""
    tags = getattr(route, "tags", None)
    return f"{tags[0] if tags else 'default'}-{route.name}"
