"""The learning-rate range test's numbers: the exponential ramp, the smoothed loss curve, where
it diverged, and the learning rate it suggests. Plain numpy; no Keras here.

The test is Leslie Smith's ("Cyclical Learning Rates for Training Neural Networks", 2017), as
fastai's and PyTorch Lightning's ``lr_find`` run it:

1. Train from the initial weights for ``steps`` batches, with the learning rate growing
   exponentially from ``start`` to ``end``, and record each batch's loss.
2. Stop once the smoothed loss has passed 4 times its lowest value (or is not finite).
3. Read a learning rate off the smoothed curve.

Two choices differ from fastai's, for reasons measured on four networks against a grid of
trained learning rates (``docs/results.md``, "Learning-rate finder"):

- **Smoothing.** fastai smooths with a running average (factor 0.98) that lags about 50
  steps, half of its 100-step test, so its curve sits up to a decade to the right of the
  losses. Here the whole curve is known before it is read, so it is smoothed forwards and
  backwards: no lag. The time constant is 5% of the steps. The running (lagging) average is
  kept only for the stop, which must decide as the test goes.
- **The rule.** For a constant rate, the suggestion is a tenth of the rate at the lowest loss
  (Smith's advice, and fastai's ``minimum``). fastai's default ``valley`` rule landed 1-1.5
  decades too low on the lag-free curve. For the peak of a one-cycle or cosine schedule, which
  is visited briefly and then annealed, it is a third of that rate: a tenth measured 1-3
  points worse there. The steepest descent is also reported.

A curve that barely falls (a sigmoid network on plain SGD learns slowly at every rate) gives no
suggestion rather than a wrong one. So does one that diverged before it could be read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DEFAULT_STEPS = 200
MIN_STEPS = 20
# Time constant of the smoothing, as a share of the steps.
SMOOTHING_SHARE = 0.05
DIVERGENCE_FACTOR = 4.0
# The suggestions are read between the first 10% of steps (noise of the start) and the last
# 5% (the blow-up, and the end of the backward smoothing).
SKIP_START, SKIP_END = 0.10, 0.05
MIN_POINTS = 5
# A curve whose lowest point is less than this share below its start is too flat to read.
MIN_FALL = 0.2
# A curve that ends more than 10% above its lowest point has turned up.
TURNED_UP = 1.1
SUGGESTION_RULES = {
    "minimum": "a tenth of the rate at the lowest loss",
    "peak": "a third of the rate at the lowest loss, for the peak of a schedule that anneals",
    "steepest": "where the loss falls fastest per decade of learning rate",
}
# The rule for a constant rate, and the one for the peak of a one-cycle or cosine schedule
# (visited briefly, then annealed: higher peaks measured better; docs/results.md).
CONSTANT_RULE, PEAK_RULE = "minimum", "peak"
ANNEALING_SCHEDULES = ("one-cycle", "cosine")


def default_rule(schedule: str) -> str:
    """The rule whose suggestion is the answer for a config with this ``train.schedule``."""
    return PEAK_RULE if schedule in ANNEALING_SCHEDULES else CONSTANT_RULE


def ramp(start: float, end: float, steps: int) -> np.ndarray:
    """float64 (steps,): start * (end / start) ** (i / (steps - 1)), i = 0 .. steps - 1."""
    return start * (end / start) ** (np.arange(steps) / (steps - 1))


def smoothing_factor(steps: int) -> float:
    """The moving averages' factor beta for a test of ``steps``: time constant 5% of them."""
    return 1.0 - 1.0 / max(1.0, SMOOTHING_SHARE * steps)


def running_average(values: np.ndarray, beta: float) -> np.ndarray:
    """The bias-corrected exponential moving average of ``values``: float64 (k,).

    avg_i = beta * avg_(i-1) + (1 - beta) * value_i, divided by 1 - beta ** (i + 1) so that
    the first points are not pulled towards zero. A non-finite value makes the rest non-finite.
    """
    out = np.empty(len(values), np.float64)
    average = 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for i, value in enumerate(np.asarray(values, np.float64)):
            average = beta * average + (1.0 - beta) * value
            out[i] = average / (1.0 - beta ** (i + 1))
    return out


def smooth(losses: np.ndarray, beta: float) -> np.ndarray:
    """The running average taken forwards, then backwards over the result: float64 (k,), a
    curve without the running average's lag."""
    forwards = running_average(losses, beta)
    return running_average(forwards[::-1], beta)[::-1]


def divergence(losses: np.ndarray, beta: float, factor: float = DIVERGENCE_FACTOR) -> int | None:
    """The first step whose running average (what the test knows at that step) is not finite
    or above ``factor`` times the lowest running average before it; None if there is none.

    losses: float (k,), each step's batch loss.
    """
    lowest = math.inf
    for i, value in enumerate(running_average(losses, beta)):
        if not math.isfinite(value) or value > factor * lowest:
            return i
        lowest = min(lowest, value)
    return None


@dataclass(frozen=True)
class Suggestion:
    """A suggested learning rate: ``rule`` (a key of SUGGESTION_RULES), ``lr``, and the
    ``step`` of the curve it was read at (lrs[step], smoothed[step] on the plot)."""

    rule: str
    lr: float
    step: int


def read_curve(
    lrs: np.ndarray, smoothed: np.ndarray, planned: int
) -> tuple[dict[str, Suggestion], str | None]:
    """Every rule's suggestion from the part of a curve before any divergence, or no suggestion
    and why not.

    lrs: float64 (k,), increasing; smoothed: float64 (k,), finite; planned: the test's steps
    (k or more), which set the parts left out at the start and the end.
    """
    first = int(planned * SKIP_START)
    last = len(lrs) - max(1, int(planned * SKIP_END))
    if last - first < MIN_POINTS:
        return {}, "it diverged before the curve could be read: start the range lower"
    window_lrs, window = lrs[first:last], smoothed[first:last]
    level = float(np.mean(smoothed[: max(1, first)]))
    lowest = first + int(np.argmin(window))
    fall = 1.0 - float(smoothed[lowest]) / level if level > 0 else 0.0
    if fall < MIN_FALL:
        fell = f"fell only {fall:.0%} below" if fall > 0 else "never fell below"
        return {}, (
            f"the loss {fell} its start at any rate: the curve is too flat to read (a network "
            "that learns slowly, such as sigmoid units on plain SGD); run more steps, or "
            "compare a few rates by training"
        )
    if lrs[lowest] / 10.0 < lrs[0]:
        return {}, (
            f"the loss was lowest at {lrs[lowest]:.2g}, less than a decade into the range: "
            "start the range lower"
        )
    slopes = np.diff(window) / np.diff(np.log10(window_lrs))
    steepest = first + int(np.argmin(slopes))
    suggestions = {
        "minimum": Suggestion("minimum", float(lrs[lowest]) / 10.0, lowest),
        "peak": Suggestion("peak", float(lrs[lowest]) / 3.0, lowest),
        "steepest": Suggestion("steepest", float(lrs[steepest]), steepest),
    }
    return suggestions, None


@dataclass
class LRSweep:
    """A range test's curve, cut just after it diverged.

    lrs: float64 (k,), each recorded step's learning rate; losses: float32 (k,), each step's
    batch loss before its update; smoothed: float64 (k,). planned: the steps asked for (k is
    fewer when it diverged). diverged_at: the step that passed the divergence test, or None.
    suggestions: by rule; empty, with ``problem`` saying why, when the curve cannot be read.
    rule: the rule whose suggestion is the answer (:func:`default_rule`).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    planned: int
    diverged_at: int | None
    suggestions: dict[str, Suggestion] = field(default_factory=dict)
    problem: str | None = None
    rule: str = CONSTANT_RULE

    @property
    def suggestion(self) -> Suggestion | None:
        """The answer: the chosen rule's suggestion, or None."""
        return self.suggestions.get(self.rule)

    @property
    def lowest_lr(self) -> float | None:
        """The rate at the lowest smoothed loss before any divergence, or None."""
        found = self.suggestions.get(CONSTANT_RULE)
        return None if found is None else float(self.lrs[found.step])

    @property
    def end_lr(self) -> float:
        """The learning rate of the last recorded step."""
        return float(self.lrs[-1]) if len(self.lrs) else math.nan

    @property
    def turned_up(self) -> bool:
        """Whether the loss turned up within the range: it diverged, or it ended more than 10%
        above its lowest point. When it did not, higher rates may be better still."""
        if self.diverged_at is not None or not len(self.smoothed):
            return True
        return bool(self.smoothed[-1] > TURNED_UP * self.smoothed.min())

    def csv(self) -> str:
        """step,lr,loss,smoothed_loss: one line per recorded step."""
        rows = zip(self.lrs, self.losses, self.smoothed, strict=True)
        lines = ["step,lr,loss,smoothed_loss"]
        lines += [f"{i},{lr:.6g},{loss:.6g},{mean:.6g}" for i, (lr, loss, mean) in enumerate(rows)]
        return "\n".join(lines) + "\n"


def analyse(
    lrs: np.ndarray,
    losses: np.ndarray,
    planned: int,
    stop_on_divergence: bool = True,
    schedule: str = "constant",
) -> LRSweep:
    """The curve of a range test from what it recorded: lrs float64 (k,), losses float32 (k,).

    With stop_on_divergence the curve ends at the step that diverged (kept, so that the plot
    shows the turn); without it, it runs to the end, or to the last finite loss. Suggestions
    are read from the part before any divergence. schedule: the config's ``train.schedule``,
    which picks the rule that answers.
    """
    beta = smoothing_factor(planned)
    diverged_at = divergence(losses, beta)
    finite = np.isfinite(losses)
    keep = len(losses) if finite.all() else int(np.argmin(finite))
    if diverged_at is not None and stop_on_divergence:
        keep = min(keep, diverged_at + 1)
    lrs = np.asarray(lrs[:keep], np.float64)
    losses = np.asarray(losses[:keep], np.float32)
    smoothed = smooth(losses, beta)
    # Read from the part before the divergence, smoothed on its own: what comes after it
    # (one step, or all of them without the stop) must not move the suggestion.
    readable = keep if diverged_at is None else min(keep, diverged_at)
    suggestions, problem = read_curve(lrs[:readable], smooth(losses[:readable], beta), planned)
    rule = default_rule(schedule)
    return LRSweep(lrs, losses, smoothed, planned, diverged_at, suggestions, problem, rule)
