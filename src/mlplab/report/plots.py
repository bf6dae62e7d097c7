"""Plots rendered to PNG bytes with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def curves_png(history: Sequence[dict[str, float]], title: str) -> bytes:
    """Train and validation loss (left) and accuracy (right) per epoch, as PNG bytes.

    history: one dict per epoch with epoch, loss, accuracy and optionally val_loss,
    val_accuracy. The best validation epoch (lowest val_loss) is marked.
    """
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True, layout="constrained")
    has_val = bool(history) and "val_loss" in history[0]
    best = min(history, key=lambda row: row["val_loss"]) if has_val else None
    for ax, metric, label in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, [row[metric] for row in history], "o-", ms=3, label=f"train {label}")
        if has_val:
            ax.plot(
                epochs,
                [row[f"val_{metric}"] for row in history],
                "o-",
                ms=3,
                label=f"validation {label}",
            )
        if best is not None:
            ax.axvline(
                best["epoch"],
                color="grey",
                ls=":",
                lw=1,
                label=f"best validation (epoch {best['epoch']:g})",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if history:
            ax.legend(loc="best", fontsize="small")
        else:
            ax.text(0.5, 0.5, "no complete epoch", ha="center", va="center", transform=ax.transAxes)
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def samples_png(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    title: str,
    per_class: int = 8,
    seed: int = 0,
) -> bytes:
    """A grid of training samples, one row per class (at most 20 rows), as PNG bytes.

    images: uint8 (n, h, w, c), c in {1, 3}; labels: int (n,). Samples are drawn with a fixed
    seed, so the same dataset gives the same picture.
    """
    rng = np.random.default_rng(seed)
    classes = list(range(len(class_names)))[:20]
    fig, axes = plt.subplots(
        len(classes),
        per_class,
        figsize=(per_class * 0.9 + 1.6, len(classes) * 0.9 + 0.6),
        squeeze=False,
    )
    for row, label in enumerate(classes):
        members = np.flatnonzero(labels == label)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for col in range(per_class):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(chosen):
                image = images[chosen[col]]
                if image.shape[-1] == 1:
                    ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
                else:
                    ax.imshow(image)
        axes[row][0].set_ylabel(
            str(class_names[label]), rotation=0, ha="right", va="center", fontsize=9
        )
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
