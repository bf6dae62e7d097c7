"""Does the novelty check tell images unlike the training images from new ones like them?

    python benchmarks/novelty.py [--seeds 3]

For each seed, trains (no report, in a temporary folder):
- fast-fashion-mnist on Fashion-MNIST without two of its classes (Bag and Ankle boot: every
  image of classes 0-7, written as an .npz), then shows it the test images of classes 0-7
  (new images of the training kind) against images unlike them: the held-out Bag and Ankle
  boot test images, scikit-learn's 8x8 digits resized to 28x28, and uniform noise;
- digits-mlp on digits, shown its test images against Fashion-MNIST test images resized to
  8x8 and uniform noise.

For each kind of image it prints, as mean ± sample std over the seeds: the ROC AUC of the
run's novelty (``Run.novelty``: the k-th nearest-neighbour distance in the last hidden
layer) and of the largest probability (lower: more novel) at telling those images from the
test images, and the share of them that ``mlplab predict`` flags as unlike the training
images (the threshold flags 5% of the test images). With two seeds or more it also scores
the ensemble of each model's seeds (``mlplab.ensemble``: its novelty compares the members'
last hidden layers together), one row each.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import seeded  # this folder's shared helpers (the script's folder is on sys.path)
from PIL import Image
from sklearn.metrics import roc_auc_score

import mlplab

HELD_OUT = (8, 9)  # Bag, Ankle boot


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (n, h, w, 1) -> uint8 (n, size, size, 1), bilinear."""
    shrunk = [Image.fromarray(im[..., 0]).resize((size, size), Image.BILINEAR) for im in images]
    return np.stack([np.asarray(im) for im in shrunk])[..., None]


def scores(run: mlplab.Run, known: np.ndarray, unknown: np.ndarray) -> tuple[float, float, float]:
    """(AUC of the novelty, AUC of 1 - the largest probability, share of ``unknown`` flagged)."""
    truth = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
    far = run.novelty(unknown)
    novelty = np.r_[run.novelty(known), far]
    doubt = 1.0 - np.r_[run.predict(known).max(axis=1), run.predict(unknown).max(axis=1)]
    flagged = float(np.mean(far > run.novelty_reference.threshold))
    return roc_auc_score(truth, novelty), roc_auc_score(truth, doubt), flagged


def spread(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    """Mean ± sample std; one value as it is (an ensemble's row)."""
    return seeded.spread(values, digits=digits, scale=scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    fashion = mlplab.data.load_dataset("fashion-mnist", offline=True)
    digits = mlplab.data.load_dataset("digits")
    rng = np.random.default_rng(0)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        kept = Path(folder) / "fashion-8-classes.npz"
        train_kept, test_kept = fashion.y_train < HELD_OUT[0], fashion.y_test < HELD_OUT[0]
        np.savez(
            kept,
            x_train=fashion.x_train[train_kept],
            y_train=fashion.y_train[train_kept],
            x_test=fashion.x_test[test_kept],
            y_test=fashion.y_test[test_kept],
            class_names=np.array(fashion.class_names[: HELD_OUT[0]]),
        )
        known_fashion = fashion.x_test[test_kept]
        unknown_fashion = {
            "held-out classes (Bag, Ankle boot)": fashion.x_test[~test_kept],
            "digits resized to 28x28": resized(digits.x_test, 28),
            "uniform noise": rng.integers(0, 256, (1000, 28, 28, 1), dtype=np.uint8),
        }
        unknown_digits = {
            "Fashion-MNIST resized to 8x8": resized(fashion.x_test[:1000], 8),
            "uniform noise": rng.integers(0, 256, (1000, 8, 8, 1), dtype=np.uint8),
        }
        trained: dict[str, list[mlplab.Run]] = {"fashion": [], "digits": []}
        for seed in range(args.seeds):
            overrides = {"data.dataset": str(kept), "train.seed": seed}
            run = mlplab.train("fast-fashion-mnist", overrides=overrides, out=folder,
                               verbose=False, report=False)  # fmt: skip
            trained["fashion"].append(run)
            for name, images in unknown_fashion.items():
                rows.setdefault(f"fast-fashion-mnist (8 classes) | {name}", []).append(
                    scores(run, known_fashion, images)
                )
            run = mlplab.train("digits-mlp", overrides={"train.seed": seed}, out=folder,
                               verbose=False, report=False)  # fmt: skip
            trained["digits"].append(run)
            for name, images in unknown_digits.items():
                rows.setdefault(f"digits-mlp | {name}", []).append(
                    scores(run, digits.x_test, images)
                )
        if args.seeds >= 2:
            together = {
                "fashion": ("fast-fashion-mnist (8 classes)", known_fashion, unknown_fashion),
                "digits": ("digits-mlp", digits.x_test, unknown_digits),
            }
            for key, (label, known, unknown) in together.items():
                ensemble = mlplab.ensemble(trained[key], out=folder, report=False, verbose=False)
                for name, images in unknown.items():
                    rows[f"ensemble of {args.seeds} {label} | {name}"] = [
                        scores(ensemble, known, images)
                    ]
    print("| model | images unlike the training images | AUC, novelty | AUC, largest probability "
          "| flagged % |")  # fmt: skip
    print("|---|---|---|---|---|")
    for label, measured in rows.items():
        novelty, doubt, flagged = zip(*measured, strict=True)
        print(
            f"| {label} | {spread(list(novelty))} | {spread(list(doubt))} "
            f"| {spread(list(flagged), 100, 1)} |"
        )


if __name__ == "__main__":
    main()
