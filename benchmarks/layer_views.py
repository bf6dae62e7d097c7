"""What each layer sees: k-NN accuracy on the pixels and on each hidden layer's outputs.

    python benchmarks/layer_views.py [--seeds 3] [--epochs 20] [--fashion]

Trains each config below once per seed on digits (no report, in a temporary folder; with
``--fashion`` also fast-fashion-mnist on Fashion-MNIST), then measures, on the same seeded
sample of up to 1000 test images as every report's ``layer_views.png``
(``mlplab.embedding.layer_views``), the leave-one-out 5-nearest-neighbour accuracy in the
pixels' space and in each hidden layer's: at the weights training started from (rebuilt
from the config and seed, ``mlplab.gradients.initial_weights``) and at the trained ones.
Printed as mean ± sample std over the seeds, in percent.
"""

from __future__ import annotations

import argparse
import tempfile

from seeded import quiet_run, spread

from mlplab.api import read_splits
from mlplab.embedding import layer_views
from mlplab.gradients import initial_weights

DEEP = {"model.hidden": [64] * 6}
CONFIGS = {
    "digits-mlp: 256-128 relu": ("digits-mlp", {}),
    "6 x 64 sigmoid, Glorot": ("digits-mlp", {**DEEP, "model.activation": "sigmoid",
                                              "model.kernel_initializer": "glorot_uniform"}),
    "6 x 64 tanh, Glorot": ("digits-mlp", {**DEEP, "model.activation": "tanh",
                                           "model.kernel_initializer": "glorot_uniform"}),
}  # fmt: skip
FASHION = {"fast-fashion-mnist: 256 relu": ("fast-fashion-mnist", {})}


def with_initial_weights(run) -> None:
    """Set the run's model back to the weights its training started from."""
    for layer, (trainable, others) in zip(
        run.model.layers, initial_weights(run.model, run.config), strict=True
    ):
        for variable, value in zip(layer.trainable_variables, trainable, strict=True):
            variable.assign(value)
        for variable, value in zip(layer.non_trainable_variables, others, strict=True):
            variable.assign(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20, help="for the digits configs")
    parser.add_argument("--fashion", action="store_true", help="also fast-fashion-mnist")
    args = parser.parse_args()
    configs = {**CONFIGS, **(FASHION if args.fashion else {})}
    print("| config | weights | pixels | hidden layers, first to last | the network |")
    print("|---|---|---|---|---|")
    for label, (recipe, overrides) in configs.items():
        rows: dict[str, list[list[float]]] = {"trained": [], "initial": []}
        with tempfile.TemporaryDirectory() as out:
            for seed in range(args.seeds):
                epochs = {"train.epochs": args.epochs} if recipe == "digits-mlp" else {}
                run = quiet_run(recipe, {**overrides, **epochs}, seed, out)
                dataset, _, _ = read_splits(run.config)
                for weights in ("trained", "initial"):
                    if weights == "initial":
                        with_initial_weights(run)
                    views = layer_views(run.model, dataset.x_test, dataset.y_test)
                    rows[weights].append([*views.neighbour_accuracy, views.network_accuracy])
        for weights, values in rows.items():
            columns = [spread([seed[i] for seed in values], 1) for i in range(len(values[0]))]
            hidden = " → ".join(columns[1:-1])
            print(f"| {label} | {weights} | {columns[0]} | {hidden} | {columns[-1]} |", flush=True)


if __name__ == "__main__":
    main()
