"""How calibrated are the recipes; what label smoothing and train.calibrate do to it.

    python benchmarks/calibration.py [--seeds 3]

Trains each config below once per seed (no report, in a temporary folder) and prints the
test accuracy and the expected calibration error (ECE, 15 bins: ``metrics.json``'s
``calibration``) as mean ± sample std over the seeds, with the mean confidence beside the
accuracy (above it: over-confident). Fashion-MNIST is Debian's copy (offline).
"""

from __future__ import annotations

import argparse
import tempfile

from seeded import quiet_run, spread

OVERFIT = {
    "data.dataset": "fashion-mnist",
    "data.validation": 0.0,
    "model.hidden": [256, 128],
    "model.dropout": 0.0,
    "train.batch_size": 128,
    "train.epochs": 30,
}
# train.calibrate fits its temperature on a validation split: 10% of the training images,
# held out where the config had none (so those rows train on 90% of them).
CALIBRATE = {"train.calibrate": True, "data.validation": 0.1}
CONFIGS = {
    "digits-mlp": ("digits-mlp", {}),
    "digits-mlp, calibrate": ("digits-mlp", CALIBRATE),
    "digits-mlp, label_smoothing 0.1": ("digits-mlp", {"train.label_smoothing": 0.1}),
    "digits-mlp, label_smoothing 0.1, calibrate": (
        "digits-mlp",
        {"train.label_smoothing": 0.1, **CALIBRATE},
    ),
    "fast-fashion-mnist": ("fast-fashion-mnist", {}),
    "fast-fashion-mnist, calibrate": ("fast-fashion-mnist", CALIBRATE),
    "fast-fashion-mnist, label_smoothing 0.1": (
        "fast-fashion-mnist",
        {"train.label_smoothing": 0.1},
    ),
    "fast-fashion-mnist, label_smoothing 0.1, calibrate": (
        "fast-fashion-mnist",
        {"train.label_smoothing": 0.1, **CALIBRATE},
    ),
    "784-256-128 Adam, 30 epochs, no regularisation": ("digits-mlp", OVERFIT),
    "the same, calibrate": ("digits-mlp", {**OVERFIT, **CALIBRATE}),
    "the same, label_smoothing 0.1": ("digits-mlp", {**OVERFIT, "train.label_smoothing": 0.1}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("| config | test accuracy % | ECE % | mean confidence % |")
    print("|---|---|---|---|")
    for label, (recipe, overrides) in CONFIGS.items():
        accuracy, ece, confidence = [], [], []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as out:
                run = quiet_run(recipe, overrides, seed, out, offline=True)
            accuracy.append(run.metrics["test_accuracy"])
            ece.append(run.metrics["calibration"]["ece"])
            confidence.append(run.metrics["calibration"]["mean_confidence"])
        print(
            f"| {label} | {spread(accuracy)} | {spread(ece)} | {spread(confidence)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
