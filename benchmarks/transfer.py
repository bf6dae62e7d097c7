"""Does ``model.init_from`` help a network learn new classes from few images? Fashion-MNIST
split in two: half the classes to learn features on, the other half to fine-tune on.

    python benchmarks/transfer.py [--seeds 5] [--per-class 10,100,1000]

The source network learns classes 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat) from
all their 30,000 training images (Debian's copy, offline), once. Then, for each size and
seed, a seeded draw of that many training images per class of classes 5-9 (Sandal, Shirt,
Sneaker, Bag, Ankle boot) trains the same network twice: from random weights, and from the
source's weights (its hidden layers; a new output layer, since the classes differ). Both
hold out 20% of the drawn images to validate on, stop early after 20 epochs without a
lower validation loss and keep the best epoch; both are scored on the 5,000 test images of
classes 5-9. The network is the default recipe's (784-256-128 relu, dropout 0.3, Adam at
0.001, standardized pixels, batch 32). Prints test accuracy as mean ± sample std over the
seeds, and epochs trained.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
from seeded import quiet_run, spread

import mlplab

SOURCE_CLASSES = range(5)
TARGET_CLASSES = range(5, 10)
SOURCE = {"train.batch_size": 128, "train.epochs": 30, "train.patience": 5}
TARGET = {"data.validation": 0.2, "train.epochs": 300, "train.patience": 20}


def write_npz(path: Path, data: mlplab.data.Dataset, classes: range, train: np.ndarray) -> None:
    """Classes ``classes`` of ``data`` as an .npz of named labels: the training images at
    indices ``train`` and every test image of those classes."""
    names = np.array(data.class_names)
    test = np.isin(data.y_test, classes)
    np.savez(
        path,
        x_train=data.x_train[train],
        y_train=names[data.y_train[train]],
        x_test=data.x_test[test],
        y_test=names[data.y_test[test]],
    )


def drawn(data: mlplab.data.Dataset, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` training images of each target class, seeded."""
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(data.y_train == label), per_class, replace=False)
        for label in TARGET_CLASSES
    ]
    return np.sort(np.concatenate(picks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--per-class", default="10,100,1000")
    parser.add_argument(
        "--fine-tune-lr",
        type=float,
        help="also train from the source's weights at this learning rate (a third column)",
    )
    args = parser.parse_args()
    arms = {"from random weights": {}, "from the source's": {"model.init_from": None}}
    if args.fine_tune_lr:
        arms[f"from the source's, lr {args.fine_tune_lr:g}"] = {
            "model.init_from": None,
            "train.learning_rate": args.fine_tune_lr,
        }
    sizes = [int(size) for size in args.per_class.split(",")]
    data = mlplab.data.load_dataset("fashion-mnist", offline=True)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        source_npz = out / "source.npz"
        write_npz(source_npz, data, SOURCE_CLASSES, np.flatnonzero(data.y_train < 5))
        source = quiet_run("digits-mlp", {**SOURCE, "data.dataset": str(source_npz)}, 0, out)
        print(
            f"source: classes 0-4, {len(source.history)} epochs, test accuracy "
            f"{source.metrics['test_accuracy']:.4f}\n"
        )
        print(f"| images per class | {' | '.join(arms)} | epochs |")
        print("|---" * (len(arms) + 2) + "|")
        for per_class in sizes:
            scores: dict[str, list[float]] = {arm: [] for arm in arms}
            epochs: dict[str, list[int]] = {arm: [] for arm in arms}
            for seed in range(args.seeds):
                target_npz = out / f"target-{per_class}-{seed}.npz"
                write_npz(target_npz, data, TARGET_CLASSES, drawn(data, per_class, seed))
                for arm, settings in arms.items():
                    start = {k: str(source.path) if v is None else v for k, v in settings.items()}
                    run = quiet_run(
                        "digits-mlp",
                        {**TARGET, "data.dataset": str(target_npz), **start},
                        seed,
                        out,
                    )
                    scores[arm].append(run.metrics["test_accuracy"])
                    epochs[arm].append(len(run.history))
            shown = " | ".join(spread(scores[arm]) for arm in arms)
            trained = ", ".join(f"{statistics.mean(epochs[arm]):.0f}" for arm in arms)
            print(f"| {per_class} | {shown} | {trained} |", flush=True)


if __name__ == "__main__":
    main()
