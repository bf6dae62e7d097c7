"""How much of 784-1024-1024-10's epoch is Adam and dropout: the engine alone, four variants.

The `mlplab bench` network (relu, dropout 0.2, Adam, batch 128) and the same without dropout,
with SGD, and with both: 3 epochs each, ``--rounds`` times taking turns; steady seconds per
epoch of each round, and their share of the seconds the epoch's matrix products take when
timed alone (`mlplab bench`'s floor, measured once at the end). See docs/performance.md,
"Where a 784-1024-1024 step's time goes".

    python benchmarks/big_step_variants.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses

from mlplab import bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=60000)
    args = parser.parse_args()
    net = next(n for n in bench.NETWORKS if n.name.startswith("784-1024-1024"))
    variants = {
        "Adam, dropout 0.2": net,
        "Adam, no dropout": dataclasses.replace(net, dropout=0.0),
        "SGD, dropout 0.2": dataclasses.replace(net, optimizer="sgd"),
        "SGD, no dropout": dataclasses.replace(net, optimizer="sgd", dropout=0.0),
    }
    dataset, splits = bench.training_data(net, args.samples)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, variant in variants.items():
            seconds[name].append(bench._time_side("auto", variant, splits, dataset, 3)[0])
    samples = len(splits.y_train)
    _, floor = bench._floor(net, samples)
    print(f"products alone: {floor:.2f} s/epoch ({dataset.name}, {samples} samples)")
    print("| step | s/epoch | share of the products alone |")
    print("|---|---|---|")
    for name, times in seconds.items():
        shares = [floor / t for t in times]
        print(
            f"| {name} | {', '.join(f'{t:.2f}' for t in times)} | "
            f"{100 * min(shares):.0f}% to {100 * max(shares):.0f}% |"
        )


if __name__ == "__main__":
    main()
