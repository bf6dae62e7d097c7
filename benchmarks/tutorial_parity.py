"""Tutorial recipes against the tutorials themselves, on Fashion-MNIST.

For each ``tutorial-*`` recipe: train it with mlplab (``--dataset fashion-mnist``), and train
the same network as the tutorial's plain Keras script would (``model.fit``, the tutorial's
scaling, optimizer, batch size, epochs and validation, Keras' own ``validation_split``),
on the same data, for the same seeds. Prints a Markdown table of test accuracies.

    python benchmarks/tutorial_parity.py [--recipes NAME ...] [--seeds 0 1 2] [--epochs N]
                                         [--only mlplab|plain]

``--epochs`` caps the epochs of both sides (for a quick look; the table says so). ``--only``
trains one side, so that two processes (one per side, e.g. pinned with ``taskset``) can share
a long comparison; the other side's columns then read "-".
Needs Fashion-MNIST (Debian's dataset-fashion-mnist, or `mlplab datasets fetch`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

import mlplab
from mlplab.config import RunConfig
from mlplab.data import load_dataset

TUTORIALS = (
    "tutorial-adam-mnist",
    "tutorial-adam-mnist-dropout",
    "tutorial-l2-mnist",
    "tutorial-tanh-mnist",
    "tutorial-sigmoid-mnist",
    "tutorial-relu-cifar10",
)


def scale(x: np.ndarray, x_train: np.ndarray, scaling: str) -> np.ndarray:
    """The tutorials' input scaling, done by hand as their scripts do. uint8 -> float32."""
    flat = x.reshape(len(x), -1).astype(np.float32)
    if scaling == "unit":
        return flat / 255.0
    if scaling == "centered":
        return flat / 255.0 - 0.5
    # standardize: the tanh tutorial's [-1, 1], minus the per-pixel mean, over the global std
    train = x_train.reshape(len(x_train), -1).astype(np.float32) / 127.5 - 1.0
    mean = train.mean(axis=0)
    std = (train - mean).std()
    return (flat / 127.5 - 1.0 - mean) / std


def plain_keras(config: RunConfig, data, seed: int, epochs: int) -> float:
    """The tutorial's script: Sequential Dense stack, compile, fit, evaluate. Test accuracy."""
    import keras

    keras.utils.set_random_seed(seed)
    model_cfg, train_cfg = config.model, config.train
    x_train = scale(data.x_train, data.x_train, config.data.scaling)
    x_test = scale(data.x_test, data.x_train, config.data.scaling)
    y_train = keras.utils.to_categorical(data.y_train, 10)
    y_test = keras.utils.to_categorical(data.y_test, 10)
    regularizer = keras.regularizers.L2(model_cfg.l2) if model_cfg.l2 else None
    layers: list = [keras.Input((x_train.shape[1],))]
    for units in model_cfg.hidden:
        layers.append(
            keras.layers.Dense(
                units,
                activation=model_cfg.activation,
                kernel_initializer=model_cfg.kernel_initializer,
                kernel_regularizer=regularizer,
            )
        )
        if model_cfg.dropout:
            layers.append(keras.layers.Dropout(model_cfg.dropout))
    layers.append(keras.layers.Dense(10, activation="softmax", kernel_regularizer=regularizer))
    model = keras.Sequential(layers)
    rate = train_cfg.learning_rate
    if train_cfg.decay:  # Keras 2's SGD(decay=...), which Keras 3 spells as a schedule
        rate = keras.optimizers.schedules.InverseTimeDecay(rate, 1, train_cfg.decay)
    if train_cfg.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(rate, momentum=train_cfg.momentum)
    else:
        optimizer = keras.optimizers.Adam(rate)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    validation = config.data.validation
    model.fit(
        x_train,
        y_train,
        batch_size=train_cfg.batch_size,
        epochs=epochs,
        validation_data=(x_test, y_test) if validation == "test" else None,
        validation_split=validation if isinstance(validation, float) else 0.0,
        verbose=0,
    )
    return float(model.evaluate(x_test, y_test, verbose=0)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(TUTORIALS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="cap the epochs of both sides")
    parser.add_argument("--only", choices=("mlplab", "plain"), help="train one side only")
    args = parser.parse_args()
    data = load_dataset("fashion-mnist", offline=True)
    print(
        "| recipe | epochs | mlplab test acc (mean ± std) | plain Keras test acc (mean ± std) "
        "| difference | mlplab s | plain s |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        for name in args.recipes:
            config = mlplab.resolve_config(name, {"data.dataset": "fashion-mnist"})
            epochs = min(args.epochs or config.train.epochs, config.train.epochs)
            ours, theirs, our_s, their_s = [], [], 0.0, 0.0
            for seed in args.seeds:
                if args.only != "plain":
                    start = time.perf_counter()
                    run = mlplab.train(
                        config,
                        overrides={"train.seed": seed, "train.epochs": epochs},
                        out=out,
                        verbose=False,
                        report=False,
                        offline=True,
                    )
                    our_s += time.perf_counter() - start
                    ours.append(run.metrics["test_accuracy"])
                if args.only != "mlplab":
                    start = time.perf_counter()
                    theirs.append(plain_keras(config, data, seed, epochs))
                    their_s += time.perf_counter() - start
            difference = (
                f"{100 * (statistics.mean(ours) - statistics.mean(theirs)):+.2f} points"
                if ours and theirs
                else "-"
            )
            print(
                f"| {name} | {epochs} | {_mean_std(ours)} | {_mean_std(theirs)} | {difference} "
                f"| {our_s:.0f} | {their_s:.0f} |",
                flush=True,
            )


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * spread:.2f}"


if __name__ == "__main__":
    main()
