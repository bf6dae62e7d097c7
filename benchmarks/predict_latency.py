"""How fast a run's model answers: Keras' model.predict, mlplab's Run.predict, onnxruntime.

    python benchmarks/predict_latency.py RUN [--singles 300] [--rounds 5]

Four sides in one process, on the same test images, taking turns round after round:
``model.predict`` (Keras on JAX, with mlplab's power-of-two padding: what Run.predict was),
``Run.predict`` (what `mlplab predict`, `evaluate` and `serve` call: the fused engine's
compiled prediction on JAX), onnxruntime on the bytes ``mlplab export`` writes, and on
those ``mlplab export --int8`` writes.
Printed: median milliseconds for one image (``--singles`` calls a round) and images per
second for the whole test split in one call, each with its ratio to ``model.predict``
(median over the rounds, and the range). Every side is compiled / warmed up first.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import mlplab
from mlplab.data import load_dataset
from mlplab.engine import FitTrainer
from mlplab.onnx_export import onnx_runner, to_onnx


def seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run directory (or 'last')")
    parser.add_argument("--singles", type=int, default=300, help="one-image calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    run = mlplab.load_run(args.run)
    test = load_dataset(run.config.data.dataset, offline=True).x_test
    onnx_predict, runtime = onnx_runner(to_onnx(run.model))
    int8_predict, _ = onnx_runner(to_onnx(run.model, int8=True))
    keras_fit = FitTrainer()
    sides: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "model.predict": lambda x: keras_fit.predict(run.model, x),
        "Run.predict": run.predict,
        "onnxruntime": onnx_predict,
        "onnxruntime int8": int8_predict,
    }
    singles = [test[i : i + 1] for i in range(min(args.singles, len(test)))]
    for predict in sides.values():  # compile / warm up both shapes
        predict(singles[0])
        predict(test)

    single_ms: dict[str, list[float]] = {name: [] for name in sides}
    bulk_rate: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, predict in sides.items():
            per_call = [seconds(lambda i=image, p=predict: p(i)) for image in singles]
            single_ms[name].append(1000 * statistics.median(per_call))
            bulk_rate[name].append(len(test) / seconds(lambda p=predict: p(test)))

    def row(label: str, values: dict[str, list[float]], faster_when_lower: bool) -> str:
        cells = [f"{label:28}"]
        base = values["model.predict"]
        for measured in values.values():
            pairs = zip(base, measured, strict=True)
            ratios = [b / m if faster_when_lower else m / b for b, m in pairs]
            value = statistics.median(measured)
            shown = f"{value:.3f}" if faster_when_lower else f"{value:,.0f}"
            cells.append(
                f"{shown:>10} {statistics.median(ratios):5.1f}x "
                f"({min(ratios):.1f}-{max(ratios):.1f})"
            )
        return "  ".join(cells)

    print(f"{run.config.name} ({run.path}), {len(test)} test images; {runtime}")
    print(f"{'':28}  " + "  ".join(f"{name:>26}" for name in sides))
    print(row("one image, ms (median)", single_ms, faster_when_lower=True))
    print(row("test split, images/s", bulk_rate, faster_when_lower=False))
    print("(each cell: the value, then how many times model.predict's speed, median and range)")


if __name__ == "__main__":
    main()
