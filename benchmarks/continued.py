"""Training on from a finished run (``model.init_from``) against training that long at once.

    python benchmarks/continued.py [--seeds 3] [--epochs 10]

The default recipe's network (784-256-128 relu, dropout 0.3, Adam at 0.001) on Fashion-MNIST
(Debian's copy, offline), batch 128, 10% held out, once per seed: trained ``epochs``; then
a second run starting from the first one's weights for ``epochs`` more (a new optimizer
state: Adam's moments start at zero again); and a run of twice ``epochs`` from random
weights. Prints test accuracy and loss as mean ± sample std over the seeds.
"""

from __future__ import annotations

import argparse
import tempfile

from seeded import quiet_run, spread

BASE = {"data.dataset": "fashion-mnist", "train.batch_size": 128}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    n = args.epochs
    rows = {f"{n} epochs": [], f"{n} + {n} epochs (init_from)": [], f"{2 * n} epochs": []}
    with tempfile.TemporaryDirectory() as out:
        for seed in range(args.seeds):
            first = quiet_run("digits-mlp", {**BASE, "train.epochs": n}, seed, out, offline=True)
            more = {**BASE, "train.epochs": n, "model.init_from": str(first.path)}
            on = quiet_run("digits-mlp", more, seed, out, offline=True)
            whole = quiet_run(
                "digits-mlp", {**BASE, "train.epochs": 2 * n}, seed, out, offline=True
            )
            for label, run in zip(rows, (first, on, whole), strict=True):
                rows[label].append(run.metrics)
    print("| training | test accuracy % | test loss |")
    print("|---|---|---|")
    for label, metrics in rows.items():
        accuracy = spread([m["test_accuracy"] for m in metrics])
        loss = spread([m["test_loss"] for m in metrics], digits=3, scale=1)
        print(f"| {label} | {accuracy} | {loss} |")


if __name__ == "__main__":
    main()
