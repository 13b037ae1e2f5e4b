"""A Keras `fit` on digits streams through `MomentumCallback` into the real service."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

import momentum
from momentum.keras import MomentumCallback, keras
from tests.support import live_server
from trainer.datasets import load_arrays
from trainer.results import RecordingSink

pytestmark = pytest.mark.e2e

EPOCHS, BATCH = 4, 32


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    database = tmp_path / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}) as url:
        yield url


@pytest.fixture
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # Keras runs on torch; more threads only contend on 2 cores
    yield
    torch.set_num_threads(previous)


class Tee:
    """Sends to the run and keeps a copy, to compare with what the service stored."""

    def __init__(self, run: momentum.Run) -> None:
        self.run, self.copy = run, RecordingSink()

    def log(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(step, values)
        self.copy.log(step, values)


def test_keras_fit_on_digits_streams_every_batch_once(server: str, one_thread: None) -> None:
    data = load_arrays("digits", seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    params = {"framework": "keras", "optimizer": "momentum", "momentum": 0.9, "lr": 0.05}
    with momentum.Run(name="keras-digits", params=params, url=server) as run:
        tee = Tee(run)
        history = model.fit(
            data.x_train, data.y_train, batch_size=BATCH, epochs=EPOCHS, verbose=0,
            validation_data=(data.x_val, data.y_val), callbacks=[MomentumCallback(tee)],
        )  # fmt: skip
    assert run.unsent_path is None and run.id is not None
    per_epoch = -(-len(data.y_train) // BATCH)  # the last batch of an epoch is short
    with httpx.Client(base_url=f"{server}/api/v1", timeout=30) as api:
        stored = {key: series(api, run.id, key) for key in ("loss", "accuracy", "val_accuracy")}
    for key in ("loss", "accuracy"):  # every batch exactly once, each value as sent
        assert stored[key]["steps"] == list(range(EPOCHS * per_epoch)), key
        assert stored[key]["values"] == tee.copy.series(key)[1], key
    assert stored["val_accuracy"]["steps"] == [(e + 1) * per_epoch - 1 for e in range(EPOCHS)]
    assert stored["val_accuracy"]["values"][-1] >= 0.90
    # Batch values, not Keras's running means: weighted by batch size, each epoch's batch
    # values average to the epoch loss Keras reports, and they are not all that mean.
    losses = np.asarray(stored["loss"]["values"]).reshape(EPOCHS, per_epoch)
    sizes = [BATCH] * (per_epoch - 1) + [len(data.y_train) - BATCH * (per_epoch - 1)]
    epoch_means = np.average(losses, axis=1, weights=sizes)
    np.testing.assert_allclose(epoch_means, history.history["loss"], rtol=1e-5)
    assert losses[1, 0] < 0.5 * epoch_means[0]


def series(api: httpx.Client, run_id: int, key: str) -> dict[str, Any]:
    response = api.get(f"/runs/{run_id}/metrics/{key}")
    assert response.status_code == 200, response.text
    return response.json()
