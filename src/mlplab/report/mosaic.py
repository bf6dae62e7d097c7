"""Image grids: training samples per class, and galleries of right and wrong predictions.

All tiles are drawn into one matplotlib axes (one ``imshow`` per tile at its own extent), not
one axes per tile: a grid of 100 images renders in a fraction of a second this way.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from mlplab.report.plots import STYLE, to_png

# Above this many classes, samples.png shows one image per class in a square grid.
MAX_CLASS_ROWS = 20


def _draw_tile(ax, image: np.ndarray, column: float, row: float) -> None:
    """image: uint8 (h, w, 1|3) into the unit square whose top-left corner is (column, row)."""
    extent = (column, column + 1, row + 1, row)
    if image.shape[-1] == 1:
        ax.imshow(
            image[..., 0], cmap="gray", vmin=0, vmax=255, extent=extent, interpolation="nearest"
        )
    else:
        ax.imshow(image, extent=extent, interpolation="nearest")


def _canvas(width: float, height: float, inches_per_unit: float, title: str):
    fig = plt.figure(figsize=(width * inches_per_unit, height * inches_per_unit + 0.6))
    ax = fig.add_axes((0, 0, 1, 1 - 0.6 / (height * inches_per_unit + 0.6)))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    fig.suptitle(title, y=0.995, va="top")
    return fig, ax


def samples_png(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    title: str,
    per_class: int = 8,
    seed: int = 0,
) -> bytes:
    """Training samples by class, as PNG bytes.

    Up to 20 classes: one row per class with ``per_class`` images and the class name at the
    left. More classes: one image per class in a square grid, named underneath.
    images: uint8 (n, h, w, c), c in {1, 3}; labels: int (n,). Samples are drawn with a
    fixed seed, so the same dataset gives the same picture.
    """
    rng = np.random.default_rng(seed)
    k = len(class_names)
    with plt.rc_context(STYLE):
        if k <= MAX_CLASS_ROWS:
            longest = max(len(str(name)) for name in class_names)
            label_units = 0.4 + 0.14 * longest  # room for the class names at the left
            fig, ax = _canvas(per_class * 1.1 + label_units, k * 1.1, 0.8, title)
            for row, label in enumerate(range(k)):
                members = np.flatnonzero(labels == label)
                chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
                top = row * 1.1
                ax.text(
                    label_units - 0.2,
                    top + 0.5,
                    str(class_names[label]),
                    ha="right",
                    va="center",
                    fontsize=9,
                )
                for col, index in enumerate(chosen):
                    _draw_tile(ax, images[index], label_units + col * 1.1, top)
        else:
            columns = int(np.ceil(np.sqrt(k)))
            rows = int(np.ceil(k / columns))
            fig, ax = _canvas(columns * 1.3, rows * 1.5, 0.9, title)
            for label in range(k):
                members = np.flatnonzero(labels == label)
                row, col = divmod(label, columns)
                if len(members):
                    _draw_tile(ax, images[rng.choice(members)], col * 1.3 + 0.15, row * 1.5)
                ax.text(
                    col * 1.3 + 0.65,
                    row * 1.5 + 1.08,
                    str(class_names[label]),
                    ha="center",
                    va="top",
                    fontsize=7,
                )
        return to_png(fig)


def gallery_png(
    images: np.ndarray,
    true_labels: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    class_names: Sequence[str],
    title: str,
    columns: int = 8,
) -> bytes:
    """Test images with their true and predicted class and the predicted probability.

    images: uint8 (m, h, w, c); true_labels, predicted: int (m,); confidence: float (m,).
    Wrong predictions are captioned in red, right ones in green.
    """
    count = len(images)
    columns = max(1, min(columns, count)) if count else columns
    rows = max(1, int(np.ceil(count / columns)))
    all_right = bool(np.all(true_labels == predicted))
    longest = max((len(_short(name)) for name in class_names), default=1)
    # Room for the captions: one or two lines, as wide as "pred: T-shirt/top 0.99".
    cell_w, cell_h = max(1.25, 0.4 + 0.075 * longest), (1.45 if all_right else 1.75)
    with plt.rc_context(STYLE):
        fig, ax = _canvas(columns * cell_w, rows * cell_h, 1.0, title)
        if count == 0:
            ax.text(
                columns * cell_w / 2,
                rows * cell_h / 2,
                "none",
                ha="center",
                va="center",
                color="grey",
                fontsize=12,
            )
        for i in range(count):
            row, col = divmod(i, columns)
            left, top = col * cell_w + (cell_w - 1) / 2, row * cell_h + 0.05
            _draw_tile(ax, images[i], left, top)
            right = true_labels[i] == predicted[i]
            caption = (
                f"{_short(class_names[predicted[i]])} {confidence[i]:.2f}"
                if right
                else f"true: {_short(class_names[true_labels[i]])}\n"
                f"pred: {_short(class_names[predicted[i]])} {confidence[i]:.2f}"
            )
            ax.text(
                left + 0.5,
                top + 1.06,
                caption,
                ha="center",
                va="top",
                fontsize=8,
                color="#1a7f37" if right else "#c62828",
                linespacing=1.15,
            )
        return to_png(fig)


def _short(name: str, width: int = 14) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"
