"""Charts rendered to PNG bytes with matplotlib's Agg backend (no display needed).

Each function takes plain arrays or dicts (what ``metrics.json`` and ``history.csv`` hold)
and returns PNG bytes, so a report can be drawn during training or later from the files.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import LogFormatter, NullLocator

from mlplab.checkpoint import best_so_far

# Above this many classes a matrix of numbers is unreadable: heat map plus the worst pairs.
MAX_ANNOTATED_CLASSES = 20
# A calibration bin with fewer predictions than this is drawn pale: its accuracy is noise.
FEW_IN_BIN = 10
STYLE = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
    "figure.facecolor": "white",
    "font.size": 10,
}


def to_png(fig: Any, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    # zlib's fastest level: about half the encoding time of the default (6) for files ~15%
    # larger; six plots are written after every run.
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return buffer.getvalue()


def margins(
    fig: Any, left: float, right: float, bottom: float, top: float, wspace: float = 0.2
) -> None:
    """Fixed margins in inches. (Matplotlib's constrained layout would find them itself, but
    costs ~0.2 s a figure: a third of a small run's report.)"""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
    )


class PlainLogFormatter(LogFormatter):
    """The ticks matplotlib's log formatter labels, written as plain numbers (0.003, 1,
    10000; 1e-05 and 1e+06 beyond) instead of powers of ten: easier to read for a learner,
    and those are typeset by matplotlib's mathtext, whose parser took ~0.3 s of every
    run's report."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.fix_minus(f"{x:g}") if super().__call__(x, pos) else ""


def log_axis(ax: Any, which: str = "y") -> None:
    """Make ``ax``'s ``which`` ("x" or "y") axis logarithmic, labelled by
    :class:`PlainLogFormatter`."""
    if which == "y":
        ax.set_yscale("log")
    else:
        ax.set_xscale("log")
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def _longest(names: Sequence[str]) -> int:
    return max((len(str(name)) for name in names), default=1)


def best_epoch(
    history: Sequence[dict[str, float]], monitor: str = "val_loss", min_delta: float = 0.0
) -> dict[str, float] | None:
    """The epoch with the best validation score that ``train.monitor`` names, as training
    picks it: the lowest val_loss or the highest val_accuracy, the first of equals, and
    with ``train.min_delta`` the last that beat the best before it by more than that (None
    without validation)."""
    rows = [row for row in history if np.isfinite(row.get(monitor, np.nan))]
    return best_so_far(rows, monitor, min_delta)[1]


def best_label(monitor: str) -> str:
    """What :func:`best_epoch` picks, in words: "best validation loss"."""
    return "best validation " + monitor.removeprefix("val_")


def rate_cuts(history: Sequence[dict[str, float]], schedule: str) -> list[float]:
    """The epochs after which a step or plateau schedule lowered the learning rate (from
    the history's ``lr``); none for schedules that change it every step."""
    if schedule not in ("step", "plateau"):
        return []
    return [
        before["epoch"]
        for before, after in itertools.pairwise(history)
        if after.get("lr", 0.0) < before.get("lr", 0.0)
    ]


def _rate_panel(ax: Any, history: Sequence[dict[str, float]], cuts: Sequence[float]) -> None:
    """The learning rate of each epoch, on a log scale, with the cuts marked."""
    epochs = [row["epoch"] for row in history]
    marker = "o-" if len(history) <= 40 else "-"
    # A schedule that cuts keeps each rate for whole epochs: drawn as steps at the cuts.
    style = {"drawstyle": "steps-mid"} if cuts else {}
    ax.plot(epochs, [row["lr"] for row in history], marker, ms=3, color="tab:green", **style)
    for epoch in cuts:
        ax.axvline(epoch + 0.5, color="tab:red", ls="--", lw=0.8, alpha=0.6)
    log_axis(ax)
    ax.set_xlabel("epoch")
    ax.set_title("learning rate")
    ax.grid(alpha=0.3, which="both")


def curves_png(
    history: Sequence[dict[str, float]],
    title: str,
    cuts: Sequence[float] = (),
    monitor: str = "val_loss",
    min_delta: float = 0.0,
) -> bytes:
    """Train and validation loss (left) and accuracy (right) per epoch, as PNG bytes; and,
    when the learning rate changed during training, a third, narrower panel with the rate
    of each epoch (the history's ``lr``: its last step's) on a log scale.

    history: one dict per epoch with epoch, loss, accuracy and optionally val_loss,
    val_accuracy, lr. The best validation epoch (by ``monitor``: :func:`best_epoch`) is
    marked (``min_delta``: ``train.min_delta``), and so is each learning-rate cut
    (``cuts``: :func:`rate_cuts`), between its epoch and the next.
    """
    rates = [row.get("lr", np.nan) for row in history]
    scheduled = all(np.isfinite(rates)) and len(set(rates)) > 1 and min(rates) > 0
    with plt.rc_context(STYLE):
        if scheduled:
            fig, axes = plt.subplots(
                1, 3, figsize=(13, 4), sharex=True, gridspec_kw={"width_ratios": [1, 1, 0.6]}
            )
            margins(fig, left=0.6, right=0.2, bottom=0.55, top=0.65, wspace=0.25)
            _rate_panel(axes[2], history, cuts)
        else:
            fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
            margins(fig, left=0.6, right=0.2, bottom=0.55, top=0.65)
        epochs = [row["epoch"] for row in history]
        has_val = any("val_loss" in row for row in history)
        best = best_epoch(history, monitor, min_delta)
        marker = "o-" if len(history) <= 40 else "-"
        for ax, metric in zip(axes[:2], ("loss", "accuracy"), strict=True):
            ax.plot(
                epochs,
                [row.get(metric, np.nan) for row in history],
                marker,
                ms=3,
                label=f"train {metric}",
            )
            if has_val:
                values = [row.get(f"val_{metric}", np.nan) for row in history]
                ax.plot(epochs, values, marker, ms=3, label=f"validation {metric}")
            if best is not None:
                ax.axvline(
                    best["epoch"],
                    color="grey",
                    ls=":",
                    lw=1.2,
                    label=f"{best_label(monitor)} (epoch {best['epoch']:g})",
                )
            for i, epoch in enumerate(cuts):
                ax.axvline(
                    epoch + 0.5,
                    color="tab:red",
                    ls="--",
                    lw=0.8,
                    alpha=0.6,
                    label="learning rate cut" if i == 0 else None,
                )
            ax.set_xlabel("epoch")
            ax.set_title(metric)
            ax.grid(alpha=0.3)
            if history:
                ax.legend(loc="best", fontsize="small")
            else:
                ax.text(
                    0.5,
                    0.5,
                    "no complete epoch",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="grey",
                )
        if history:
            axes[0].xaxis.get_major_locator().set_params(integer=True)
        fig.suptitle(title)
        return to_png(fig)


def confusion_png(
    confusion: Sequence[Sequence[int]],
    class_names: Sequence[str],
    title: str,
    pairs: Sequence[dict[str, Any]] = (),
) -> bytes:
    """Confusion matrix (rows true, columns predicted) with row-normalised colour.

    Up to 20 classes every cell shows its count. With more, the matrix is a heat map without
    numbers and ``pairs`` (see ``metrics.confused_pairs``) are drawn beside it as bars.
    """
    matrix = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    names = [str(n) for n in class_names]
    with plt.rc_context(STYLE):
        if k <= MAX_ANNOTATED_CLASSES:
            side = max(5.0, 0.55 * k + 2.5)
            room = 0.075 * _longest(names)  # class names on the left, slanted below
            fig, ax = plt.subplots(figsize=(side + 1.5 + room, side + 0.7 * room))
            margins(fig, left=0.6 + room, right=1.2, bottom=0.75 + 0.7 * room, top=0.5)
            _matrix(fig, ax, share, names, labels=True)
            for i in range(k):
                for j in range(k):
                    if matrix[i, j]:
                        ax.text(
                            j,
                            i,
                            str(matrix[i, j]),
                            ha="center",
                            va="center",
                            fontsize=8 if k > 12 else 9,
                            color="white" if share[i, j] > 0.5 else "black",
                        )
        else:
            fig = plt.figure(figsize=(16, 8.5))
            room = 0.045 * _longest(names) / 16  # tiny class names, as a share of the width
            ax = fig.add_axes((0.02 + room, 0.08 + room, 0.42, 0.82))
            bars = fig.add_axes((0.74, 0.08, 0.24, 0.82))
            _matrix(fig, ax, share, names, labels=k <= 100)
            _pair_bars(bars, pairs)
        fig.suptitle(title)
        return to_png(fig)


def _matrix(fig: Any, ax: Any, share: np.ndarray, names: list[str], labels: bool) -> None:
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="share of the true class")
    k = len(names)
    small = 5 if k > 20 else 9
    if labels:
        ax.set_xticks(
            range(k),
            names,
            rotation=90 if k > 20 else 45,
            ha="center" if k > 20 else "right",
            fontsize=small,
        )
        ax.set_yticks(range(k), names, fontsize=small)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.spines[:].set_visible(False)


def _pair_bars(ax: Any, pairs: Sequence[dict[str, Any]]) -> None:
    if not pairs:
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        return
    shown = list(pairs)[:20][::-1]
    ax.barh(range(len(shown)), [p["count"] for p in shown], color="#c0504d")
    ax.set_yticks(range(len(shown)), [f"{p['true']} → {p['predicted']}" for p in shown], fontsize=9)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("test images (true → predicted)")
    ax.set_title("most confused pairs")
    ax.grid(axis="x", alpha=0.3)


def per_class_png(
    per_class: dict[str, dict[str, float]],
    class_names: Sequence[str],
    title: str,
    images: str = "test split",
) -> bytes:
    """Precision, recall and F1 per class as bars (sorted by F1 when there are many);
    images: what they were measured on, for the title."""
    names = [str(n) for n in class_names]
    scores = {m: np.array([per_class[n][m] for n in names]) for m in ("precision", "recall", "f1")}
    colors = {"precision": "#4f81bd", "recall": "#9bbb59", "f1": "#c0504d"}
    with plt.rc_context(STYLE):
        if len(names) <= MAX_ANNOTATED_CLASSES:
            slanted = len(names) > 8
            bottom = 0.45 + (0.04 * _longest(names) if slanted else 0.1)
            fig, ax = plt.subplots(figsize=(max(8.0, 0.7 * len(names) + 2), 3.4 + bottom))
            margins(fig, left=0.6, right=0.2, bottom=bottom, top=1.0)
            x = np.arange(len(names))
            for offset, metric in zip((-0.27, 0, 0.27), scores, strict=True):
                ax.bar(x + offset, scores[metric], 0.27, label=metric, color=colors[metric])
            ax.set_xticks(
                x, names, rotation=30 if slanted else 0, ha="right" if slanted else "center"
            )
            low = min(float(min(s.min() for s in scores.values())), 0.8)
            ax.set_ylim(max(0.0, low - 0.05), 1.0)
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, frameon=False)
            ax.grid(axis="y", alpha=0.3)
        else:
            order = np.argsort(scores["f1"])
            fig, ax = plt.subplots(figsize=(8, 0.16 * len(names) + 1.6))
            margins(fig, left=0.3 + 0.045 * _longest(names), right=0.3, bottom=0.45, top=1.0)
            y = np.arange(len(names))
            ax.barh(y, scores["f1"][order], color="#e6a5a3", label="f1")
            ax.plot(
                scores["precision"][order],
                y,
                "|",
                color=colors["precision"],
                ms=6,
                mew=2,
                label="precision",
            )
            ax.plot(
                scores["recall"][order], y, "|", color=colors["recall"], ms=6, mew=2, label="recall"
            )
            ax.set_yticks(y, [names[i] for i in order], fontsize=6)
            ax.set_xlim(0, 1)
            ax.set_ylim(-1, len(names))
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, frameon=False)
            ax.grid(axis="x", alpha=0.3)
        fig.suptitle(f"{title}\nper-class precision, recall and F1 ({images})")
        return to_png(fig)


def calibration_png(calibration: dict[str, Any], title: str, images: str = "test") -> bytes:
    """The reliability diagram: per confidence bin, how often the network was right (bars;
    pale where fewer than FEW_IN_BIN predictions make it noisy) and how sure it was (red
    ticks, joined to the bar: the gap), over the diagonal of a perfectly calibrated network;
    below it, how many test predictions fell in each bin. calibration:
    :func:`mlplab.metrics.calibration`'s dict."""
    bins = calibration["bins"]
    width = bins[0]["high"] - bins[0]["low"]
    lows = np.array([row["low"] for row in bins])
    number = np.array([row["count"] for row in bins])
    filled = [row for row in bins if row["count"]]
    x = np.array([row["low"] for row in filled])
    accuracy = np.array([row["accuracy"] for row in filled])
    confidence = np.array([row["confidence"] for row in filled])
    few = np.array([row["count"] < FEW_IN_BIN for row in filled])
    ece, mean, right = (calibration[k] for k in ("ece", "mean_confidence", "accuracy"))
    leaning = "over-confident" if mean > right else "under-confident"
    with plt.rc_context(STYLE):
        fig, (reliability, counts) = plt.subplots(
            2, 1, figsize=(7.5, 6.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.1]}
        )
        margins(fig, left=0.8, right=0.3, bottom=0.6, top=1.05)
        fig.subplots_adjust(hspace=0.12)
        colors = np.where(few, "#b9cde5", "#4f81bd")
        reliability.bar(x, accuracy, width, align="edge", color=colors, edgecolor="white")
        centres = x + width / 2
        reliability.vlines(centres, accuracy, confidence, color="#cf222e", lw=2)
        reliability.hlines(confidence, x + 0.15 * width, x + 0.85 * width, color="#cf222e", lw=2)
        reliability.plot([0, 1], [0, 1], "--", color="gray", lw=1)
        reliability.set_xlim(0, 1)
        reliability.set_ylim(0, 1.02)
        reliability.set_ylabel("accuracy in the bin")
        reliability.grid(alpha=0.3)
        reliability.set_title(
            f"ECE {100 * ece:.2f}%  ·  mean confidence {100 * mean:.1f}%, accuracy "
            f"{100 * right:.1f}%: {leaning}",
            fontsize=10,
        )
        counts.bar(lows, np.maximum(number, 0.5), width, align="edge", color="#9bbb59")
        log_axis(counts)
        counts.yaxis.set_minor_locator(NullLocator())
        counts.set_ylim(bottom=0.5)
        counts.set_xlabel("confidence (the largest probability)")
        counts.set_ylabel("test images")
        counts.grid(alpha=0.3)
        handles = [
            Patch(color="#4f81bd", label="accuracy"),
            Patch(color="#b9cde5", label=f"accuracy, < {FEW_IN_BIN} images"),
            Line2D([], [], color="#cf222e", lw=2, label="mean confidence (and the gap)"),
            Line2D([], [], color="gray", ls="--", lw=1, label="perfectly calibrated"),
        ]
        counts.legend(handles=handles, loc="upper left", frameon=False, fontsize=8, ncols=2)
        fig.suptitle(f"{title}\nhow sure the network is, against how often it is right ({images})")
        return to_png(fig)


ROBUSTNESS_PANELS = {
    "shift": "shifted (up, down, left, right)",
    "rotate": "rotated (both ways)",
    "noise": "Gaussian noise",
}


def robustness_png(
    robustness: dict[str, Any], classes: int, title: str, images: str = "test"
) -> bytes:
    """Test accuracy against how much the images were changed, a panel per change (shift,
    rotation, noise), each starting from the unchanged images' accuracy at 0, with chance
    (1 / classes) dashed. robustness: :func:`mlplab.robustness.robustness`'s dict."""
    clean = robustness["clean"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.9), sharey=True)
        margins(fig, left=0.7, right=0.2, bottom=0.6, top=0.85, wspace=0.12)
        for ax, (kind, heading) in zip(axes, ROBUSTNESS_PANELS.items(), strict=True):
            measured = robustness[kind]
            amounts = [0.0, *(float(a) for a in measured["accuracy"])]
            accuracy = [clean, *measured["accuracy"].values()]
            ax.plot(amounts, accuracy, "o-", color="#4f81bd", lw=2)
            for amount, value in zip(amounts, accuracy, strict=True):
                ax.annotate(
                    f"{100 * value:.0f}%",
                    (amount, value),
                    textcoords="offset points",
                    xytext=(0, 7),
                    ha="center",
                    fontsize=8,
                )
            ax.axhline(1 / classes, color="gray", ls="--", lw=1)
            ax.set_xticks(amounts)
            ax.set_xlabel(measured["unit"])
            ax.set_title(heading, fontsize=10)
            ax.set_ylim(0, 1.08)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("accuracy" if images != "test" else "test accuracy")
        axes[0].annotate(
            "chance",
            (0, 1 / classes),
            textcoords="offset points",
            xytext=(2, 3),
            fontsize=8,
            color="gray",
        )
        fig.suptitle(
            f"{title}\nwhen the {images} images change a little ({robustness['images']} of them)"
        )
        return to_png(fig)


def gradients_png(gradients: Any, title: str) -> bytes:
    """The RMS loss gradient of each Dense layer's weights, first to last, on a log axis:
    at the initial weights and at the trained ones, side by side per layer; titled with
    how much smaller the first layer's was at the start (red when it vanishes).
    gradients: :class:`mlplab.gradients.LayerGradients`."""
    count = len(gradients.layers)
    positions = np.arange(count)
    width = 0.38
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(7.5, 1.0 + 0.9 * count), 4.3))
        margins(fig, left=0.9, right=0.25, bottom=1.0, top=1.0)
        for offset, values, colour, label in (
            (-width / 2, gradients.initial, "#a6bddb", "at the start (initial weights)"),
            (width / 2, gradients.trained, "#2b5d9c", "after training"),
        ):
            shown = np.maximum(np.asarray(values, np.float64), 1e-12)  # log axis: no zeros
            ax.bar(positions + offset, shown, width, color=colour, label=label)
        log_axis(ax)
        ax.set_xticks(
            positions,
            [f"layer {i + 1}\n{label}" for i, label in enumerate(gradients.labels)],
            fontsize=8,
        )
        ax.set_ylabel("RMS gradient of the weights")
        ax.grid(axis="y", alpha=0.3)
        # Under the layer names: a legend inside would cover the first layer's bars.
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        ax.set_title(
            gradients.describe(),
            fontsize=10,
            color="#cf222e" if gradients.vanishing() else "black",
        )
        fig.suptitle(
            f"{title}\nthe loss gradient of each layer's weights ({gradients.images} "
            "training images)",
            y=0.985,
        )
        return to_png(fig)


def compare_png(series: Sequence[tuple[str, Sequence[dict[str, float]]]], title: str) -> bytes:
    """Validation loss and accuracy of several runs, overlaid; train curves if none has
    validation. series: (label, history rows) per run."""
    use_val = any("val_loss" in row for _, history in series for row in history)
    prefix = "val_" if use_val else ""
    kind = "validation" if use_val else "train"
    with plt.rc_context(STYLE):
        legend = 0.2 * len(series) + 0.25  # room for the legend under the panels
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2 + legend))
        margins(fig, left=0.6, right=0.2, bottom=0.6 + legend, top=0.65)
        for label, history in series:
            epochs = [row["epoch"] for row in history]
            for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
                values = [row.get(prefix + metric, np.nan) for row in history]
                ax.plot(epochs, values, "-", lw=1.6, label=label)
        for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
            ax.set_title(f"{kind} {metric}")
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)  # no epoch 1.25
            ax.grid(alpha=0.3)
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="lower center",
            bbox_to_anchor=(0.5, 0.01),
            fontsize="small",
            frameon=False,
        )
        fig.suptitle(title)
        return to_png(fig)


# Hidden layers drawn in hidden.png; deeper ones are named in the title.
MAX_HIDDEN_PANELS = 6


def hidden_png(outputs: Sequence[np.ndarray], summaries: Sequence[Any], title: str) -> bytes:
    """A histogram per hidden layer of what its units output on a sample of training images
    (log counts: a ReLU layer's zeros would flatten everything else), titled with the layer's
    width and activation, and its dead or saturated share.

    outputs: float32 (n, units) per layer; summaries: :class:`mlplab.activations.LayerSummary`
    per layer."""
    shown = list(zip(outputs, summaries, strict=True))[:MAX_HIDDEN_PANELS]
    columns = 2 if len(shown) == 4 else min(len(shown), 3)  # 2 x 2 rather than 3 + 1
    rows = -(-len(shown) // columns)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, columns, figsize=(4.0 * columns, 3.1 * rows + 0.8))
        margins(fig, left=0.8, right=0.25, bottom=0.55, top=1.15, wspace=0.35)
        fig.subplots_adjust(hspace=0.7)
        flat = np.atleast_1d(axes).ravel()
        for number, (ax, (values, summary)) in enumerate(zip(flat, shown, strict=False), start=1):
            # One filled outline, not 60 bar patches: a third of the drawing time.
            counts, edges = np.histogram(values, bins=60)
            ax.stairs(np.maximum(counts, 0.5), edges, fill=True, color="#4f81bd", baseline=0.5)
            log_axis(ax)
            ax.yaxis.set_minor_locator(NullLocator())  # dozens of unlabelled ticks, slow
            note = summary.describe()
            ax.set_title(
                f"layer {number}: {summary.units} {summary.activation} units"
                + (f"\n{note}" if note else ""),
                fontsize=10,
                color="#cf222e" if _worrying(summary) else "black",
                y=1.02,  # placed, not fitted above the ticks: that fitting was slow
            )
            if summary.bounds is not None:  # the whole range: how near its ends they are
                ax.set_xlim(*summary.bounds)
            ax.set_xlabel("output")
            ax.set_ylabel("count")
            ax.grid(alpha=0.3)
        for ax in flat[len(shown) :]:
            ax.axis("off")
        more = ""
        if len(outputs) > len(shown):
            more = f" (first {MAX_HIDDEN_PANELS} of {len(outputs)})"
        fig.suptitle(f"{title}\nwhat each hidden layer outputs on training images{more}")
        return to_png(fig)


def _worrying(summary: Any) -> bool:
    """A quarter of a layer dead or saturated is worth a red note."""
    share = summary.saturated if summary.saturated is not None else summary.inactive
    return share is not None and share >= 0.25


# Stages drawn in layer_views.png: the pixels, the first hidden layers and the last one.
MAX_VIEW_PANELS = 8
# Classes named in its legend; beyond them the colours repeat and the legend is left out.
MAX_LEGEND_CLASSES = 20


def class_colours(count: int) -> np.ndarray:
    """float (count, 4) RGBA, one colour per class: tab10 up to 10 classes, tab20 up to 20,
    then a cycle of hues."""
    if count <= 10:
        return matplotlib.colormaps["tab10"](np.arange(count))
    if count <= MAX_LEGEND_CLASSES:
        return matplotlib.colormaps["tab20"](np.arange(count))
    return matplotlib.colormaps["hsv"](np.linspace(0, 1, count, endpoint=False))


def layer_views_png(views: Any, class_names: Sequence[str], title: str) -> bytes:
    """A map per stage of the network (pixels, then each hidden layer): each image a dot at
    its 2-D place, coloured by its true class, titled with the stage's k-NN accuracy.
    views: :class:`mlplab.embedding.LayerViews`; class_names: per class index."""
    stages = list(zip(views.names, views.points, views.neighbour_accuracy, strict=True))
    shown = stages
    if len(stages) > MAX_VIEW_PANELS:  # the pixels, the first hidden layers and the last
        shown = [*stages[: MAX_VIEW_PANELS - 1], stages[-1]]
    columns = min(len(shown), 4)
    rows = -(-len(shown) // columns)
    count = max(len(class_names), int(views.labels.max()) + 1 if len(views.labels) else 0)
    colours = class_colours(count)
    legend = count <= MAX_LEGEND_CLASSES
    legend_rows = -(-count // 10) if legend else 0
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 3.3 * rows + 1.0))
        margins(fig, left=0.2, right=0.2, bottom=0.3 + 0.3 * legend_rows, top=1.0, wspace=0.08)
        fig.subplots_adjust(hspace=0.3)
        flat = np.atleast_1d(axes).ravel()
        for ax, (name, points, accuracy) in zip(flat, shown, strict=False):
            ax.scatter(
                points[:, 0], points[:, 1], s=5, c=colours[views.labels], linewidths=0, alpha=0.8
            )
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():  # a light frame: the axes' numbers mean nothing
                spine.set_visible(True)
                spine.set_color("#d0d7de")
            knn = f"{views.neighbours}-NN accuracy {100 * accuracy:.1f}%"
            ax.set_title(f"{name}\n{knn}", fontsize=9)
        for ax in flat[len(shown) :]:
            ax.axis("off")
        if legend:
            handles = [
                Line2D([], [], marker="o", ls="", color=colours[i], label=str(class_names[i]))
                for i in range(min(count, len(class_names)))
            ]
            fig.legend(
                handles=handles,
                loc="lower center",
                ncol=min(len(handles), 10),
                fontsize=8,
                frameon=False,
                handletextpad=0.1,
                columnspacing=0.8,
            )
        method = "t-SNE" if views.method == "tsne" else "first two principal components"
        more = ""
        if len(shown) < len(stages):
            more = f"; of {len(stages) - 1} hidden layers the first {len(shown) - 2} and the last"
        fig.suptitle(
            f"{title}\n{len(views.labels)} {views.images} as each layer sees them ({method}{more});"
            f" the network itself is right on {100 * views.network_accuracy:.1f}% of them",
            fontsize=10,
        )
        return to_png(fig)


def coverage_png(
    curve: tuple[np.ndarray, np.ndarray, np.ndarray],
    summary: dict[str, Any],
    title: str,
    images: str = "test",
) -> bytes:
    """The accuracy on the images the network answers against the share it answers, when it
    answers only where its largest probability reaches a threshold; the thresholds of
    ``summary`` marked on the curve, and the accuracy of answering everything dashed.
    curve: :func:`mlplab.metrics.coverage_curve`; summary: :func:`mlplab.metrics.selective`."""
    _, coverage, accuracy = curve
    everything = float(accuracy[-1]) if len(accuracy) else float("nan")
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 5.7))
        margins(fig, left=0.8, right=0.3, bottom=1.5, top=1.05)
        ax.step(100 * coverage, 100 * accuracy, where="post", color="#4f81bd", lw=1.8)
        ax.axhline(100 * everything, color="gray", ls="--", lw=1)
        ax.text(2, 100 * everything, f" answering all: {100 * everything:.2f}%", va="bottom",
                color="gray", fontsize=8)  # fmt: skip
        lines = []
        for row in summary["thresholds"]:
            if row["accuracy"] is None:
                lines.append(f"p ≥ {row['threshold']:<4g}  answers none")
                continue
            ax.plot([100 * row["coverage"]], [100 * row["accuracy"]], "o", color="#cf222e", ms=4)
            lines.append(
                f"p ≥ {row['threshold']:<4g}  answers {100 * row['coverage']:5.1f}%, "
                f"{100 * row['accuracy']:6.2f}% right"
            )
        # The thresholds as a table under the plot, not labels on the curve: their dots
        # often crowd together.
        fig.text(0.5, 0.03, "\n".join(lines), fontsize=8, family="monospace",
                 color="#cf222e", va="bottom", ha="center")  # fmt: skip
        # The interesting part is near the top: from a little below answering everything.
        low = min(100 * everything, float(100 * accuracy[coverage >= 0.5].min(initial=100)))
        ax.set_ylim(max(0.0, low - 0.15 * (100 - low) - 0.5), 100.3)
        ax.set_xlim(0, 101)
        ax.set_xlabel(f"share of the {images} images it answers (%)")
        ax.set_ylabel("accuracy on those (%)")
        ax.grid(alpha=0.3)
        ax.set_title(_coverage_headline(summary, images), fontsize=10)
        fig.suptitle(f"{title}\nanswering only when sure: the rest is left to a person")
        return to_png(fig)


def _coverage_headline(summary: dict[str, Any], images: str) -> str:
    """The first accuracy target reached, as "99.5% right on 89% of the test images when it
    answers only at p >= 0.998"; or that none was."""
    for row in summary["targets"]:
        if row["threshold"] is not None and row["coverage"] > 0:
            return (
                f"{100 * row['accuracy']:g}% right on {100 * row['coverage']:.0f}% of the "
                f"{images} images, answering only at p ≥ {row['threshold']:.3g}"
            )
    best = max(summary["targets"], key=lambda row: row["accuracy"])
    return f"no threshold makes it {100 * best['accuracy']:g}% right"
