"""learning_curve.png: test and training accuracy against the number of training images."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from mlplab.report.plots import STYLE, margins, plt, to_png

TEST, TRAIN = "#4f81bd", "#c0504d"


def learning_curve_png(curve: Any) -> bytes:
    """PNG bytes for a :class:`mlplab.learning_curves.LearningCurve`: the mean test and
    training accuracy per training-set size (a log axis), a band of ± one sample std over
    the seeds, each run as a faint dot, and the reading below."""
    sizes = curve.sizes
    images = np.array([size.train_images for size in sizes], float)
    seeds = len({point.seed for point in curve.points})
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 5.2))
        margins(fig, left=0.8, right=0.3, bottom=1.45, top=0.7)
        for key, colour, label in (
            ("test", TEST, "test images"),
            ("train", TRAIN, "its own training images"),
        ):
            mean = np.array([getattr(size, f"{key}_mean") for size in sizes])
            std = np.array([getattr(size, f"{key}_std") for size in sizes])
            ax.plot(images, mean, "o-", color=colour, lw=2, label=label)
            if seeds > 1:
                ax.fill_between(images, mean - std, mean + std, color=colour, alpha=0.15, lw=0)
            ax.plot(
                [point.train_images for point in curve.points],
                [getattr(point, f"{key}_accuracy") for point in curve.points],
                ".",
                color=colour,
                alpha=0.35,
            )
        ax.set_xscale("log")
        ax.set_xticks(images, [f"{int(n):,}" for n in images])
        ax.minorticks_off()
        ax.set_xlabel("training images")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", frameon=False)
        spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "one seed"
        ax.set_title(f"{curve.config.name}: learning curve ({spread})", fontsize=11)
        fig.text(0.07, 0.03, textwrap.fill(curve.reading, 110), fontsize=8.5, va="bottom")
        return to_png(fig)
