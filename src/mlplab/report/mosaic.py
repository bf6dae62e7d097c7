"""Image grids: training samples per class, galleries of right and wrong predictions, and
the first layer's weights drawn as images.

The tiles are pasted into one RGB array drawn with a single ``imshow`` (one axes, one image,
captions as text), not one axes or one image per tile: a grid of 100 images renders in a
fraction of a second this way. Layout is in "units": one unit is one tile's width/height.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from mlplab.report.colours import contribution_colours, diverging
from mlplab.report.plots import STYLE, to_png

# Above this many classes, samples.png shows one image per class in a square grid.
MAX_CLASS_ROWS = 20
RIGHT_COLOUR, WRONG_COLOUR = "#1a7f37", "#c62828"


class _Sheet:
    """A white RGB canvas of ``width`` x ``height`` units for tiles of (h, w) pixels."""

    def __init__(self, width: float, height: float, tile_shape: tuple[int, ...]) -> None:
        self.h, self.w = int(tile_shape[0]), int(tile_shape[1])
        self.width, self.height = width, height
        # One spare pixel each way: tile corners are rounded to whole pixels.
        shape = (int(np.ceil(height * self.h)) + 1, int(np.ceil(width * self.w)) + 1, 3)
        self.pixels = np.full(shape, 255, dtype=np.uint8)

    def put(self, image: np.ndarray, column: float, row: float) -> None:
        """image: uint8 (h, w, 1|3) with its top-left corner at (column, row) units."""
        top, left = round(row * self.h), round(column * self.w)
        self.pixels[top : top + self.h, left : left + self.w] = image  # gray broadcasts

    def figure(self, inches_per_unit: float, title: str):
        """The figure and its axes (data coordinates in units), the canvas drawn in it. A
        unit is ``inches_per_unit`` wide and as tall as the tiles' shape makes it, so that
        images that are not square keep their proportions (up to 2:1 either way; beyond
        that they are stretched, so that the captions between rows keep their room)."""
        title_in = 0.6
        unit_height = inches_per_unit * min(max(self.h / self.w, 0.5), 2.0)
        canvas_in = self.height * unit_height
        fig = plt.figure(figsize=(self.width * inches_per_unit, canvas_in + title_in))
        ax = fig.add_axes((0, 0, 1, 1 - title_in / (canvas_in + title_in)))
        ax.imshow(
            self.pixels,
            extent=(0, self.width, self.height, 0),
            interpolation="nearest",
            aspect="auto",
        )
        ax.set_xlim(0, self.width)
        ax.set_ylim(self.height, 0)
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
    texts = []  # (x, y, text, options), drawn once the canvas is in the figure
    with plt.rc_context(STYLE):
        if k <= MAX_CLASS_ROWS:
            longest = max(len(str(name)) for name in class_names)
            label_units = 0.4 + 0.14 * longest  # room for the class names at the left
            sheet = _Sheet(per_class * 1.1 + label_units, k * 1.1, images.shape[1:])
            for label in range(k):
                members = np.flatnonzero(labels == label)
                chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
                top = label * 1.1
                texts.append(
                    (
                        label_units - 0.2,
                        top + 0.5,
                        str(class_names[label]),
                        {"ha": "right", "va": "center", "fontsize": 9},
                    )
                )
                for col, index in enumerate(chosen):
                    sheet.put(images[index], label_units + col * 1.1, top)
            fig, ax = sheet.figure(0.8, title)
        else:
            columns = int(np.ceil(np.sqrt(k)))
            rows = int(np.ceil(k / columns))
            sheet = _Sheet(columns * 1.3, rows * 1.5, images.shape[1:])
            for label in range(k):
                members = np.flatnonzero(labels == label)
                row, col = divmod(label, columns)
                if len(members):
                    sheet.put(images[rng.choice(members)], col * 1.3 + 0.15, row * 1.5)
                texts.append(
                    (
                        col * 1.3 + 0.65,
                        row * 1.5 + 1.08,
                        str(class_names[label]),
                        {"ha": "center", "va": "top", "fontsize": 7},
                    )
                )
            fig, ax = sheet.figure(0.9, title)
        for x, y, text, options in texts:
            ax.text(x, y, text, **options)
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
    captions = []
    for true, guess, sure in zip(true_labels, predicted, confidence, strict=True):
        guessed = f"{_short(class_names[guess])} {sure:.2f}"
        if true == guess:
            captions.append((guessed, RIGHT_COLOUR))
        else:
            captions.append((f"true: {_short(class_names[true])}\npred: {guessed}", WRONG_COLOUR))
    longest = max((len(_short(name)) for name in class_names), default=1)
    return _grid_png(images, captions, title, columns, longest)


def augmented_png(
    images: np.ndarray, variants: np.ndarray, labels: Sequence[str], title: str
) -> bytes:
    """Each image as stored, then what augmentation made of it in several draws: a row per
    image. images: uint8 (m, h, w, c); variants: uint8 (m, k, h, w, c); labels: m captions
    (the images' classes)."""
    draws = variants.shape[1]
    cells = np.concatenate([images[:, None], variants], axis=1).reshape(-1, *images.shape[1:])
    captions = []
    for label in labels:
        captions.append((f"{_short(label)}\nas stored", "black"))
        captions += [(f"draw {i}", "grey") for i in range(1, draws + 1)]
    longest = max((len(_short(label)) for label in labels), default=9)
    return _grid_png(cells, captions, title, draws + 1, max(longest, 9))


def captioned_png(
    images: np.ndarray, captions: Sequence[str], title: str, columns: int = 8
) -> bytes:
    """Images in a grid, each with its caption (one or two lines, cut at 24 characters).

    images: uint8 (m, h, w, c), c in {1, 3}. As PNG bytes.
    """
    lines = ["\n".join(_short(line, 24) for line in text.split("\n")) for text in captions]
    longest = max((len(line) for text in lines for line in text.split("\n")), default=1)
    return _grid_png(images, [(text, "black") for text in lines], title, columns, longest)


def weights_png(
    weights: np.ndarray,
    image_shape: Sequence[int],
    captions: Sequence[str],
    title: str,
    columns: int = 8,
) -> bytes:
    """Each unit's weights on the input pixels, drawn as an image of the input's shape.

    weights: float (m, h * w * c), one row per unit, features in (h, w, c) order. Grayscale
    inputs are drawn in a diverging palette: red where a bright pixel raises the unit's input,
    blue where it lowers it, white for zero; each tile is scaled to the 99th percentile of its
    weights' size (the few beyond it at full colour), so that one pixel does not wash out the
    rest. Colour inputs are drawn as RGB, each tile's weights rescaled to [0, 1].
    """
    h, w, c = (int(n) for n in image_shape)
    tiles = np.asarray(weights, np.float64).reshape(len(weights), h, w, c)
    if c == 1:
        images = diverging(tiles[..., 0])
    else:
        low = tiles.min(axis=(1, 2, 3), keepdims=True)
        span = tiles.max(axis=(1, 2, 3), keepdims=True) - low
        images = np.round((tiles - low) / np.where(span > 0, span, 1.0) * 255).astype(np.uint8)
    return captioned_png(images, captions, title, columns)


def explained_png(
    images: np.ndarray, contributions: np.ndarray, captions: Sequence[str], title: str
) -> bytes:
    """Each image as the model saw it beside what its pixels contributed to the predicted
    class (red: pushed towards it, blue: against it), four pairs to a row.

    images: uint8 (m, h, w, c); contributions: float (m, h, w, c), summed over the colour
    channels; captions: one per image."""
    tiles = _beside_their_maps(images, contributions)
    texts = [text for caption in captions for text in (caption, "red: for, blue: against")]
    return captioned_png(tiles, texts, title, columns=8)


def mistakes_explained_png(
    images: np.ndarray,
    for_predicted: np.ndarray,
    for_true: np.ndarray,
    true_labels: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    class_names: Sequence[str],
    title: str,
) -> bytes:
    """Mistakes, each as three tiles: the image, what its pixels contributed to the class the
    network chose, and to the class it should have chosen (red for, blue against), two
    mistakes to a row.

    images: uint8 (m, h, w, c); for_predicted, for_true: float (m, h, w, c) contributions;
    true_labels, predicted: int (m,); confidence: float (m,)."""
    tiles = _beside_their_maps(images, for_predicted, for_true)
    captions = []
    for true, guess, sure in zip(true_labels, predicted, confidence, strict=True):
        said, should = _short(class_names[guess]), _short(class_names[true])
        captions += [
            (f"true: {should}\npred: {said} {sure:.2f}", WRONG_COLOUR),
            (f"pixels for\n{said}", "black"),
            (f"pixels for\n{should}", "black"),
        ]
    longest = max((len(_short(name)) for name in class_names), default=1) + 6
    return _grid_png(tiles, captions, title, 6, longest)


def _beside_their_maps(images: np.ndarray, *contributions: np.ndarray) -> np.ndarray:
    """Tiles in order: each image (as RGB), then its contribution maps in the order given.
    images: uint8 (m, h, w, c); each of contributions: float (m, h, w, c)."""
    shown = images if images.shape[-1] == 3 else np.repeat(images, 3, axis=-1)
    maps = [contribution_colours(each) for each in contributions]
    return np.stack([shown, *maps], axis=1).reshape(-1, *shown.shape[1:])


def _grid_png(
    images: np.ndarray,
    captions: Sequence[tuple[str, str]],
    title: str,
    columns: int,
    longest: int,
) -> bytes:
    """images (m, h, w, c) in rows of ``columns``, each captioned underneath with (text,
    colour); ``longest``: characters in the widest caption line, which sets the cell width."""
    count = len(images)
    columns = max(1, min(columns, count)) if count else columns
    rows = max(1, int(np.ceil(count / columns)))
    two_lines = any("\n" in text for text, _ in captions)
    # Room for the captions: one or two lines, as wide as "pred: T-shirt/top 0.99".
    cell_w, cell_h = max(1.25, 0.4 + 0.075 * longest), (1.75 if two_lines else 1.45)
    shape = images.shape[1:] if count else (8, 8, 1)
    # A few images still get a sheet as wide as the title (~0.1 inch a character), centred.
    width = max(columns * cell_w, 0.1 * len(title))
    margin = (width - columns * cell_w) / 2
    sheet = _Sheet(width, rows * cell_h, shape)
    placed = []
    for i, (text, colour) in enumerate(captions):
        row, col = divmod(i, columns)
        left, top = margin + col * cell_w + (cell_w - 1) / 2, row * cell_h + 0.05
        sheet.put(images[i], left, top)
        placed.append((left + 0.5, top + 1.06, text, colour))
    with plt.rc_context(STYLE):
        fig, ax = sheet.figure(1.0, title)
        if count == 0:
            ax.text(
                sheet.width / 2,
                sheet.height / 2,
                "none",
                ha="center",
                va="center",
                color="grey",
                fontsize=12,
            )
        for x, y, text, colour in placed:
            ax.text(x, y, text, ha="center", va="top", fontsize=8, color=colour, linespacing=1.15)
        return to_png(fig)


def _short(name: str, width: int = 14) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"
