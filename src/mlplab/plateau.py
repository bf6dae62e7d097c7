"""``train.schedule = "plateau"``: cut the learning rate when ``train.monitor`` stops
getting better.

Keras' ``ReduceLROnPlateau`` callback without a ``cooldown``: after ``patience`` epochs in a
row without a new best (one that beats the best by more than ``min_delta``:
``train.min_delta``, whose default 0 lets any gain count, as for mlplab's early stopping;
Keras' own default for this callback is 1e-4), the rate is multiplied by ``factor``, but
never below ``floor``; the count then starts again, while the best is kept. The decision
is a pure function of the epochs' watched numbers and rates, so a resumed run replays its
history to the same count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlplab.checkpoint import improves


@dataclass
class PlateauCutter:
    """When to cut the learning rate, one epoch at a time.

    patience: epochs without a new best before a cut. factor: the cut, in (0, 1).
    floor: the lowest rate a cut may reach (``train.min_learning_rate``). min_delta: how
    much better than the best an epoch must be to be a new best (``train.min_delta``).
    """

    patience: int
    factor: float
    floor: float = 0.0
    min_delta: float = 0.0
    best: float = math.inf
    waited: int = 0

    def after_epoch(self, value: float, rate: float) -> float | None:
        """Judge an epoch; the rate to go on with, or None to keep ``rate``.

        value: what the epoch is judged by, lower for better (a loss, or an accuracy
        negated: :func:`mlplab.checkpoint.watched`). rate: the rate the epoch was trained
        at (the optimizer keeps it as float32, so the floor is compared in float32, as
        Keras does).
        """
        if improves(value, self.best, self.min_delta):
            self.best, self.waited = value, 0
            return None
        self.waited += 1
        if self.waited < self.patience:
            return None
        cut = max(rate * self.factor, self.floor)
        if np.float32(cut) >= np.float32(rate):
            return None  # at the floor already: nothing left to cut
        self.waited = 0
        return cut
