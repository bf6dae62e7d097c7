"""What `mlplab export --int8` costs in accuracy and gains in size, over seeds.

    python benchmarks/int8_export.py [--seeds 3]

Trains each config below once per seed (no report, in a temporary folder), exports it twice
(float32 and ``--int8``; both checked on the whole test split by onnxruntime, as `mlplab
export` does) and prints, as mean ± sample std over the seeds: the test accuracy of
model.keras and of the int8 file, their difference in points, the share of test images the
two label alike, and both files' sizes. Fashion-MNIST is Debian's copy (offline). Speed:
``benchmarks/predict_latency.py RUN`` (it times the int8 file beside the others).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from seeded import quiet_run, spread

import mlplab

CONFIGS = {
    "digits-mlp (64-256-128-10)": ("digits-mlp", {}),
    "fast-fashion-mnist (784-256-10)": ("fast-fashion-mnist", {}),
    "784-1024-1024-10, 6 epochs": (
        "fast-fashion-mnist",
        {"model.hidden": [1024, 1024], "train.epochs": 6},
    ),
    "784-256-128-10 sigmoid, SGD": (
        "fast-fashion-mnist",
        {
            "model.hidden": [256, 128],
            "model.activation": "sigmoid",
            "train.optimizer": "sgd",
            "train.learning_rate": 0.5,
            "train.epochs": 10,
        },
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(
        "| config | model.keras | int8 file | int8 minus float (points) | same label | "
        "size float → int8 |\n|---|---|---|---|---|---|"
    )
    for label, (recipe, overrides) in CONFIGS.items():
        keras, int8, same, sizes = [], [], [], []
        with tempfile.TemporaryDirectory() as out:
            for seed in range(args.seeds):
                run = quiet_run(recipe, overrides, seed, out)
                plain = mlplab.export_onnx(run, f"{out}/float.onnx")
                quantized = mlplab.export_onnx(run, f"{out}/int8.onnx", int8=True)
                keras.append(quantized.keras_accuracy)
                int8.append(quantized.accuracy)
                same.append(quantized.same_label / quantized.images)
                sizes.append((plain.size, quantized.size))
        differences = [(q - k) for q, k in zip(int8, keras, strict=True)]
        float_kib = statistics.mean(s[0] for s in sizes) / 1024
        int8_kib = statistics.mean(s[1] for s in sizes) / 1024
        print(
            f"| {label} | {spread(keras)} | {spread(int8)} | {spread(differences)} | "
            f"{spread(same)}% | {float_kib:,.0f} → {int8_kib:,.0f} KiB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
