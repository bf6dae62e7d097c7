"""train.class_weight on imbalanced data: Fashion-MNIST with classes 5-9 cut to 5%.

    python benchmarks/imbalanced_fashion.py [--recipe fast-fashion-mnist] [--seeds 3]

Keeps every training image of classes 0-4 and a seeded 5% of classes 5-9 (about 300 each),
writes them with the whole (balanced) test split to an .npz in a temporary folder, and trains
the recipe on it with ``train.class_weight`` "none" and "balanced", one run per seed. Prints
mean ± sample std over the seeds of the test accuracy, macro F1, and the mean recall of the
rare and of the common classes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

import mlplab
from mlplab.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast-fashion-mnist")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    data = load_dataset("fashion-mnist", offline=True)
    keep = (data.y_train < 5) | (np.random.default_rng(0).random(len(data.y_train)) < 0.05)
    print("training images per class:", np.bincount(data.y_train[keep]).tolist())
    with tempfile.TemporaryDirectory() as folder:
        rare = Path(folder) / "fashion-rare.npz"
        np.savez(
            rare,
            x_train=data.x_train[keep],
            y_train=data.y_train[keep],
            x_test=data.x_test,
            y_test=data.y_test,
        )
        for weighting in ("none", "balanced"):
            scores: dict[str, list[float]] = {
                "accuracy": [],
                "macro F1": [],
                "rare": [],
                "common": [],
            }
            for seed in range(args.seeds):
                run = mlplab.train(
                    args.recipe,
                    overrides={
                        "data.dataset": str(rare),
                        "train.seed": seed,
                        "train.class_weight": weighting,
                    },
                    out=Path(folder) / "runs",
                    verbose=False,
                    report=False,
                )
                metrics = run.metrics
                recall = [metrics["per_class"][name]["recall"] for name in run.class_names]
                scores["accuracy"].append(metrics["test_accuracy"])
                scores["macro F1"].append(metrics["macro_avg"]["f1"])
                scores["rare"].append(float(np.mean(recall[5:])))
                scores["common"].append(float(np.mean(recall[:5])))
            shown = "  ".join(
                f"{name} {statistics.mean(v):.4f} ± {statistics.stdev(v) if len(v) > 1 else 0:.4f}"
                for name, v in scores.items()
            )
            print(f"class_weight={weighting:9} {shown}")


if __name__ == "__main__":
    main()
