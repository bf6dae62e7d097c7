"""What ``model.l1`` and ``model.l2`` do to an overfitting network, and how sparse L1 makes it.

    python benchmarks/penalties.py [--seeds 5]

The default recipe's network without dropout (784-256-128-10 relu, Adam at 0.001) on
Fashion-MNIST (Debian's copy, offline), batch 128, 30 epochs, 10% held out to validate —
the same runs as ``mlplab train --dataset fashion-mnist --set model.dropout=0 --batch-size
128 --epochs 30`` — once per seed with each penalty below. Prints test accuracy, test loss,
the calibration error (ECE) and the share of all kernel weights within 1e-3 of zero, as
mean ± sample std over the seeds.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import numpy as np
from seeded import quiet_run, spread

BASE = {
    "data.dataset": "fashion-mnist",
    "model.dropout": 0.0,
    "train.batch_size": 128,
    "train.epochs": 30,
}
PENALTIES = {
    "none": {},
    "`l2 = 1e-4`": {"model.l2": 1e-4},
    "`l1 = 1e-5`": {"model.l1": 1e-5},
    "`l1 = 1e-4`": {"model.l1": 1e-4},
}
# |w| below this counts as zero: Adam's steps keep an L1-penalised weight jittering around 0
# rather than at exactly 0.
NEAR_ZERO = 1e-3


def near_zero_share(model: Any) -> float:
    """The share of the Dense kernels' weights (all layers together) within NEAR_ZERO of 0."""
    layers = [layer for layer in model.layers if hasattr(layer, "kernel")]
    kernels = [np.asarray(layer.kernel).ravel() for layer in layers]
    return float(np.mean(np.abs(np.concatenate(kernels)) < NEAR_ZERO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print("| penalty | test accuracy % | test loss | ECE % | weights within 1e-3 of 0 % |")
    print("|---|---|---|---|---|")
    for label, penalty in PENALTIES.items():
        accuracy, loss, ece, zeros = [], [], [], []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as out:
                run = quiet_run("digits-mlp", {**BASE, **penalty}, seed, out, offline=True)
                zeros.append(near_zero_share(run.model))
            accuracy.append(run.metrics["test_accuracy"])
            loss.append(run.metrics["test_loss"])
            ece.append(run.metrics["calibration"]["ece"])
        print(
            f"| {label} | {spread(accuracy)} | {spread(loss, 3, 1)} | {spread(ece, 1)} "
            f"| {spread(zeros, 1)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
