"""lr_find.png: the learning-rate range test's loss curve and the rates it suggests."""

from __future__ import annotations

import numpy as np

from mlplab.lr_range import PEAK_RULE, LRSweep
from mlplab.report.plots import STYLE, log_axis, margins, plt, to_png

RAW, SMOOTHED, CONFIGURED = "#b8cce4", "#4f81bd", "#7f7f7f"
RULE_COLORS = {"minimum": "#c0504d", "peak": "#8064a2", "steepest": "#f79646"}
RULE_LABELS = {"minimum": "lowest / 10", "peak": "lowest / 3", "steepest": "steepest descent"}


def lr_find_png(sweep: LRSweep, configured_lr: float | None, title: str) -> bytes:
    """PNG bytes: each step's loss (faint) and the smoothed loss against the learning rate on a
    log scale, a marker at each suggestion (the default one larger), and a dashed line at the
    config's own learning rate."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        margins(fig, left=0.75, right=0.25, bottom=0.6, top=0.45)
        ax.plot(sweep.lrs, sweep.losses, color=RAW, lw=0.8, label="loss of each batch")
        ax.plot(sweep.lrs, sweep.smoothed, color=SMOOTHED, lw=2, label="smoothed")
        lowest = sweep.suggestions.get("minimum")
        if lowest is not None:
            ax.plot(
                sweep.lrs[lowest.step],
                sweep.smoothed[lowest.step],
                "o",
                mfc="none",
                color=RULE_COLORS["minimum"],
                ms=7,
                label=f"lowest loss: lr {sweep.lrs[lowest.step]:.2g}",
            )
        for rule, found in sweep.suggestions.items():
            default = rule == sweep.rule
            if rule == PEAK_RULE and not default:  # only for a schedule's peak
                continue
            ax.plot(
                found.lr,
                np.interp(np.log(found.lr), np.log(sweep.lrs), sweep.smoothed),
                "o",
                color=RULE_COLORS[rule],
                ms=9 if default else 6,
                zorder=3,
                label=f"{RULE_LABELS[rule]}{' (suggested)' if default else ''}: {found.lr:.2g}",
            )
        if configured_lr is not None:
            ax.axvline(configured_lr, color=CONFIGURED, ls="--", lw=1)
            ax.plot([], [], color=CONFIGURED, ls="--", lw=1, label=f"config: {configured_lr:.2g}")
        log_axis(ax, "x")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        # From 0: a curve that falls by 5% looks flat, as it is.
        ax.set_ylim(0.0, _top(sweep))
        if sweep.problem:
            ax.text(
                0.5,
                0.5,
                "no suggestion: " + sweep.problem.split(":")[0],
                transform=ax.transAxes,
                ha="center",
                fontsize=9,
                color=RULE_COLORS[sweep.rule],
            )
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(fontsize=8, loc="lower left", frameon=False)
        return to_png(fig)


def _top(sweep: LRSweep) -> float:
    """A little above the highest smoothed loss, but after a divergence only above the first
    10% of steps: the blow-up would otherwise squash the part that matters."""
    smoothed = sweep.smoothed[np.isfinite(sweep.smoothed)]
    if not len(smoothed):
        return 1.0
    if sweep.diverged_at is not None:
        smoothed = smoothed[: len(smoothed) // 10 + 1]
    return 1.2 * float(smoothed.max())
