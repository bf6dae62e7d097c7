"""How good is each way of reading the learning-rate range test? Against a grid of trained rates.

First make the grids, one `mlplab tune --grid` study per network (each learning rate trained
over seeds 0-2, judged on the validation split):

    G=train.learning_rate=0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3,1.0,3.0
    mlplab tune digits-mlp --grid --search $G --trial-seeds 3 -q --out studies
    mlplab tune tutorial-adam-mnist --dataset fashion-mnist --set data.validation=0.1 \\
        --grid --search $G --trial-seeds 3 -q --out studies

then run the range tests (seeds 0-2, each test length) and read them with each rule:

    FASHION="tutorial-adam-mnist --set data.dataset=fashion-mnist --set data.validation=0.1"
    python benchmarks/lr_find_rules.py digits-mlp=studies/<UTC>-digits-mlp-tune \\
        "$FASHION=studies/<UTC>-tutorial-adam-mnist-fashion-mnist-tune"

It prints a Markdown table: for each rule and test length, the range of rates suggested over
the three seeds and the grid's validation accuracy at them (interpolated in log rate; a rate
beyond the grid reads as its end). The rules: fastai's default (``valley``: halfway down the
longest descent, read from its running average with factor 0.98, which lags), the same rule
on mlplab's lag-free curve, and mlplab's two (a tenth of the rate at the lowest loss; the
steepest descent).
"""

from __future__ import annotations

import argparse
import csv
import shlex
from pathlib import Path

import numpy as np

import mlplab
from mlplab import lr_range

SEEDS = (0, 1, 2)
STEPS = (100, 200, 400, 1000)
START, END = 1e-7, 10.0


def read_grid(study: Path) -> np.ndarray:
    """float64 (k, 2): learning rate and mean validation accuracy, by rate."""
    with open(study / "trials.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["state"] == "complete"]
    return np.array(sorted((float(r["train.learning_rate"]), float(r["value"])) for r in rows))


def longest_descent(values: np.ndarray) -> tuple[int, int]:
    """First and last index of the longest strictly decreasing subsequence."""
    length, origin = np.ones(len(values), int), np.arange(len(values))
    for i in range(1, len(values)):
        higher = np.flatnonzero(values[:i] > values[i])
        if len(higher):
            j = higher[np.argmax(length[higher])]
            length[i], origin[i] = length[j] + 1, origin[j]
    last = int(np.argmax(length))
    return int(origin[last]), last


def valley(lrs: np.ndarray, curve: np.ndarray, steps: int) -> float:
    first = steps // 10
    a, b = longest_descent(curve[first : len(curve) - 5])
    return float(lrs[first + (a + b) // 2])


def fastai_valley(losses: np.ndarray, steps: int) -> float:
    lrs = lr_range.ramp(START, END, steps)
    average = lr_range.running_average(losses, 0.98)
    over = np.flatnonzero(average > 4 * np.minimum.accumulate(average))
    keep = int(over[0]) if len(over) else len(average)
    return valley(lrs[:keep], average[:keep], steps)


def lag_free(rule: str):
    def read(losses: np.ndarray, steps: int) -> float:
        lrs = lr_range.ramp(START, END, steps)
        sweep = lr_range.analyse(lrs, losses, steps)
        if rule == "valley":
            keep = sweep.diverged_at or len(losses)
            curve = lr_range.smooth(losses[:keep], lr_range.smoothing_factor(steps))
            return valley(lrs[:keep], curve, steps)
        return sweep.suggestions[rule].lr

    return read


RULES = {
    "fastai's valley (running average)": fastai_valley,
    "valley, lag-free curve": lag_free("valley"),
    "minimum/10, lag-free (mlplab's)": lag_free("minimum"),
    "steepest, lag-free": lag_free("steepest"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="+", metavar="'RECIPE [--set K=V ...]=STUDY'")
    args = parser.parse_args()
    columns = []
    for spec in args.networks:
        command, _, study = spec.rpartition("=")
        words = shlex.split(command)
        recipe, overrides = words[0], words[2::2]
        losses = {
            (steps, seed): mlplab.lr_find(
                recipe,
                overrides=[*overrides, f"train.seed={seed}"],
                steps=steps,
                stop_on_divergence=False,
                out=None,
                verbose=False,
            ).sweep.losses
            for steps in STEPS
            for seed in SEEDS
        }
        columns.append((recipe, losses, read_grid(Path(study))))
    print("| steps | rule | " + " | ".join(name for name, _, _ in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for steps in STEPS:
        for rule, read in RULES.items():
            cells = []
            for _, losses, grid in columns:
                rates = [read(losses[steps, seed], steps) for seed in SEEDS]
                accuracy = [
                    100 * np.interp(np.log10(r), np.log10(grid[:, 0]), grid[:, 1]) for r in rates
                ]
                cells.append(
                    f"{min(rates):.2g} to {max(rates):.2g} → "
                    f"{min(accuracy):.1f} to {max(accuracy):.1f}"
                )
            print(f"| {steps} | {rule} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
