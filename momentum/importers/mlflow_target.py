"""The service's MLflow-compatible routes (`/api/2.0/mlflow`), as the MLflow importer
writes through them: they take a run's start and end times, its status as MLflow words
it, and apply our repeated-step rule to metrics (service/mlflow/metrics.py), so values
imported land exactly as if the script had logged to the service directly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from momentum.client import MomentumClient

MLFLOW_API = "/api/2.0/mlflow"
# MLflow's own per-request limits for runs/log-batch.
BATCH_METRICS, BATCH_PARAMS, BATCH_TAGS = 1000, 100, 100


class MlflowRoutes:
    """A few MLflow calls over the client's connection and credentials."""

    def __init__(self, client: MomentumClient) -> None:
        self.client = client

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        from momentum.client import MomentumAPIError

        response = self.client.http.request(
            method, f"{self.client.url}{MLFLOW_API}{path}", headers=self.client._auth, **kwargs
        )
        if response.status_code >= 400:
            try:
                error = response.json()
                code, message = error["error_code"], error["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", response.text[:300]
            raise MomentumAPIError(response.status_code, code, f"{path}: {message}")
        return dict(response.json())

    def experiment_id(self, name: str) -> str:
        """The experiment (our project) named `name`, created if missing."""
        from momentum.client import MomentumAPIError

        try:
            found = self.call("GET", "/experiments/get-by-name", params={"experiment_name": name})
            return str(found["experiment"]["experiment_id"])
        except MomentumAPIError as exc:
            if exc.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        return str(self.call("POST", "/experiments/create", json={"name": name})["experiment_id"])

    def create_run(
        self, experiment_id: str, name: str, start_time: int, user_id: str, tags: dict[str, str]
    ) -> int:
        body = {
            "experiment_id": experiment_id,
            "run_name": name,
            "start_time": start_time,
            "tags": _pairs(tags),
        }
        if user_id:
            body["user_id"] = user_id
        return int(self.call("POST", "/runs/create", json=body)["run"]["info"]["run_id"])

    def get_run(self, run_id: int) -> dict[str, Any]:
        return dict(self.call("GET", "/runs/get", params={"run_id": str(run_id)})["run"])

    def log_batch(
        self,
        run_id: int,
        metrics: list[dict[str, Any]] | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Everything given, in as many log-batch requests as MLflow's limits ask."""
        metrics = metrics or []
        param_items, tag_items = _pairs(params or {}), _pairs(tags or {})
        while metrics or param_items or tag_items:
            body = {
                "run_id": str(run_id),
                "metrics": metrics[:BATCH_METRICS],
                "params": param_items[:BATCH_PARAMS],
                "tags": tag_items[:BATCH_TAGS],
            }
            self.call("POST", "/runs/log-batch", json=body)
            metrics, param_items = metrics[BATCH_METRICS:], param_items[BATCH_PARAMS:]
            tag_items = tag_items[BATCH_TAGS:]

    def finish(self, run_id: int, status: str, end_time: int | None) -> None:
        body: dict[str, Any] = {"run_id": str(run_id), "status": status}
        if end_time is not None:
            body["end_time"] = end_time
        self.call("POST", "/runs/update", json=body)


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in values.items()]
