"""How fast a run's model answers in onnxruntime (model.onnx) and in Keras (model.keras).

    python benchmarks/onnx_latency.py RUN [--singles 300] [--rounds 5]

Both sides in one process, on the same test images, taking turns round after round:
Keras is ``Run.predict`` (what `mlplab predict` and `mlplab serve` call: Keras' compiled
predict on JAX), onnxruntime is an ``InferenceSession`` on the bytes ``mlplab export`` writes.
Printed: median milliseconds for one image (``--singles`` calls a round) and images per
second for the whole test split in one call, each with the ratio Keras / onnxruntime and
its range over the rounds. Both are warmed up (compiled) before the clock starts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import mlplab
from mlplab.data import load_dataset
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
    sides = {"keras": run.predict, "onnx": onnx_predict}
    singles = [test[i : i + 1] for i in range(min(args.singles, len(test)))]
    for predict in sides.values():  # compile / warm up both shapes
        predict(singles[0])
        predict(test)

    single_ms: dict[str, list[float]] = {name: [] for name in sides}
    bulk_rate: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, predict in sides.items():
            per_call = [seconds(lambda image=image: predict(image)) for image in singles]
            single_ms[name].append(1000 * statistics.median(per_call))
            bulk_rate[name].append(len(test) / seconds(lambda: predict(test)))

    def ratio(values: dict[str, list[float]], faster: str, slower: str) -> str:
        ratios = [a / b for a, b in zip(values[slower], values[faster], strict=True)]
        return f"{statistics.median(ratios):.1f}x (range {min(ratios):.1f}-{max(ratios):.1f})"

    print(f"{run.config.name} ({run.path}), {len(test)} test images; {runtime}")
    print(f"{'':24}{'keras (Run.predict)':>22}{'onnxruntime':>14}  onnxruntime faster by")
    print(
        f"{'one image, ms (median)':24}{statistics.median(single_ms['keras']):>22.3f}"
        f"{statistics.median(single_ms['onnx']):>14.3f}  {ratio(single_ms, 'onnx', 'keras')}"
    )
    print(
        f"{'test split, images/s':24}{statistics.median(bulk_rate['keras']):>22,.0f}"
        f"{statistics.median(bulk_rate['onnx']):>14,.0f}  {ratio(bulk_rate, 'keras', 'onnx')}"
    )


if __name__ == "__main__":
    main()
