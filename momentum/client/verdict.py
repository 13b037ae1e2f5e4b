"""The verdict routes of `MomentumClient` (`momentum verdict`): which value of a
parameter is best across seeds, how sure we are, and how many runs would settle the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from momentum.client.encoding import query_params
from momentum.client.methods import RequestMethods
from momentum.contract.verdict import Verdict


class VerdictMethods(RequestMethods):
    """Mixed into `MomentumClient`, whose `request` sends the calls."""

    def sweep_verdict(
        self,
        sweep_id: int,
        key: str = "loss",
        *,
        by: str | None = None,
        mode: str = "min",
        summary: str = "tail_mean",
        threshold: float | None = None,
        confidence: float = 0.95,
    ) -> Verdict:
        """The verdict on a sweep's runs, grouped by `by` (default: as its summary)."""
        params = {"key": key, "by": by, "mode": mode, "summary": summary}
        return self._verdict(f"/sweeps/{sweep_id}/verdict", params, threshold, confidence)

    def compare_verdict(
        self,
        run_ids: Sequence[int],
        key: str = "loss",
        *,
        by: str = "momentum",
        mode: str = "min",
        summary: str = "tail_mean",
        threshold: float | None = None,
        confidence: float = 0.95,
    ) -> Verdict:
        """The verdict on these runs grouped by the parameter `by`."""
        ids = ",".join(str(run_id) for run_id in run_ids)
        params = {"run_ids": ids, "key": key, "by": by, "mode": mode, "summary": summary}
        return self._verdict("/compare/verdict", params, threshold, confidence)

    def _verdict(
        self, path: str, params: dict[str, Any], threshold: float | None, confidence: float
    ) -> Verdict:
        query = query_params({**params, "threshold": threshold, "confidence": confidence})
        return Verdict.model_validate_json(self.request("GET", path, params=query).content)
