"""Whole runs from process start to report written: mlplab against a plain Keras script.

    python benchmarks/whole_run.py [--repeats 3]

Runs the two commands in turn, ``repeats`` rounds (alternating which goes first), each in a
fresh process: the host's speed drifts by minutes, so the two sides of a round share one
minute. Prints each run's wall seconds and peak RSS as a Markdown table, then the median of
the rounds' ratios with its range. The first mlplab run may compile; later ones find the
compiled epoch in the cache (a first round is run and left out to warm it). Needs Debian's
dataset-fashion-mnist.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, the line with the test accuracy) of one fresh
    process; the RSS is that process's own (os.wait4)."""
    with tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    if process.returncode:
        raise SystemExit(f"{command[0]} failed ({process.returncode}):\n{text[-2000:]}")
    tail = [line for line in text.splitlines() if "test accuracy" in line][-1:]
    return wall, usage.ru_maxrss / 1024, (tail or [""])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
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
        mlplab_name, plain_name = commands
        measure(commands[mlplab_name])  # warms the compilation cache; not counted
        print("| round | command | wall s | peak RSS MB | result |")
        print("|---|---|---|---|---|")
        walls: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(1, args.repeats + 1):
            order = list(commands.items())
            if round_ % 2 == 0:
                order.reverse()
            for name, command in order:
                wall, rss, result = measure(command)
                walls[name].append(wall)
                peaks[name].append(rss)
                row = f"| {round_} | {name} | {wall:.1f} | {rss:.0f} | {result.strip()} |"
                print(row, flush=True)
        ratios = [a / b for a, b in zip(walls[mlplab_name], walls[plain_name], strict=True)]
        print(
            f"\nmlplab / plain, median of {len(ratios)} rounds: {statistics.median(ratios):.2f} "
            f"(range {min(ratios):.2f}-{max(ratios):.2f}); wall medians "
            f"{statistics.median(walls[mlplab_name]):.1f} / "
            f"{statistics.median(walls[plain_name]):.1f} s; peak RSS "
            f"{max(peaks[mlplab_name]):.0f} / {max(peaks[plain_name]):.0f} MB"
        )


if __name__ == "__main__":
    main()
