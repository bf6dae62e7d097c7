"""Finding mislabelled images: how many of a known set of flipped labels `label-issues` finds.

    python benchmarks/label_issues.py [--seeds 3] [--noise 0.02,0.05,0.1] [--fashion]

For each noise rate and seed: every image of digits (all 1797; with ``--fashion`` also
Fashion-MNIST's 70,000) gets a seeded share of its labels changed to another class, chosen
uniformly, and written as an .npz; ``mlplab.label_issues.audit_labels`` (5 folds of the
recipe, digits-mlp or fast-fashion-mnist) then flags the images it thinks mislabelled.
Printed, as mean ± sample std over the seeds: precision (the share of flagged images whose
label was changed), recall (the share of changed labels flagged), and how many images were
flagged against how many were changed. Images the dataset itself has mislabelled count
against precision here, so it is a lower bound.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from seeded import spread

from mlplab.data import load_dataset
from mlplab.label_issues import audit_labels


def noisy_npz(name: str, rate: float, seed: int, folder: Path) -> tuple[Path, np.ndarray]:
    """All of ``name``'s images with a share ``rate`` of labels changed to another class:
    the .npz and the indices changed."""
    data = load_dataset(name)
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    rng = np.random.default_rng(1000 + seed)
    changed = np.sort(rng.choice(len(y), round(rate * len(y)), replace=False))
    y = y.copy()
    y[changed] = (y[changed] + rng.integers(1, data.num_classes, len(changed))) % data.num_classes
    path = folder / f"{name}-noise{rate:g}-seed{seed}.npz"
    np.savez(path, x_train=x, y_train=y)
    return path, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--noise", default="0.02,0.05,0.1")
    parser.add_argument("--fashion", action="store_true", help="also Fashion-MNIST")
    args = parser.parse_args()
    cases = [("digits", "digits-mlp")] + (
        [("fashion-mnist", "fast-fashion-mnist")] if args.fashion else []
    )
    print(
        "| dataset (recipe) | labels changed | precision % | recall % | flagged / changed "
        "| seconds per audit |"
    )
    print("|---|---|---|---|---|---|")
    for dataset, recipe in cases:
        for rate in [float(part) for part in args.noise.split(",")]:
            precision, recall, counts, seconds = [], [], [], []
            for seed in range(args.seeds):
                with tempfile.TemporaryDirectory() as folder:
                    path, changed = noisy_npz(dataset, rate, seed, Path(folder))
                    audit = audit_labels(
                        recipe,
                        overrides={"data.dataset": str(path), "train.seed": seed},
                        out=folder,
                        verbose=False,
                    )
                flagged = audit.issues.indices
                hits = len(np.intersect1d(flagged, changed))
                precision.append(hits / max(len(flagged), 1))
                recall.append(hits / len(changed))
                counts.append(f"{len(flagged)}/{len(changed)}")
                seconds.append(audit.seconds)
            print(
                f"| {dataset} ({recipe}) | {100 * rate:g}% | {spread(precision, 1)} | "
                f"{spread(recall, 1)} | {', '.join(counts)} | {np.mean(seconds):.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
