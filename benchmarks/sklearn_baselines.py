"""mlplab.MLPClassifier beside scikit-learn's classifiers, on the same folds, in one process.

    python benchmarks/sklearn_baselines.py [--dataset digits|fashion-mnist] [--seeds 3]

digits: scikit-learn's ``load_digits`` rows (float 0..16) as scikit-learn hands them out, a
stratified 5-fold cross-validation repeated with ``--seeds`` shuffles (5 x seeds fits per
model). fashion-mnist (Debian's copy or the cache; never downloaded here): the official
60,000/10,000 split, one fit per seed. Prints each model's test accuracy over the folds or
seeds as mean ± sample std, and its mean seconds per fit (``fit`` alone; mlplab's first fit
includes compiling the epoch, later ones read the compilation cache).

The MLPs are the same network where both libraries can build it (hidden sizes, relu, Adam,
learning rate, batch size, epochs); scikit-learn's has its default L2 (alpha 1e-4) and stops
when the training loss stalls for 10 epochs; mlplab's recipe has dropout where it says so.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import mlplab
from mlplab.data import load_dataset

Factory = Callable[[int], object]


def sklearn_mlp(batch: int, epochs: int) -> Factory:
    """scikit-learn's MLP with mlplab's default network, on standardized rows."""
    return lambda seed: make_pipeline(
        StandardScaler(),
        SklearnMLP((256, 128), batch_size=batch, max_iter=epochs, random_state=seed),
    )


def logistic(max_iter: int) -> Factory:
    return lambda seed: make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))


def digits_models() -> dict[str, Factory]:
    return {
        "mlplab.MLPClassifier() (digits-mlp: 256-128 relu, dropout 0.3, Adam, batch 32, "
        "50 epochs)": lambda seed: mlplab.MLPClassifier(random_state=seed),
        "mlplab.MLPClassifier(dropout=0) (the same without dropout)": lambda seed: (
            mlplab.MLPClassifier(dropout=0.0, random_state=seed)
        ),
        "sklearn MLPClassifier((256, 128), batch 32, max_iter 50) + StandardScaler": (
            sklearn_mlp(32, 50)
        ),
        "sklearn LogisticRegression + StandardScaler": logistic(2000),
        "sklearn SVC (rbf) + StandardScaler": lambda seed: make_pipeline(StandardScaler(), SVC()),
    }


def fashion_models() -> dict[str, Factory]:
    return {
        "mlplab.MLPClassifier('fast-fashion-mnist') (784-256, AdamW one-cycle, 4 epochs)": (
            lambda seed: mlplab.MLPClassifier("fast-fashion-mnist", random_state=seed)
        ),
        "mlplab.MLPClassifier(hidden=[256, 128], batch 128, 10 epochs)": lambda seed: (
            mlplab.MLPClassifier(
                hidden=[256, 128], dropout=0.0, batch_size=128, epochs=10, random_state=seed
            )
        ),
        "sklearn MLPClassifier((256, 128), batch 128, max_iter 10) + StandardScaler": (
            sklearn_mlp(128, 10)
        ),
        "sklearn LogisticRegression + StandardScaler": logistic(200),
    }


def fit_and_score(
    model: object, x_train, y_train, x_test, y_test
) -> tuple[float, float, int | None]:
    """Test accuracy, seconds to fit, and epochs trained (MLPs; None for the others)."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: as asked
        model.fit(x_train, y_train)
    seconds = time.perf_counter() - started
    final = model[-1] if isinstance(model, Pipeline) else model
    epochs = final.n_iter_ if isinstance(final, (SklearnMLP, mlplab.MLPClassifier)) else None
    return float(model.score(x_test, y_test)), seconds, epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "fashion-mnist"], default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    if args.dataset == "digits":
        X, y = load_digits(return_X_y=True)
        folds = [
            (train, test)
            for seed in range(args.seeds)
            for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)
        ]
        models = digits_models()
        print(f"digits rows (1797, 64), 5-fold CV x {args.seeds} shuffles = {len(folds)} fits")
    else:
        data = load_dataset("fashion-mnist", offline=True)
        X = np.concatenate([data.x_train, data.x_test]).reshape(70000, -1)
        y = np.concatenate([data.y_train, data.y_test])
        folds = [(np.arange(60000), np.arange(60000, 70000))] * args.seeds
        models = fashion_models()
        print(f"fashion-mnist 60000/10000 (rows of 784 pixels), {args.seeds} seeds")

    print("| model | test accuracy (mean ± std) | s per fit | epochs per fit |")
    print("|---|---|---|---|")
    for name, make in models.items():
        scores, seconds, epochs = [], [], []
        for i, (train, test) in enumerate(folds):
            seed = i // 5 if args.dataset == "digits" else i
            score, spent, trained = fit_and_score(make(seed), X[train], y[train], X[test], y[test])
            scores.append(score)
            seconds.append(spent)
            epochs.append(trained)
        shown = "" if epochs[0] is None else f"{statistics.mean(epochs):.1f}"
        print(
            f"| {name} | {100 * statistics.mean(scores):.2f} ± "
            f"{100 * statistics.stdev(scores):.2f} | {statistics.mean(seconds):.2f} | {shown} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
