"""A user's own Keras 3 script: an MLP on scikit-learn's digits, SGD with (Nesterov) momentum.

Run it by hand (`python train.py --momentum 0.5 --nesterov true`: it creates a run), or
let a `momentum worker` started in this directory run it for a job or a sweep
(`momentum sweep --entry-point train --grid momentum=0,0.9 --grid nesterov=false,true`):
the worker passes the job's params as `--NAME=VALUE` and sets MOMENTUM_RUN_ID, so
`momentum.Run()` writes the job's run instead of creating one.

Keras runs on its PyTorch backend (importing `momentum.keras` sets KERAS_BACKEND=torch
unless it is set), so no TensorFlow is needed: `pip install 'momentum-monitor[keras]'`.
`MomentumCallback` logs every batch's `loss` and `accuracy`, and `val_loss` and
`val_accuracy` at the end of each Keras epoch of EPOCH_STEPS batches.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.datasets import load_digits

import momentum
from momentum.keras import MomentumCallback, keras  # before any other Keras import

BATCH = 64
EPOCH_STEPS = 50  # batches per Keras epoch: validation runs after each


def boolean(text: str) -> bool:
    """`true`/`false`, as the worker writes a bool param (any case)."""
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--nesterov", type=boolean, default=False)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    return parser.parse_args()


def batches(x: np.ndarray, y: np.ndarray, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless random minibatches, in an order the seed fixes."""
    rng = np.random.default_rng(seed)
    while True:
        chosen = rng.integers(len(x), size=BATCH)
        yield x[chosen], y[chosen]


class StopAfter(keras.callbacks.Callback):
    """Ends `fit` after exactly `steps` batches, mid-epoch if need be."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps, self.done = steps, 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True  # Keras still validates the epoch it stops in


def main() -> None:
    args = parse_args()
    keras.utils.set_random_seed(args.seed)
    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target
    order = np.random.default_rng(0).permutation(len(x))
    train, val = order[:1400], order[1400:]  # the same split for every seed
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(args.lr, momentum=args.momentum, nesterov=args.nesterov),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    # Under a worker these two are not sent: the job's run already has its name and params.
    nesterov = "-nesterov" if args.nesterov else ""
    name = f"keras-digits-mu{args.momentum:g}{nesterov}-seed{args.seed}"
    with momentum.Run(name=name, params=vars(args)) as run:
        model.fit(
            batches(x[train], y[train], args.seed),
            steps_per_epoch=min(EPOCH_STEPS, args.steps),
            epochs=math.ceil(args.steps / EPOCH_STEPS),
            validation_data=(x[val], y[val]),
            callbacks=[MomentumCallback(run), StopAfter(args.steps)],
            shuffle=False,  # the generator's batches are already random
            verbose=0,
        )


if __name__ == "__main__":
    main()
