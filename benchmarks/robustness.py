"""How MLPs hold up when the test images are shifted, rotated or noisy; what augmentation does.

    python benchmarks/robustness.py [--seeds 3]

Trains each config below once per seed (no report, in a temporary folder), then measures
``mlplab.evaluate(run, robustness=True)`` (a seeded sample of up to 2000 test images; see
``mlplab.robustness``) and prints the accuracy as mean ± sample std over the seeds: as the
images are, shifted by 1 and 2 pixels, rotated by 10 and 20 degrees, and with noise of std
32. ``--only TEXT`` runs the configs whose label holds TEXT.
Fashion-MNIST is Debian's copy (offline).
"""

from __future__ import annotations

import argparse
import tempfile

from seeded import quiet_run, spread

import mlplab

CONFIGS = {
    "digits-mlp": ("digits-mlp", {}),
    "digits-mlp, augment.translate = 1": ("digits-mlp", {"augment.translate": 1}),
    "fast-fashion-mnist": ("fast-fashion-mnist", {}),
    "fast-fashion-mnist, augment.translate = 2": ("fast-fashion-mnist", {"augment.translate": 2}),
    "fast-fashion-mnist, 20 epochs": ("fast-fashion-mnist", {"train.epochs": 20}),
    "fast-fashion-mnist, 20 epochs, augment.translate = 2": (
        "fast-fashion-mnist",
        {"train.epochs": 20, "augment.translate": 2},
    ),
    "fast-fashion-mnist, augment.rotate = 15": ("fast-fashion-mnist", {"augment.rotate": 15}),
    "fast-fashion-mnist, 20 epochs, augment.rotate = 15": (
        "fast-fashion-mnist",
        {"train.epochs": 20, "augment.rotate": 15},
    ),
    "fast-fashion-mnist, 20 epochs, augment.rotate = 15, translate = 2": (
        "fast-fashion-mnist",
        {"train.epochs": 20, "augment.rotate": 15, "augment.translate": 2},
    ),
}
COLUMNS = (
    ("as they are", ("clean",)),
    ("shifted 1 px", ("shift", "1")),
    ("shifted 2 px", ("shift", "2")),
    ("rotated 10°", ("rotate", "10")),
    ("rotated 20°", ("rotate", "20")),
    ("noise std 32", ("noise", "32")),
)


def read(measured: dict, path: tuple[str, ...]) -> float:
    if len(path) == 1:
        return measured[path[0]]
    return measured[path[0]]["accuracy"][path[1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default="", help="only the configs whose label has this")
    args = parser.parse_args()
    print("| config | " + " | ".join(label for label, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    with tempfile.TemporaryDirectory() as out:
        for label, (recipe, overrides) in CONFIGS.items():
            if args.only not in label:
                continue
            measured = []
            for seed in range(args.seeds):
                run = quiet_run(recipe, overrides, seed, out)
                measured.append(mlplab.evaluate(run, robustness=True)["robustness"])
            cells = [spread([read(m, path) for m in measured], 1) for _, path in COLUMNS]
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
