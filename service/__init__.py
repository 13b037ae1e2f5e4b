"""The Momentum Monitor service: HTTP API, storage, comparison, events, dashboard assets.

Never imports torch or the trainer: workers talk to it over HTTP like any remote client.
"""

from __future__ import annotations

from service.app import create_app
from service.settings import Settings

__all__ = ["Settings", "create_app"]
