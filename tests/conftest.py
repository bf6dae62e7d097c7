"""Shared fixtures: small generated images and one real trained run on scikit-learn's digits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

import numpy as np
import pytest
from PIL import Image

import mlplab

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (CI installs it)",
)


def chromium(tmp_path: Path, *args: str) -> str:
    """Run headless Chromium (its own profile under ``tmp_path``) with ``args``; its stdout
    (the DOM, with ``--dump-dom``)."""
    flags = [
        CHROMIUM or "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run(
        [*flags, *args], capture_output=True, text=True, timeout=120, check=True
    ).stdout


def save_png(path: Path, pixels: np.ndarray) -> Path:
    """pixels: uint8 (h, w) or (h, w, 3) -> a PNG file at path."""
    Image.fromarray(pixels).save(path)
    return path


def start_mlplab(*args: str) -> subprocess.Popen:
    """``python -m mlplab ARGS`` in a child process, output unbuffered into text pipes (for
    tests that read its progress and then send it Ctrl-C)."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlplab", *args],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines_until(process: subprocess.Popen, pipe: IO[str], prefix: str) -> list[str]:
    """Lines read from ``pipe`` (process.stdout or .stderr) up to and including the first
    that starts with ``prefix``; fails, showing the other stream, if the output ends first."""
    other = process.stderr if pipe is process.stdout else process.stdout
    lines: list[str] = []
    while not (lines and lines[-1].startswith(prefix)):
        line = pipe.readline()
        assert line, (lines, other.read())
        lines.append(line)
    return lines


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> mlplab.Run:
    """The default recipe trained once (fewer epochs) for the tests that only read a run."""
    out = tmp_path_factory.mktemp("runs")
    return mlplab.train(overrides={"train.epochs": 15}, out=out, verbose=False)


@pytest.fixture(scope="session")
def digits_data() -> mlplab.data.Dataset:
    return mlplab.data.load_dataset("digits")
