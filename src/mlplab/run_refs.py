"""A finished run that a config key names (``train.teacher``, ``model.init_from``): loaded,
checked to be usable with this dataset's images, and every refusal one ConfigError that
names the key.

This module reads runs; it knows nothing of JAX.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlplab.errors import ConfigError, MlplabError
from mlplab.runs import LAST, Run, load_run


def referenced_run(key: str, spec: str, image_shape: tuple[int, int, int], use: str) -> Run:
    """The finished run ``spec`` (a run folder) that config key ``key`` names, checked to
    take images of ``image_shape`` (h, w, c). ``use`` says what each seed would do with the
    run ("be taught by", "start from"), for the refusal of 'last'. ConfigError, naming the
    key, when the folder is 'last', is not a finished run, diverged, or takes other images.
    """
    where = f"{key} = {spec!r}"
    if spec.strip() == LAST:
        raise ConfigError(
            f"{where}: name the run folder (the newest run changes as runs are written, so "
            f"with 'last' each seed could {use} another network)"
        )
    try:
        run = load_run(spec)
    except MlplabError as exc:
        # RunError names the folder first: said once, by the key.
        said = str(exc).removeprefix(f"{Path(spec)}: ")
        raise ConfigError(f"{where}: {said}") from None
    if run.status == "diverged":
        raise ConfigError(f"{where}: the run diverged (loss not finite); it cannot be used")
    if tuple(run.image_shape) != tuple(image_shape):
        raise ConfigError(
            f"{where}: it takes {shape_words(run.image_shape)} images, this dataset has "
            f"{shape_words(image_shape)} ones"
        )
    return run


def trained_elsewhere(run: Run, dataset: str, role: str) -> str | None:
    """A warning line when ``run`` (``role``: "the teacher") was trained on another dataset
    than ``dataset`` (its name): if that one held this dataset's test images, a network
    that learned from the run is scored on images it has in effect seen. None when the
    names agree (or are unknown)."""
    theirs = (run.metrics.get("dataset") or {}).get("name")
    if theirs in (None, dataset):
        return None
    return (
        f"note: {role} was trained on {theirs}, this network on {dataset}: if those held "
        "this network's test images, its test score says too much"
    )


def listed(names: list[str], most: int = 6) -> str:
    """Class names for a message: the first ``most``, and how many in all."""
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def shape_words(shape: tuple[int, ...]) -> str:
    """(h, w, c) as "28x28 grayscale" or "32x32 RGB"."""
    height, width, channels = shape
    return f"{height}x{width} {'grayscale' if channels == 1 else 'RGB'}"


def class_order(theirs: list[str], ours: list[str]) -> np.ndarray:
    """int (len(ours),): column ``order[j]`` of the run's outputs is our class ``j``
    (``theirs`` holds the same names, perhaps in another order)."""
    return np.array([theirs.index(name) for name in ours])
