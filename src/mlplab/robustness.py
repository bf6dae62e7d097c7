"""How the test accuracy holds up when the images change a little: shifted, rotated, noisy.

An MLP sees pixels, not shapes: nothing in it knows that an image moved by two pixels is the
same image, so its accuracy falls where a person's (or a convolutional network's) would not.
:func:`robustness` measures that on a seeded sample of the test split — each image shifted
by 1, 2 and 3 pixels (up, down, left and right, averaged), rotated by 10, 20 and 30 degrees
(both ways, averaged) and given Gaussian noise — for ``metrics.json``'s ``robustness`` and
the report's ``robustness.png``. What a shift or a rotation uncovers is filled with the
image's background (the median of its border), as if the camera had moved.

NumPy only: the caller hands over the model as a function.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SHIFTS = (1, 2, 3)  # pixels
ANGLES = (10, 20, 30)  # degrees
NOISE = (16, 32, 64)  # standard deviation, in 0..255 pixel units
# Test images measured (a seeded sample): enough for ~1 point of standard error, and about
# 0.3 s on a 2-core CPU for a Fashion-MNIST MLP once compiled (21 passes over them).
SAMPLE = 2000
# The changes as metrics.json names them: key -> (the amounts, their unit).
KINDS = {
    "shift": (SHIFTS, "pixels"),
    "rotate": (ANGLES, "degrees"),
    "noise": (NOISE, "noise std (0..255)"),
}

Predict = Callable[[np.ndarray], np.ndarray]


def background(x: np.ndarray) -> np.ndarray:
    """uint8 (n, c): each image's background, the median of its border pixels per channel."""
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    return np.median(border, axis=1).round().astype(np.uint8)


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """uint8 (n, h, w, c) moved down by dy and right by dx pixels (negative: up, left): what
    leaves the frame is lost, and the uncovered rows and columns are the image's background
    (:func:`background`); moved by the whole height or width or more, all background."""
    h, w = x.shape[1:3]
    dy, dx = max(-h, min(h, dy)), max(-w, min(w, dx))  # beyond the frame, slices would wrap
    out = np.broadcast_to(background(x)[:, None, None, :], x.shape).copy()
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        :, max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def rotated(x: np.ndarray, degrees: float) -> np.ndarray:
    """uint8 (n, h, w, c) each turned ``degrees`` anticlockwise about its centre, sampled
    bilinearly; what comes from outside the frame is the image's background
    (:func:`background`). All images at once: each output pixel is a weighted sum of four
    source pixels, the same four for every image."""
    n, h, w, channels = x.shape
    angle = np.deg2rad(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    rows, cols = np.mgrid[0:h, 0:w].reshape(2, -1).astype(np.float64)
    across, down = cols + 0.5 - w / 2, rows + 0.5 - h / 2  # from the centre, y pointing down
    # Where each output pixel comes from: the output turned back by the angle.
    source_x = across * cos - down * sin + w / 2 - 0.5
    source_y = across * sin + down * cos + h / 2 - 0.5
    x0, y0 = np.floor(source_x).astype(int), np.floor(source_y).astype(int)
    fx, fy = source_x - x0, source_y - y0
    taps = [(y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)]
    weights = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1)
    # Index h * w is the background, appended after the pixels: taps outside the frame.
    index = np.stack(
        [np.where((r >= 0) & (r < h) & (c >= 0) & (c < w), r * w + c, h * w) for r, c in taps],
        axis=1,
    )
    pixels = np.concatenate([x.reshape(n, h * w, channels), background(x)[:, None]], axis=1)
    turned = np.einsum("npkc,pk->npc", pixels[:, index].astype(np.float32), weights)
    return np.clip(turned.round(), 0, 255).astype(np.uint8).reshape(x.shape)


def noisy(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 (n, h, w, c) plus Gaussian noise of ``std`` (0..255 units), rounded and clipped."""
    return np.clip(x + rng.normal(0.0, std, x.shape), 0, 255).round().astype(np.uint8)


def robustness(
    predict: Predict, x: np.ndarray, y: np.ndarray, sample: int = SAMPLE, seed: int = 0
) -> dict[str, object]:
    """The accuracy of ``predict`` (uint8 (n, h, w, c) -> (n, classes) probabilities) on up
    to ``sample`` of the images ``x`` (labels ``y``, int (n,)), unchanged and changed.

    Returns plain types for JSON: ``images`` (how many), ``clean`` (their accuracy as they
    are), and for each of shift, rotate and noise ``{"unit": ..., "accuracy": {amount:
    accuracy}}`` with the amounts as strings ("1", "2", "3").
    """
    rng = np.random.default_rng(seed)
    if len(y) > sample:
        pick = np.sort(rng.choice(len(y), sample, replace=False))
        x, y = x[pick], y[pick]

    def accuracy(*variants: np.ndarray) -> float:
        return float(np.mean([np.mean(predict(v).argmax(axis=1) == y) for v in variants]))

    changes: dict[str, Callable[[int], list[np.ndarray]]] = {
        "shift": lambda k: [
            shifted(x, k, 0),
            shifted(x, -k, 0),
            shifted(x, 0, k),
            shifted(x, 0, -k),
        ],
        "rotate": lambda degrees: [rotated(x, degrees), rotated(x, -degrees)],
        "noise": lambda std: [noisy(x, std, rng)],
    }
    result: dict[str, object] = {"images": len(y), "clean": accuracy(x)}
    for kind, (amounts, unit) in KINDS.items():
        result[kind] = {
            "unit": unit,
            "accuracy": {str(amount): accuracy(*changes[kind](amount)) for amount in amounts},
        }
    return result
