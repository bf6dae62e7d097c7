"""Shared by the benchmarks that train a recipe once per seed (``calibration.py``,
``robustness.py``, ``ensembles.py``): the quiet training call, and mean ± sample std as
their tables print it. Imported as ``seeded`` (a script's folder is on ``sys.path``)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import mlplab


def quiet_run(
    recipe: str,
    overrides: Mapping[str, Any] | Iterable[str],
    seed: int,
    out: str | Path,
    **options: Any,
) -> mlplab.Run:
    """``recipe`` trained with ``overrides`` (a dict, or KEY=VALUE strings) at ``seed``
    into ``out``: no progress, no pictures. options: more of ``mlplab.train``'s."""
    if isinstance(overrides, Mapping):
        seeded: Any = {**overrides, "train.seed": seed}
    else:
        seeded = [*overrides, f"train.seed={seed}"]
    return mlplab.train(recipe, overrides=seeded, out=out, verbose=False, report=False, **options)


def spread(values: list[float], digits: int = 2, scale: float = 100) -> str:
    """ "mean ± sample std" of the values times ``scale`` (fractions as percent unless told
    otherwise), or the value alone when there is one."""
    if len(values) < 2:
        return f"{scale * values[0]:.{digits}f}"
    mean, std = statistics.mean(values), statistics.stdev(values)
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"
