"""Test accuracy of recipes over several seeds: mean ± std, and wall time per run.

    python benchmarks/recipe_seeds.py digits-mlp digits-softmax --seeds 5
    python benchmarks/recipe_seeds.py digits-mlp --seeds 5 --set train.engine=fit

Prints a Markdown table (the one in docs/results.md). Runs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import mlplab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run",
    )
    args = parser.parse_args()
    print("| recipe | test accuracy (mean ± std) | seeds | epochs | wall s per run |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        for recipe in args.recipes:
            runs = [
                mlplab.train(
                    recipe,
                    overrides=[*args.overrides, f"train.seed={seed}"],
                    out=out,
                    verbose=False,
                )
                for seed in range(args.seeds)
            ]
            accuracy = [100 * run.metrics["test_accuracy"] for run in runs]
            wall = [run.metrics["wall_seconds"] for run in runs]
            print(
                f"| {recipe} | {statistics.mean(accuracy):.2f} ± {statistics.stdev(accuracy):.2f}"
                f" | {args.seeds} | {runs[0].config.train.epochs} | {statistics.mean(wall):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
