"""Answering only when sure: does a threshold read off some test images hold on others?

    python benchmarks/selective.py [--seeds 3]

Trains digits-mlp and fast-fashion-mnist once per seed (no report), predicts the test split,
and cuts it into two seeded halves. On the first half it picks, as every report's
``coverage.png`` does (``mlplab.metrics.selective``), the lowest probability threshold whose
answers are 99% (and 99.5%) right; on the second half it measures what that threshold does:
the share of images answered and the accuracy on them. Printed as mean ± sample std over the
seeds, beside the accuracy when answering everything.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from seeded import quiet_run, spread

from mlplab.api import read_splits
from mlplab.metrics import selective

RECIPES = ("digits-mlp", "fast-fashion-mnist")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(
        "| recipe | target | threshold (picked on half A) | answered on half B % "
        "| accuracy on them % | answering all % |"
    )
    print("|---|---|---|---|---|---|")
    for recipe in RECIPES:
        rows: dict[float, list[tuple[float, float, float, float]]] = {}
        with tempfile.TemporaryDirectory() as out:
            for seed in range(args.seeds):
                run = quiet_run(recipe, {}, seed, out)
                dataset, _, _ = read_splits(run.config)
                proba, y = run.predict(dataset.x_test), dataset.y_test
                half = np.random.default_rng(seed).permutation(len(y)) < len(y) // 2
                for target in selective(y[half], proba[half])["targets"][:2]:
                    if target["threshold"] is None:
                        continue
                    other = ~half
                    sure = proba[other].max(axis=1) >= target["threshold"]
                    right = proba[other].argmax(axis=1) == y[other]
                    rows.setdefault(target["accuracy"], []).append(
                        (target["threshold"], sure.mean(), right[sure].mean(), right.mean())
                    )
        for target, values in rows.items():
            threshold, answered, accuracy, everything = (list(v) for v in zip(*values, strict=True))
            print(
                f"| {recipe} | {100 * target:g}% | {np.mean(threshold):.4f} "
                f"({min(threshold):.4f} to {max(threshold):.4f}) | {spread(answered, 1)} "
                f"| {spread(accuracy)} | {spread(everything)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
