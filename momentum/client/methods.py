"""The base of `MomentumClient`'s mixins (`JobMethods`, `VerdictMethods`): the one
method of the client they call, declared for the type checker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


class RequestMethods:
    """Mixed into `MomentumClient`, whose `request` sends the calls."""

    if TYPE_CHECKING:

        def request(
            self,
            method: str,
            path: str,
            *,
            content: bytes | None = None,
            params: dict[str, Any] | None = None,
            timeout: httpx.Timeout | float | None = None,
        ) -> httpx.Response: ...
