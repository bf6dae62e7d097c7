"""Signed maps as colours: shared by the report's pictures and the serve API, so it imports
matplotlib's colour maps only, not pyplot (which a server answering requests never needs)."""

from __future__ import annotations

import matplotlib
import numpy as np


def diverging(values: np.ndarray) -> np.ndarray:
    """Signed maps as images: float (m, h, w) -> uint8 (m, h, w, 3), red for positive, blue
    for negative, white for zero; each map scaled to the 99th percentile of its sizes (the
    few beyond it at full colour), so that one value does not wash out the rest."""
    values = np.asarray(values, np.float64)
    scale = np.percentile(np.abs(values), 99, axis=(1, 2), keepdims=True)
    shares = 0.5 + 0.5 * np.clip(values / np.where(scale > 0, scale, 1.0), -1, 1)
    return np.round(matplotlib.colormaps["RdBu_r"](shares)[..., :3] * 255).astype(np.uint8)


def contribution_colours(contributions: np.ndarray) -> np.ndarray:
    """Pixel contributions (:mod:`mlplab.explain`) as images: float (m, h, w, c), summed over
    the colour channels -> uint8 (m, h, w, 3), red for, blue against."""
    return diverging(np.asarray(contributions, np.float64).sum(axis=-1))
