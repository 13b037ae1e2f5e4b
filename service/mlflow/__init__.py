"""MLflow's tracking REST API over Momentum Monitor's own storage (a thin adapter).

An MLflow run is a Momentum Monitor run, an MLflow experiment is a project (with a
stable integer id in the `experiments` table), MLflow params are run params.
"""
