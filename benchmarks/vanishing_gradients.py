"""Sigmoid against ReLU in a deep MLP: the vanishing gradient, and what it does to learning.

    python benchmarks/vanishing_gradients.py [--seeds 3] [--epochs 20]

Trains each config below once per seed on digits (no report, in a temporary folder), then
measures each Dense layer's RMS loss gradient at the run's initial weights and at its
trained ones (``mlplab.gradients.layer_gradients``, as every report draws it in
``gradients.png``). Printed, as mean ± sample std over the seeds: the test accuracy, and the
first layer's initial gradient as a share of the last layer's (1/N).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from seeded import quiet_run, spread

from mlplab.api import read_splits
from mlplab.gradients import layer_gradients

DEEP = {"model.hidden": [64] * 6}
CONFIGS = {
    "64-256-128-10 relu (digits-mlp)": {},
    "6 x 64 sigmoid, Glorot": {**DEEP, "model.activation": "sigmoid",
                               "model.kernel_initializer": "glorot_uniform"},
    "6 x 64 sigmoid, Glorot, batch norm": {**DEEP, "model.activation": "sigmoid",
                                           "model.kernel_initializer": "glorot_uniform",
                                           "model.batch_norm": True},
    "6 x 64 tanh, Glorot": {**DEEP, "model.activation": "tanh",
                            "model.kernel_initializer": "glorot_uniform"},
    "6 x 64 relu, He": {**DEEP, "model.activation": "relu",
                        "model.kernel_initializer": "he_uniform"},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    print(
        "| config | test accuracy % | first layer's gradient at the start, of the last's |\n"
        "|---|---|---|"
    )
    for label, overrides in CONFIGS.items():
        accuracy, shares = [], []
        with tempfile.TemporaryDirectory() as out:
            for seed in range(args.seeds):
                run = quiet_run("digits-mlp", {**overrides, "train.epochs": args.epochs}, seed, out)
                dataset, _, _ = read_splits(run.config)
                measured = layer_gradients(run.model, run.config, dataset.x_train, dataset.y_train)
                accuracy.append(run.metrics["test_accuracy"])
                shares.append(measured.first_to_last)
        inverse = [1 / share for share in shares]
        share = f"1/{statistics.mean(inverse):,.0f}"
        if len(inverse) > 1:
            share += f" (1/{min(inverse):,.0f} to 1/{max(inverse):,.0f})"
        print(f"| {label} | {spread(accuracy)} | {share} |", flush=True)


if __name__ == "__main__":
    main()
