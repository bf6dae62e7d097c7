"""What each XLA option the fused engine compiles with does to its epoch, network by network.

For each network the engine trains 3 epochs with each set of options in turn (XLA's
defaults; the memory-optimised scheduler; XLA's own matrix kernels instead of YNNPACK's;
both), ``--rounds`` times, and prints the median steady seconds per epoch of each set and
its ratio to the defaults. This is the measurement behind ``fused.epoch_compiler_options``
(docs/performance.md, "XLA's options for the engine's epoch").

    python benchmarks/xla_options.py                        # the four `mlplab bench` networks
    python benchmarks/xla_options.py --network 784-64 --network "784-128-128 b32"
"""

from __future__ import annotations

import argparse
import statistics

from mlplab import bench, fused

SETS = {
    "defaults": {},
    "scheduler": fused.SCHEDULER_OPTION,
    "own kernels": fused.OWN_KERNELS_OPTION,
    "both": {**fused.SCHEDULER_OPTION, **fused.OWN_KERNELS_OPTION},
}
# Besides `mlplab bench`'s four: the sizes around the small-step threshold.
EXTRA = (
    bench.Network("784-64-64-10 relu adam b64", (28, 28, 1), (64, 64), "relu", "adam", 64),
    bench.Network("784-128-128-10 relu adam b32", (28, 28, 1), (128, 128), "relu", "adam", 32),
    bench.Network("784-256-128-10 relu adam b32", (28, 28, 1), (256, 128), "relu", "adam", 32),
    bench.Network("784-512-512-10 relu adam b128", (28, 28, 1), (512, 512), "relu", "adam", 128),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", action="append", help="name prefix (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=60000)
    args = parser.parse_args()
    networks = [
        net
        for net in (*bench.NETWORKS, *EXTRA)
        if (args.network is None and net in bench.NETWORKS)
        or (args.network and any(net.name.startswith(p) for p in args.network))
    ]
    print("| network | batch x parameters | " + " | ".join(SETS) + " |")
    print("|---|---|" + "---|" * len(SETS))
    for net in networks:
        dataset, splits = bench.training_data(net, args.samples)
        seconds: dict[str, list[float]] = {name: [] for name in SETS}
        for _ in range(args.rounds):
            for name, options in SETS.items():
                # The engine asks this function which options to compile its epoch with.
                fused.epoch_compiler_options = lambda parameters, batch, o=options: dict(o)
                seconds[name].append(bench._time_side("auto", net, splits, dataset, 3)[0])
        medians = {name: statistics.median(times) for name, times in seconds.items()}
        multiply_adds = net.batch_size * sum(a * b + b for a, b in bench._layer_shapes(net))
        base = medians["defaults"]
        cells = [f"{medians[name]:.3f} ({medians[name] / base:.2f})" for name in SETS]
        row = f"| {net.name} | {multiply_adds / 1e6:.1f} M | " + " | ".join(cells) + " |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
