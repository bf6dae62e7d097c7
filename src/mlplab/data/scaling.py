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
        flat = x_train.reshape(len(x_train), -1).astype(np.float64)
        mean = flat.mean(axis=0)
        std = float((flat - mean).std()) or 1.0
        return ScalingParams(mean.astype(np.float32), np.float32(std) * ones)
    raise ValueError(f"unknown scaling {scaling!r}")
