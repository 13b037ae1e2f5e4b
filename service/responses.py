"""Fast JSON responses for large payloads (histories, comparisons)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """orjson-encoded, numpy arrays (contiguous) written as lists. Callers encode
    non-finite floats as strings first (orjson writes null): see `wire_values`."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
