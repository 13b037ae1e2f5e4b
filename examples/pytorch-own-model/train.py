"""A user's own PyTorch script: an MLP on scikit-learn's digits, SGD with momentum.

Run it by hand (`python train.py --momentum 0.5`: it creates a run), or let a
`momentum worker` started in this directory run it for a job or a sweep
(`momentum sweep --entry-point train --grid momentum=0,0.5,0.9 --grid seed=0,1`): the
worker passes the job's params as `--NAME=VALUE` and sets MOMENTUM_RUN_ID, so
`momentum.Run()` writes the job's run instead of creating one.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import momentum

BATCH = 64
EVAL_EVERY = 50


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=64)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = order[:1400], order[1400:]  # the same split for every seed
    model = nn.Sequential(nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    batches = torch.Generator().manual_seed(args.seed)

    # Under a worker these two are not sent: the job's run already has its name and params.
    name = f"digits-mu{args.momentum:g}-seed{args.seed}"
    with momentum.Run(name=name, params=vars(args)) as run:
        for step in range(args.steps):
            batch = train[torch.randint(len(train), (BATCH,), generator=batches)]
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            metrics = {"loss": loss.item()}
            if step % EVAL_EVERY == 0 or step == args.steps - 1:
                with torch.no_grad():
                    logits = model(x[val])
                metrics["val_loss"] = F.cross_entropy(logits, y[val]).item()
                metrics["val_accuracy"] = (logits.argmax(1) == y[val]).float().mean().item()
            run.log(step, **metrics)


if __name__ == "__main__":
    main()
