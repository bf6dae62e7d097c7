"""Shared fixtures: small generated images and one real trained run on scikit-learn's digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mlplab


def save_png(path: Path, pixels: np.ndarray) -> Path:
    """pixels: uint8 (h, w) or (h, w, 3) -> a PNG file at path."""
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> mlplab.Run:
    """The default recipe trained once (fewer epochs) for the tests that only read a run."""
    out = tmp_path_factory.mktemp("runs")
    return mlplab.train(overrides={"train.epochs": 15}, out=out, verbose=False)


@pytest.fixture(scope="session")
def digits_data() -> mlplab.data.Dataset:
    return mlplab.data.load_dataset("digits")
