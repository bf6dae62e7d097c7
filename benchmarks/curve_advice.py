"""What the learning curves say (mlplab.diagnosis) on real runs, and what its advice does.

    python benchmarks/curve_advice.py [--seeds 3] [--only digits|fashion]

Trains each config below once per seed (no pictures, in a temporary folder) and prints a
Markdown table: the test accuracy, test loss and calibration error (mean ± sample std over
the seeds) and, for each seed, what ``read_curves`` said ("-" for nothing). The digits
configs check that it does not cry wolf on the default recipe and names the three things
it looks for; the Fashion-MNIST ones show an overfitting network and the two cures its
advice names.
"""

from __future__ import annotations

import argparse
import tempfile

import seeded  # this folder's shared helpers (the script's folder is on sys.path)

import mlplab
from mlplab.diagnosis import read_curves

WIDE = {"data.dataset": "fashion-mnist", "model.hidden": [512, 512], "train.epochs": 30,
        "train.batch_size": 128}  # fmt: skip
CONFIGS = {
    "digits": [
        ("digits-mlp (50 epochs)", "digits-mlp", {}),
        ("digits-mlp, 300 epochs, no dropout", "digits-mlp",
         {"train.epochs": 300, "model.dropout": 0.0}),
        ("digits-sigmoid-sgd", "digits-sigmoid-sgd", {}),
        ("digits-mlp, learning rate 0.5", "digits-mlp", {"train.learning_rate": 0.5}),
    ],
    "fashion": [
        ("Fashion-MNIST 512-512, no dropout, 30 epochs", "digits-mlp",
         {**WIDE, "model.dropout": 0.0}),
        ("the same, train.patience = 5", "digits-mlp",
         {**WIDE, "model.dropout": 0.0, "train.patience": 5}),
        ("the same, model.dropout = 0.3", "digits-mlp", {**WIDE, "model.dropout": 0.3}),
    ],
}  # fmt: skip


def spread(values: list[float]) -> str:
    """As the table prints them: 4 digits, not percent."""
    return seeded.spread(values, digits=4, scale=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", choices=sorted(CONFIGS))
    args = parser.parse_args()
    groups = [args.only] if args.only else list(CONFIGS)
    print("| config | test accuracy | test loss | ECE | what the curves say, per seed |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for group in groups:
            for label, recipe, overrides in CONFIGS[group]:
                accuracy, loss, ece, said = [], [], [], []
                for seed in range(args.seeds):
                    run = mlplab.train(recipe, overrides={**overrides, "train.seed": seed},
                                       out=folder, verbose=False, report=False)  # fmt: skip
                    accuracy.append(run.metrics["test_accuracy"])
                    loss.append(run.metrics["test_loss"])
                    ece.append(run.metrics["calibration"]["ece"])
                    found = read_curves(
                        run.history,
                        len(run.class_names),
                        run.config.train.learning_rate,
                        run.status,
                    )
                    said.append(", ".join(f.kind for f in found) or "-")
                print(
                    f"| {label} | {spread(accuracy)} | {spread(loss)} | {spread(ece)} "
                    f"| {'; '.join(said)} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
