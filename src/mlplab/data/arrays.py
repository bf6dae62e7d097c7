"""Arrays a user hands over (an ``.npz`` file, ``MLPClassifier.fit``) as the uint8 images a
:class:`~mlplab.data.Dataset` holds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlplab.errors import DataError

CHANNELS = (1, 3)


def image_shape_of_rows(features: int, image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """The (h, w, c) that rows of ``features`` pixels are read as: ``image_shape`` ((h, w) or
    (h, w, c)) when given, else a square grayscale image when ``features`` is a square
    number (64 -> 8x8, 784 -> 28x28), else one row of pixels (1, features, 1)."""
    if image_shape:
        shape = tuple(int(size) for size in image_shape)
        if len(shape) == 2:
            shape = (*shape, 1)
        if len(shape) != 3 or min(shape) < 1 or shape[2] not in CHANNELS:
            raise DataError(
                f"image_shape {list(image_shape)} must be [height, width] or [height, width, 1|3]"
            )
        return shape  # type: ignore[return-value]
    side = math.isqrt(features)
    return (side, side, 1) if side * side == features else (1, features, 1)


def as_pixels(x: Any, where: str, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """Images as mlplab trains on them: uint8 (n, h, w, c), c 1 or 3.

    x: array-like (n, h, w, c), (n, h, w), or (n, features) rows of pixels, read as
    ``image_shape`` (see :func:`image_shape_of_rows`); with images, a given ``image_shape``
    must be theirs. Values must be whole numbers in 0..255 of any integer or float dtype
    (scikit-learn's digits are floats 0..16: they scale like any other pixels). DataError,
    naming ``where``, for anything else.
    """
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise DataError(f"{where}: not an array of pixels: {exc}") from None
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{where}: pixels must be numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        shape = image_shape_of_rows(array.shape[1], image_shape)
        if math.prod(shape) != array.shape[1]:
            raise DataError(
                f"{where}: rows of {array.shape[1]} pixels are not images of shape {list(shape)}"
            )
        array = array.reshape(len(array), *shape)
    elif array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in CHANNELS:
        raise DataError(
            f"{where} must be (n, h, w), (n, h, w, 1|3) or (n, pixels), got shape "
            f"{list(array.shape)}"
        )
    if image_shape and array.shape[1:] != image_shape_of_rows(0, image_shape):
        raise DataError(
            f"{where}: images of shape {list(array.shape[1:])}, expected "
            f"{list(image_shape_of_rows(0, image_shape))}"
        )
    if array.size and array.dtype != np.uint8:
        _check_pixel_values(array, where)
    return array.astype(np.uint8, copy=False)


def _check_pixel_values(array: np.ndarray, where: str) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise DataError(f"{where}: pixels must be finite (found NaN or infinity)")
    low, high = array.min(), array.max()
    if low < 0 or high > 255:
        raise DataError(
            f"{where}: pixels must lie in 0..255, found {low:g}..{high:g} (mlplab scales the "
            "8-bit pixels itself: pass them as they are stored)"
        )
    if np.issubdtype(array.dtype, np.floating) and (array != np.round(array)).any():
        hint = (
            ": already scaled to 0..1? pass (x * 255).round().astype('uint8')" if high <= 1 else ""
        )
        raise DataError(
            f"{where}: pixels must be whole numbers 0..255, found fractions in "
            f"{low:g}..{high:g}{hint}"
        )
