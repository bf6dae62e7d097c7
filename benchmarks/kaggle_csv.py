"""Fashion-MNIST as Kaggle's CSVs trains the same run as its IDX files.

    python benchmarks/kaggle_csv.py [--seeds 3]

Writes Debian's Fashion-MNIST as Kaggle's ``fashion-mnist_train.csv`` and
``fashion-mnist_test.csv`` (``label,pixel1,...,pixel784``, 60,000 and 10,000 rows) in a
temporary folder, then trains ``fast-fashion-mnist`` on the IDX files and on the CSVs for
each seed, and prints both test accuracies and losses, how long reading each took, and
whether the two runs agree to the last digit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import mlplab
from mlplab.data import load_dataset


def write_kaggle_csvs(folder: Path) -> Path:
    """fashion-mnist_{train,test}.csv in Kaggle's layout; returns the train file."""
    data = load_dataset("fashion-mnist", offline=True)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    for part, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        table = np.column_stack([y, x.reshape(len(x), -1)])
        path = folder / f"fashion-mnist_{part}.csv"
        np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")
    return folder / "fashion-mnist_train.csv"


def seconds_to_read(spec: str) -> float:
    began = time.perf_counter()
    load_dataset(spec, offline=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        csv = write_kaggle_csvs(Path(folder))
        print(
            f"read: IDX files {seconds_to_read('fashion-mnist'):.2f} s, "
            f"Kaggle CSVs {seconds_to_read(str(csv)):.2f} s"
        )
        columns = ["seed", "IDX test accuracy", "CSV test accuracy", "IDX loss", "CSV loss", "same"]
        print("| " + " | ".join(columns) + " |")
        print("|---|---|---|---|---|---|")
        for seed in range(args.seeds):
            runs = [
                mlplab.train(
                    "fast-fashion-mnist",
                    overrides={"data.dataset": dataset, "train.seed": seed},
                    out=Path(folder) / "runs",
                    verbose=False,
                    report=False,
                    offline=True,
                ).metrics
                for dataset in ("fashion-mnist", str(csv))
            ]
            same = all(runs[0][k] == runs[1][k] for k in ("test_accuracy", "test_loss"))
            print(
                f"| {seed} | {runs[0]['test_accuracy']:.4f} | {runs[1]['test_accuracy']:.4f} "
                f"| {runs[0]['test_loss']:.4f} | {runs[1]['test_loss']:.4f} | {same} |"
            )


if __name__ == "__main__":
    main()
