"""What averaging networks from different seeds buys: accuracy, calibration, cost.

    python benchmarks/ensembles.py fast-fashion-mnist [--members 5] [--groups 3] [--set KEY=VALUE]

Trains ``members * groups`` runs of a recipe (seeds 0, 1, ...; no report, in a temporary
folder), makes one ``mlplab.ensemble`` of each group's runs, and prints, as mean ± sample
std: a single network's test accuracy and ECE (over all the runs), the ensemble's (over the
groups), and the accuracy of an ensemble of the first k members of each group for k = 1 ..
members. Then the cost of predicting: one image through ``Run.predict`` (the serve path),
median of 200 calls, for a single run and for an ensemble. Fashion-MNIST is Debian's copy
(offline).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
from seeded import quiet_run, spread

import mlplab
from mlplab.api import read_dataset


def latency(run: mlplab.Run, image: np.ndarray) -> float:
    """Median seconds of ``run.predict`` on one image (after a warm-up call)."""
    run.predict(image)
    times = []
    for _ in range(200):
        start = time.perf_counter()
        run.predict(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        groups = []
        for group in range(args.groups):
            runs = []
            for member in range(args.members):
                seed = group * args.members + member
                run = quiet_run(args.recipe, args.set, seed, out)
                runs.append(run)
                print(f"seed {seed}: {run.metrics['test_accuracy']:.4f}", flush=True)
            groups.append(runs)
        singles = [run for runs in groups for run in runs]
        by_size: dict[int, list[float]] = {k: [] for k in range(1, args.members + 1)}
        made = []
        for runs in groups:
            by_size[1] += [run.metrics["test_accuracy"] for run in runs]
            for k in range(2, args.members + 1):
                ensemble = mlplab.ensemble(runs[:k], out=out, report=False, verbose=False)
                by_size[k].append(ensemble.metrics["test_accuracy"])
            made.append(ensemble)
        print(f"\n{args.recipe} {' '.join(args.set)}")
        print("| model | runs | test accuracy % | ECE % | disagreement % |")
        print("|---|---|---|---|---|")
        print(
            f"| one network | {len(singles)} | "
            f"{spread([r.metrics['test_accuracy'] for r in singles])} | "
            f"{spread([r.calibration_error for r in singles])} | |"
        )
        print(
            f"| ensemble of {args.members} | {len(made)} | "
            f"{spread([e.metrics['test_accuracy'] for e in made])} | "
            f"{spread([e.calibration_error for e in made])} | "
            f"{spread([e.ensemble['disagreement'] for e in made])} |"
        )
        print("\n| members | test accuracy % |\n|---|---|")
        for k, scores in by_size.items():
            print(f"| {k} | {spread(scores)} |")
        data = read_dataset(singles[0].config.data)
        image = data.x_test[:1]
        one, many = latency(singles[0], image), latency(made[0], image)
        print(
            f"\npredict one image (Run.predict, median of 200): one network {1e3 * one:.2f} ms, "
            f"ensemble of {args.members} {1e3 * many:.2f} ms ({many / one:.1f}x)"
        )


if __name__ == "__main__":
    main()
