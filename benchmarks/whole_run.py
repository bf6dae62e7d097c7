"""Whole runs from process start to report written: mlplab against a plain Keras script.

    python benchmarks/whole_run.py [--repeats 2]

Runs each command ``repeats`` times in fresh processes (the first mlplab run may compile;
later ones find the compiled epoch in the cache) and prints wall seconds and peak RSS of
each, as a Markdown table. Needs Debian's dataset-fashion-mnist.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, last output line) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far: run the smaller command first.
    tail = [line for line in done.stdout.splitlines() if "test accuracy" in line][-1:]
    return wall, max(after, before) / 1024, (tail or [""])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    mlplab = str(Path(sys.executable).with_name("mlplab"))
    with tempfile.TemporaryDirectory() as out:
        commands = {
            "mlplab train (fused engine)": [
                mlplab,
                "train",
                "--dataset",
                "fashion-mnist",
                "--offline",
                "--epochs",
                "5",
                "--batch-size",
                "32",
                "--set",
                "model.hidden=[64, 64]",
                "--set",
                "model.dropout=0.0",
                "--set",
                'data.scaling="unit"',
                "--set",
                'model.kernel_initializer="glorot_uniform"',
                "--out",
                out,
                "-q",
            ],
            "plain Keras script (model.fit)": [
                sys.executable,
                str(HERE / "plain_keras_fashion.py"),
                os.path.join(out, "plain"),
            ],
        }
        print("| command | run | wall s | peak RSS MB (largest child so far) | result |")
        print("|---|---|---|---|---|")
        for name, command in commands.items():
            for repeat in range(1, args.repeats + 1):
                wall, rss, result = measure(command)
                print(
                    f"| {name} | {repeat} | {wall:.1f} | {rss:.0f} | {result.strip()} |", flush=True
                )


if __name__ == "__main__":
    main()
